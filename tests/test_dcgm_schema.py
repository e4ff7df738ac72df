"""The DCGM vocabulary matches dcgm-exporter's own counter lists and real captures."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpuops.core import dcgm_schema as dcgm

CAPTURES = Path(__file__).parent / "fixtures" / "dcgm-exporter"
# Real DCGM fields (dcgm_fields.h ids 235-238, 396) that neither dcgm-exporter's shipped
# counter lists nor the captures happen to contain.
ONLY_IN_DCGM_HEADER = {
    "DCGM_FI_DEV_PCIE_LINK_GEN", "DCGM_FI_DEV_PCIE_MAX_LINK_GEN", "DCGM_FI_DEV_PCIE_LINK_WIDTH",
    "DCGM_FI_DEV_PCIE_MAX_LINK_WIDTH", "DCGM_FI_DEV_ROW_REMAP_PENDING",
}


def _declared_types() -> dict[str, set[str]]:
    """Field -> types, from the counter CSVs (commented-out lines included) and the valid captures."""
    types: dict[str, set[str]] = {}
    for name in ("default-counters.csv", "dcp-metrics-included.csv"):
        for row in csv.reader((CAPTURES / name).read_text().splitlines()):
            if len(row) >= 2 and row[0].lstrip("# ").startswith("DCGM_FI_"):
                types.setdefault(row[0].lstrip("# ").strip(), set()).add(row[1].strip())
    for path in CAPTURES.iterdir():
        if path.suffix in (".prom", ".txt") and "viettel" not in path.name:
            for family in text_string_to_metric_families(path.read_text()):
                if family.type != "unknown":
                    types.setdefault(family.name, set()).add(family.type)
    return types


def test_every_field_is_named_and_typed_as_dcgm_exporter_does() -> None:
    declared = _declared_types()
    for field in dcgm.FIELDS:
        if field.name in ONLY_IN_DCGM_HEADER:
            assert field.name not in declared  # if a capture gains it, check its type here instead
            continue
        assert field.name in declared, field.name
        # PCIe TX/RX bytes are counters in the NVML-based list and rate gauges in the DCP list
        assert field.kind in declared[field.name], (field.name, declared[field.name])


def test_all_default_dcgm_exporter_gpu_fields_we_model_are_read() -> None:
    modelled = {"util_gpu_pct", "util_mem_pct", "mem_used_bytes", "temp_c", "mem_temp_c", "power_w", "energy_j",
                "sm_clock_mhz", "mem_clock_mhz", "pcie_replay_count"}
    columns = {f.metric for f in dcgm.FIELDS}
    assert modelled <= columns
    assert len({f.name for f in dcgm.FIELDS}) == len(dcgm.FIELDS)


@pytest.mark.parametrize(
    ("value", "kind", "blank"),
    [
        (9223372036854775792.0, "gauge", True),  # DCGM_INT64_BLANK as exporters print it
        (9.223372036854776e18, "counter", True),
        (9223372036854775794.0, "gauge", True),  # INT64_NOT_SUPPORTED
        (140737488355328.0, "gauge", True),  # DCGM_FP64_BLANK
        (140737488355330.0, "gauge", True),  # FP64_NOT_SUPPORTED
        (2147483632.0, "gauge", True),  # DCGM_INT32_BLANK
        (2147483635.0, "gauge", True),  # INT32_NOT_PERMISSIONED
        (2147483632.0, "counter", False),  # a mJ energy counter passes 2**31 in hours
        (0.0, "gauge", False),
        (128996013.0, "counter", False),
        (140737488355327.0, "gauge", False),
    ],
)
def test_dcgm_blank_values(value: float, kind: str, blank: bool) -> None:
    assert dcgm.is_dcgm_blank(value, kind) is blank


def test_cuda_version_label() -> None:
    assert dcgm.cuda_version_from_dcgm("12010") == "12.1"
    assert dcgm.cuda_version_from_dcgm("11080") == "11.8"

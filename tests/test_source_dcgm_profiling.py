"""DCGM profiling fields (DCGM_FI_PROF_*): `scrape:` and `prometheus:` fill the activity keys in %,
an exporter serving only profiling fields keeps its GPUs, and `gpuops agent` serves them back
under the DCGM names as ratios. Data: the real dcgm-exporter captures in tests/fixtures."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpuops.core import dcgm_schema as dcgm
from gpuops.core.agent.collector import snapshot_exposition
from gpuops.core.agent.poller import AgentSnapshot
from gpuops.core.sources.factory import open_source
from gpuops.core.sources.scrape import ScrapeSource
from tests.backfilled_prometheus import at, backfilled_prometheus
from tests.local_http import Answer, LocalServer, static_routes

CAPTURES = Path(__file__).parent / "fixtures" / "dcgm-exporter"
L4 = CAPTURES / "k8s-ai-conformance_kops_nvidia-l4.prom"  # GR_ENGINE, PIPE_TENSOR, DRAM active: 0
T4 = CAPTURES / "k8s-ai-conformance_rafay_tesla-t4.prom"  # DRAM_ACTIVE 0.000001
DATADOG = CAPTURES / "datadog-integrations-core_dcgm_metrics.txt"  # GPU-abc serves only PROF_DRAM_ACTIVE
ACTIVITY = {
    dcgm.PROF_GR_ENGINE_ACTIVE: "graphics_active_pct", dcgm.PROF_SM_ACTIVE: "sm_active_pct",
    dcgm.PROF_SM_OCCUPANCY: "sm_occupancy_pct", dcgm.PROF_PIPE_TENSOR_ACTIVE: "tensor_active_pct",
    dcgm.PROF_DRAM_ACTIVE: "dram_active_pct",
}


def _samples(path: Path, *, only_profiling: bool = False) -> list[tuple[dict[str, str], float]]:
    """The capture's samples as (labels with __name__, value); optionally only its DCGM_FI_PROF_* ones."""
    found = []
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            if only_profiling and sample.name not in ACTIVITY:
                continue
            found.append(({"__name__": sample.name, **sample.labels}, sample.value))
    return found


def _exposition(samples: list[tuple[dict[str, str], float]]) -> bytes:
    lines = []
    for labels, value in samples:
        rest = ",".join(f'{k}="{v}"' for k, v in labels.items() if k != "__name__")
        lines.append(f"{labels['__name__']}{{{rest}}} {value!r}")
    return ("\n".join(lines) + "\n").encode()


def _expected(samples: list[tuple[dict[str, str], float]]) -> dict[str, dict[str, float]]:
    """UUID -> activity key -> the capture's ratio in %."""
    expected: dict[str, dict[str, float]] = {}
    for labels, value in samples:
        if labels["__name__"] in ACTIVITY and "UUID" in labels:
            expected.setdefault(labels["UUID"], {})[ACTIVITY[labels["__name__"]]] = value * 100
    return expected


@pytest.fixture
def served():
    answers: dict[str, Answer] = {}
    local = LocalServer(static_routes(answers))

    def serve(name: str, body: bytes) -> str:
        answers[f"/{name}/metrics"] = Answer(body)
        return f"{local.base}/{name}/metrics"

    yield serve
    local.stop()


def _assert_activity(records: dict[str, dict], expected: dict[str, dict[str, float]]) -> None:
    assert expected
    for uuid, keys in expected.items():
        for key in ACTIVITY.values():
            want = keys.get(key)
            got = records[uuid][key]
            assert (got is None) if want is None else got == pytest.approx(want), (uuid, key, got, want)


@pytest.mark.parametrize("capture", [L4, T4, DATADOG], ids=lambda p: p.stem)
def test_scrape_reads_profiling_fields_as_percent(served, capture: Path) -> None:
    with ScrapeSource([served("capture", capture.read_bytes())]) as source:
        records = {r["uuid"]: r for r in source.poll().records()}
    _assert_activity(records, _expected(_samples(capture)))


def test_the_datadog_gpu_serving_only_a_profiling_field_is_listed(served) -> None:
    with ScrapeSource([served("datadog", DATADOG.read_bytes())]) as source:
        records = {r["uuid"]: r for r in source.poll().records()}
    gpu = records["GPU-abc"]
    assert (gpu["name"], gpu["node"], gpu["state"]) == ("NVIDIA A10G", "ip-11111", "ok")
    assert gpu["dram_active_pct"] == pytest.approx(0.0003) and gpu["util_gpu_pct"] is None


def test_an_exporter_serving_only_profiling_fields_keeps_its_gpus(served) -> None:
    samples = _samples(L4, only_profiling=True)
    with ScrapeSource([served("prof-only", _exposition(samples))]) as source:
        sample = source.poll()
    assert sample.errors == ()
    records = {r["uuid"]: r for r in sample.records()}
    assert set(records) == {"GPU-c2f76b33-7953-256e-8f33-1343419b1a1c"}
    l4 = records["GPU-c2f76b33-7953-256e-8f33-1343419b1a1c"]
    assert (l4["name"], l4["node"]) == ("NVIDIA L4", "i-030791dc5a37cd257")
    assert l4["temp_c"] is None  # not served: unknown, not 0
    _assert_activity(records, _expected(samples))


def test_prometheus_reads_an_exporter_serving_only_profiling_fields(tmp_path: Path) -> None:
    samples = [({**labels, "instance": "10.0.0.7:9400", "job": "dcgm"}, value)
               for labels, value in _samples(L4, only_profiling=True)]
    up = ({"__name__": "up", "instance": "10.0.0.7:9400", "job": "dcgm"}, 1.0)
    with backfilled_prometheus(tmp_path, at([*samples, up], time.time() - 5)) as base, \
            open_source(f"prometheus:{base}") as source:
        sample = source.poll()
    records = {r["uuid"]: r for r in sample.records()}
    assert set(records) == {"GPU-c2f76b33-7953-256e-8f33-1343419b1a1c"}
    _assert_activity(records, _expected(samples))


def test_the_agent_serves_activity_under_the_dcgm_names_as_ratios(served) -> None:
    with ScrapeSource([served("l4", L4.read_bytes())]) as source:
        sample = source.poll()
    text = snapshot_exposition(AgentSnapshot(sample=sample)).decode()
    served_back = {
        s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples if s.name in ACTIVITY
    }
    captured = {labels["__name__"]: value for labels, value in _samples(L4) if labels["__name__"] in ACTIVITY}
    assert served_back == pytest.approx(captured)


VIDEO_AND_RESERVED = {
    "DCGM_FI_DEV_ENC_UTIL": ("enc_util_pct", 1.0), "DCGM_FI_DEV_DEC_UTIL": ("dec_util_pct", 1.0),
    dcgm.FB_RESERVED: ("mem_reserved_bytes", dcgm.MIB),
}


@pytest.mark.parametrize("capture", [L4, T4], ids=lambda p: p.stem)
def test_video_engines_and_reserved_framebuffer_are_read_and_served_back(served, capture: Path) -> None:
    """dcgm-exporter's default set has encoder/decoder utilization and FB reserved: read in their units,
    served back under the same names by the agent."""
    captured = {(labels["__name__"], labels["UUID"]): value for labels, value in _samples(capture)
                if labels["__name__"] in VIDEO_AND_RESERVED}
    assert len(captured) == 3
    with ScrapeSource([served("capture", capture.read_bytes())]) as source:
        sample = source.poll()
    records = {r["uuid"]: r for r in sample.records()}
    for (name, uuid), value in captured.items():
        key, scale = VIDEO_AND_RESERVED[name]
        assert records[uuid][key] == pytest.approx(value * scale), (name, uuid)
    text = snapshot_exposition(AgentSnapshot(sample=sample)).decode()
    served_back = {(s.name, s.labels["UUID"]): s.value for family in text_string_to_metric_families(text)
                   for s in family.samples if s.name in VIDEO_AND_RESERVED}
    assert served_back == pytest.approx(captured)
    # and FB_FREE stays what the exporter said: total = used + free + reserved
    free = {labels["UUID"]: v for labels, v in _samples(capture) if labels["__name__"] == dcgm.FB_FREE}
    free_back = {s.labels["UUID"]: s.value for family in text_string_to_metric_families(text)
                 for s in family.samples if s.name == dcgm.FB_FREE}
    assert free_back == pytest.approx(free)

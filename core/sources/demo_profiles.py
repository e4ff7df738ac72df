"""Per-model hardware facts of the simulated fleet, read from resources/gpu-profiles.csv.

The numbers come from real nvidia-smi readings where we have them and from NVIDIA's published
specifications where we do not (see resources/PROVENANCE.md), so the simulated fleet looks like
the real one to the people who know what an idle H100 draws.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, fields
from functools import cache

from gpuops.resources import resource_path

PROFILES_FILE = "gpu-profiles.csv"
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class GpuProfile:
    """One GPU model. `idle_*` and `load_*` are two real (or spec-derived) operating points:
    temperatures are interpolated linearly in power between them. NaN = not supported."""

    model: str
    name: str
    architecture: str
    form_factor: str
    mem_total_mib: float
    power_limit_w: float
    idle_power_w: float
    load_power_w: float
    idle_temp_c: float
    load_temp_c: float
    idle_mem_temp_c: float
    load_mem_temp_c: float
    max_operating_temp_c: float
    slowdown_temp_c: float
    shutdown_temp_c: float
    mem_max_temp_c: float
    idle_sm_clock_mhz: float
    max_sm_clock_mhz: float
    idle_mem_clock_mhz: float
    max_mem_clock_mhz: float
    idle_pstate: float
    has_fan: bool
    pcie_link_gen_max: float
    pcie_link_width_max: float
    vbios_version: str
    mig_capable: bool

    @property
    def mem_total_bytes(self) -> int:
        return int(self.mem_total_mib) * MIB


_TEXT_FIELDS = {"model", "name", "architecture", "form_factor", "vbios_version"}
_BOOL_FIELDS = {"has_fan", "mig_capable"}


def _parse_row(row: dict[str, str], line: int) -> GpuProfile:
    values: dict[str, object] = {}
    for spec in fields(GpuProfile):
        raw = (row.get(spec.name) or "").strip()
        if spec.name in _TEXT_FIELDS:
            if not raw:
                raise ValueError(f"{PROFILES_FILE} line {line}: {spec.name} is empty")
            values[spec.name] = raw
        elif spec.name in _BOOL_FIELDS:
            if raw not in ("0", "1"):
                raise ValueError(f"{PROFILES_FILE} line {line}: {spec.name} must be 0 or 1, got {raw!r}")
            values[spec.name] = raw == "1"
        else:
            try:
                values[spec.name] = float(raw) if raw else math.nan
            except ValueError:
                raise ValueError(f"{PROFILES_FILE} line {line}: {spec.name} is not a number: {raw!r}") from None
    return GpuProfile(**values)  # type: ignore[arg-type]  # one value of the right type per field, set above


@cache
def load_profiles() -> dict[str, GpuProfile]:
    """Every shipped profile, keyed by short model name ("H100", ...). Read once per process."""
    with resource_path(PROFILES_FILE).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    profiles = {}
    for line, row in enumerate(rows, start=2):
        profile = _parse_row(row, line)
        profiles[profile.model] = profile
    return profiles

"""What is stored per GPU and how precisely: the quantization step and the rollup kind of every metric.

Raw values are stored as integers `round(value / resolution)`, which is what makes the chunks
compact; the step is chosen at or below what the driver itself reports, so nothing a person can
see is lost:

    metric                                   resolution    why
    util_gpu_pct, util_mem_pct, fan_pct      1 %           NVML reports whole percent
    mem_used_bytes, mem_total_bytes          1 MiB         NVML framebuffer sizes are MiB-granular in practice
    temp_c, mem_temp_c                       1 °C          NVML reports whole degrees
    power_w, power_limit_w                   0.1 W         NVML reports mW; 0.1 W is far below sensor noise
    energy_j                                 1 J           deltas over a 1 s poll at 100s of W stay exact to <1 %
    sm_clock_mhz, mem_clock_mhz              1 MHz         NVML reports whole MHz
    pcie_tx_bytes_s, pcie_rx_bytes_s         1 kB/s        NVML reports KB/s
    pstate, pcie link gen/width, ECC, remap,
    replay counters, throttle_reasons_mask   1             exact integers
    state                                    1             GpuState code

NaN ("not supported") is kept as NaN through every level. Infinite values cannot be stored and
become NaN. A database records the specs it was created with (see `layout.py`), so changing a
resolution here only affects new databases and old data always decodes with its own steps.

Rollups keep, per bucket: min, avg and max of a gauge (the avg with one more decimal: resolution/10); the last value
of a counter (so deltas between buckets stay exact); the bitwise OR of a bitmask (any throttle reason seen in the bucket).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from gpuops.core.telemetry import SAMPLE_METRICS

#: Integer that stands for NaN in quantized columns. Real values are clipped well inside it.
NAN_CODE = np.iinfo(np.int64).min
# Quantized values are clipped to +-2**60 so that deltas of deltas never overflow int64.
_QUANT_LIMIT = float(2**60)

MIB = float(2**20)


class Kind(Enum):
    """How a metric rolls up into coarser buckets."""

    GAUGE = "gauge"  # min, avg, max
    COUNTER = "counter"  # last
    BITMASK = "bitmask"  # bitwise or


class Stat(Enum):
    """One statistic of a rollup bucket."""

    MIN = "min"
    AVG = "avg"
    MAX = "max"
    LAST = "last"
    OR = "or"


STATS_OF_KIND: dict[Kind, tuple[Stat, ...]] = {
    Kind.GAUGE: (Stat.MIN, Stat.AVG, Stat.MAX),
    Kind.COUNTER: (Stat.LAST,),
    Kind.BITMASK: (Stat.OR,),
}


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    resolution: float
    kind: Kind


_COUNTERS = frozenset(
    {
        "energy_j",
        "ecc_corrected_volatile",
        "ecc_uncorrected_volatile",
        "ecc_corrected_aggregate",
        "ecc_uncorrected_aggregate",
        "remapped_rows_correctable",
        "remapped_rows_uncorrectable",
        "remapped_rows_pending",
        "remapped_rows_failure",
        "pcie_replay_count",
    }
)
_RESOLUTIONS = {
    "mem_used_bytes": MIB,
    "mem_total_bytes": MIB,
    "power_w": 0.1,
    "power_limit_w": 0.1,
    "pcie_tx_bytes_s": 1000.0,
    "pcie_rx_bytes_s": 1000.0,
}

#: The GPU state is stored like a metric; a bucket keeps the state it ended in.
STATE_SPEC = MetricSpec("state", 1.0, Kind.COUNTER)


def default_metric_specs() -> tuple[MetricSpec, ...]:
    """Specs for a new database: the state, then every metric of the telemetry model in order."""
    specs = [STATE_SPEC]
    for name in SAMPLE_METRICS:
        if name == "throttle_reasons_mask":
            kind = Kind.BITMASK
        elif name in _COUNTERS:
            kind = Kind.COUNTER
        else:
            kind = Kind.GAUGE
        specs.append(MetricSpec(name, _RESOLUTIONS.get(name, 1.0), kind))
    return tuple(specs)


def quantize(values: np.ndarray, resolution: float) -> np.ndarray:
    """float64 values -> int64 steps; NaN and +-inf -> NAN_CODE."""
    scaled = np.asarray(values, dtype=np.float64) / resolution
    finite = np.isfinite(scaled)
    out = np.full(scaled.shape, NAN_CODE, dtype=np.int64)
    out[finite] = np.rint(np.clip(scaled[finite], -_QUANT_LIMIT, _QUANT_LIMIT))
    return out


def dequantize(codes: np.ndarray, resolution: float | np.ndarray) -> np.ndarray:
    """int64 steps -> float64 values, NAN_CODE -> NaN. `resolution` may be one per column."""
    out = codes.astype(np.float64) * resolution
    out[codes == NAN_CODE] = np.nan
    return out

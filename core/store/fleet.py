"""Fleet-wide figures computed once per poll at write time, so that a month-long fleet curve reads a
few thousand small rows instead of decoding every GPU's history."""

from __future__ import annotations

import numpy as np

from gpuops.core.telemetry import FleetSample, GpuState

#: Per-poll fleet figures, in table column order. All roll up as gauges (min, avg, max per bucket).
FLEET_METRICS: tuple[str, ...] = (
    "n_gpus",
    "n_ok",
    "n_lost",
    "n_unknown",
    "util_gpu_mean_pct",
    "util_mem_mean_pct",
    "power_total_w",
    "mem_used_total_bytes",
    "mem_total_total_bytes",
    "temp_max_c",
)

#: Fleet series named by the GPU state they count.
STATE_COUNT_METRICS: dict[GpuState, str] = {
    GpuState.OK: "n_ok",
    GpuState.LOST: "n_lost",
    GpuState.UNKNOWN: "n_unknown",
}


def _mean(column: np.ndarray) -> float:
    valid = column[~np.isnan(column)]
    return float(valid.mean()) if len(valid) else float("nan")


def _total(column: np.ndarray) -> float:
    valid = column[~np.isnan(column)]
    return float(valid.sum()) if len(valid) else float("nan")


def _max(column: np.ndarray) -> float:
    valid = column[~np.isnan(column)]
    return float(valid.max()) if len(valid) else float("nan")


def fleet_row(sample: FleetSample) -> tuple[float, ...]:
    """This poll's fleet figures in FLEET_METRICS order; NaN where no GPU reported the metric."""
    counts = np.bincount(sample.state.astype(np.int64), minlength=len(GpuState))
    metrics = sample.metrics
    return (
        float(len(sample)),
        float(counts[GpuState.OK]),
        float(counts[GpuState.LOST]),
        float(counts[GpuState.UNKNOWN]),
        _mean(metrics["util_gpu_pct"]),
        _mean(metrics["util_mem_pct"]),
        _total(metrics["power_w"]),
        _total(metrics["mem_used_bytes"]),
        _total(metrics["mem_total_bytes"]),
        _max(metrics["temp_c"]),
    )

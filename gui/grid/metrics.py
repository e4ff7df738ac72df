"""What the fleet grid can be coloured by, each on a fixed scale so colours mean the same
thing from one poll to the next (no auto-levels: a hot fleet must look hot)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gpuops.core.telemetry import FleetSample
from gpuops.gui.live.fleet_index import FleetIndex


def _with_fallback(column: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(column), fallback, column)


def _percent(used: np.ndarray, total: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = used * 100.0 / total
    out[~(total > 0)] = np.nan
    return out


def _utilization(sample: FleetSample, index: FleetIndex) -> np.ndarray:
    return sample.metrics["util_gpu_pct"].copy()


def _temperature(sample: FleetSample, index: FleetIndex) -> np.ndarray:
    return sample.metrics["temp_c"].copy()


def _power(sample: FleetSample, index: FleetIndex) -> np.ndarray:
    limit = _with_fallback(sample.metrics["power_limit_w"], index.power_limit_w)
    return _percent(sample.metrics["power_w"], limit)


def _memory(sample: FleetSample, index: FleetIndex) -> np.ndarray:
    total = _with_fallback(sample.metrics["mem_total_bytes"], index.mem_total_bytes)
    return _percent(sample.metrics["mem_used_bytes"], total)


@dataclass(frozen=True)
class GridMetric:
    """A colouring of the grid: values per GPU (a fresh array) on the scale [low, high]."""

    key: str
    label: str
    unit: str
    low: float
    high: float
    values: Callable[[FleetSample, FleetIndex], np.ndarray]


GRID_METRICS: tuple[GridMetric, ...] = (
    GridMetric("utilization", "GPU utilization", "%", 0.0, 100.0, _utilization),
    GridMetric("temperature", "Temperature", "°C", 20.0, 95.0, _temperature),
    GridMetric("power", "Power, share of limit", "%", 0.0, 100.0, _power),
    GridMetric("memory", "Memory used", "%", 0.0, 100.0, _memory),
)


def grid_metric(key: str) -> GridMetric:
    for metric in GRID_METRICS:
        if metric.key == key:
            return metric
    raise KeyError(f"unknown grid metric {key!r}; expected one of {[m.key for m in GRID_METRICS]}")

"""What the views ask of the history database; each function runs on the history loader's worker.

Results are frozen dataclasses of numpy arrays, so they cross to the GUI thread as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpuops.core.sources.prometheus_history import PrometheusHistory
from gpuops.core.store import HistoryReader
from gpuops.core.store.queries import HistoryEvent
from gpuops.gui.gpu.facts import HEALTH_COUNTERS

_BYTES_PER_GIB = float(1 << 30)
#: Plotted series -> (stored metric, scale to the plotted unit).
PLOTTED: dict[str, tuple[str, float]] = {
    "util_gpu_pct": ("util_gpu_pct", 1.0),
    "mem_used_gib": ("mem_used_bytes", 1.0 / _BYTES_PER_GIB),
    "temp_c": ("temp_c", 1.0),
    "power_w": ("power_w", 1.0),
}
#: Fleet trend series -> (stored fleet metric, scale).
TRENDS: dict[str, tuple[str, float]] = {
    "util_gpu_mean_pct": ("util_gpu_mean_pct", 1.0),
    "power_total_kw": ("power_total_w", 1e-3),
    "n_ok": ("n_ok", 1.0),
    "n_lost": ("n_lost", 1.0),
    "n_unknown": ("n_unknown", 1.0),
}


@dataclass(frozen=True)
class GpuHistory:
    """One GPU over [start, end): plotted series (ts, values), counter changes, events."""

    uuid: str
    start: float
    end: float
    ts: dict[str, np.ndarray]  # the first series is cut to about max_points; the others are not
    values: dict[str, np.ndarray]
    counters: dict[str, tuple[float | None, float | None]]  # metric -> (first, last) in range
    events: tuple[HistoryEvent, ...]
    resolution: str


def _first_last(values: np.ndarray) -> tuple[float | None, float | None]:
    finite = values[np.isfinite(values)]
    return (float(finite[0]), float(finite[-1])) if len(finite) else (None, None)


#: Counters are read at full resolution over this much at each end of the range.
_COUNTER_EDGE_S = 600.0


def _counter_edges(
    reader: HistoryReader | PrometheusHistory, uuid: str, start: float, end: float
) -> dict[str, tuple[float | None, float | None]]:
    """Each health counter's first and last recorded value in [start, end) (the span that has
    data). Raw polls near the two ends give exact values; where raw data has aged out, the
    rollups stand in."""
    metrics = list(HEALTH_COUNTERS)
    edge = min(end - start, _COUNTER_EDGE_S)
    head = reader.table(uuid, start, start + edge, "raw", metrics)
    tail = reader.table(uuid, end - edge, end, "raw", metrics)
    edges = {}
    for metric in metrics:
        first, _ = _first_last(head.columns[metric])
        _, last = _first_last(tail.columns[metric])
        if first is None or last is None:
            coarse_first, coarse_last = _first_last(reader.series(uuid, metric, start, end, 64).avg)
            first = coarse_first if first is None else first
            last = coarse_last if last is None else last
        edges[metric] = (first, last)
    return edges


def gpu_history(
    reader: HistoryReader | PrometheusHistory, uuid: str, start: float, end: float, max_points: int = 1000
) -> GpuHistory:
    if isinstance(reader, PrometheusHistory):
        return _gpu_history_from_prometheus(reader, uuid, start, end, max_points)
    # The first series picks the resolution (coverage-aware, about max_points points); the others
    # are read together at that resolution, decoding each stored chunk once instead of per series.
    names = list(PLOTTED)
    first_metric, first_scale = PLOTTED[names[0]]
    series = reader.series(uuid, first_metric, start, end, max_points)
    resolution = series.resolution
    ts, values = {names[0]: series.ts}, {names[0]: series.avg * first_scale}
    rest = [PLOTTED[name][0] for name in names[1:]]
    table = reader.table(uuid, start, end, resolution, rest)
    for name in names[1:]:
        metric, scale = PLOTTED[name]
        column = table.columns[metric if resolution == "raw" else f"{metric}_avg"]
        ts[name], values[name] = table.ts, column * scale
    plotted_ts = ts[next(iter(PLOTTED))]
    data_start = max(start, float(plotted_ts[0])) if len(plotted_ts) else start
    data_end = min(end, float(plotted_ts[-1]) + 1.0) if len(plotted_ts) else end
    counters = _counter_edges(reader, uuid, data_start, data_end)
    events = tuple(reader.events(start, end, gpu_uuid=uuid, kinds=("xid", "gpu_lost", "gpu_recovered")))
    return GpuHistory(uuid, start, end, ts, values, counters, events, resolution)


def _gpu_history_from_prometheus(
    reader: PrometheusHistory, uuid: str, start: float, end: float, max_points: int
) -> GpuHistory:
    """Each plotted series in about `max_points` buckets (Prometheus aggregates them, so every
    series is asked on its own); no bucket where Prometheus has no sample, so gaps stay gaps."""
    ts, values = {}, {}
    step = ""
    for name, (metric, scale) in PLOTTED.items():
        series = reader.series(uuid, metric, start, end, max_points)
        ts[name], values[name], step = series.ts, series.avg * scale, series.resolution
    plotted_ts = ts[next(iter(PLOTTED))]
    data_start = max(start, float(plotted_ts[0])) if len(plotted_ts) else start
    data_end = min(end, float(plotted_ts[-1]) + 1.0) if len(plotted_ts) else end
    counters = _counter_edges(reader, uuid, data_start, data_end)
    events = tuple(reader.events(start, end, gpu_uuid=uuid, kinds=("xid", "gpu_lost", "gpu_recovered")))
    return GpuHistory(uuid, start, end, ts, values, counters, events, f"Prometheus, {step} buckets")


@dataclass(frozen=True)
class FleetTrends:
    start: float
    end: float
    ts: np.ndarray
    values: dict[str, np.ndarray]
    resolution: str


def fleet_trends(reader: HistoryReader | PrometheusHistory, start: float, end: float, max_points: int = 1000) -> FleetTrends:
    metrics = sorted({metric for metric, _ in TRENDS.values()})
    series = reader.fleet_series(start, end, max_points, metrics=metrics)
    any_series = series[metrics[0]]
    values = {name: series[metric].avg * scale for name, (metric, scale) in TRENDS.items()}
    return FleetTrends(start, end, any_series.ts, values, any_series.resolution)


#: A lost GPU's last values are looked for this far before its loss; its XIDs this far.
LOSS_LOOKBACK_S = 3600.0
XIDS_BEFORE_LOSS_S = 86400.0


@dataclass(frozen=True)
class GpuLoss:
    """When a GPU was lost (None: the history has no loss of it), what it read last before, and
    the XID events of the day before the loss (oldest first)."""

    uuid: str
    lost_ts: float | None
    last_ts: float | None  # the time of the last reading before the loss
    last_values: dict[str, float | None]  # plotted series -> last finite value before the loss
    xids: tuple[HistoryEvent, ...]


def gpu_loss(reader: HistoryReader | PrometheusHistory, uuid: str, now: float) -> GpuLoss:
    """The loss the GPU is in at `now`: the last `gpu_lost` event with no `gpu_recovered` after it
    (a Prometheus history keeps no events, so it never knows the time)."""
    lost_ts = None
    for event in reader.events(0.0, now + 1.0, gpu_uuid=uuid, kinds=("gpu_lost", "gpu_recovered")):
        lost_ts = event.ts if event.kind == "gpu_lost" else None
    if lost_ts is None:
        return GpuLoss(uuid, None, None, dict.fromkeys(PLOTTED), ())
    metrics = [metric for metric, _ in PLOTTED.values()]
    table = reader.table(uuid, lost_ts - LOSS_LOOKBACK_S, lost_ts, "raw", metrics)
    answered = np.flatnonzero(np.any([np.isfinite(table.columns[m]) for m in metrics], axis=0)) if len(table.ts) else []
    last_values: dict[str, float | None] = dict.fromkeys(PLOTTED)
    last_ts = None
    if len(answered):
        row = int(answered[-1])
        last_ts = float(table.ts[row])
        for name, (metric, scale) in PLOTTED.items():
            value = float(table.columns[metric][row])
            last_values[name] = value * scale if np.isfinite(value) else None
    xids = tuple(reader.events(lost_ts - XIDS_BEFORE_LOSS_S, lost_ts + 1.0, gpu_uuid=uuid, kinds=("xid",)))
    return GpuLoss(uuid, lost_ts, last_ts, last_values, xids)

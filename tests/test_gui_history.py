"""The in-memory history behind the plots: ring order, copy-free windows, inventory changes."""

from __future__ import annotations

import numpy as np

from gpuops.gui.live.fleet_index import FleetIndex
from gpuops.gui.live.recent_history import HISTORY_SERIES, FleetHistory, TraceRing, sample_series
from tests.gui_support import make_inventory, make_sample


def values_at(t: float) -> dict[str, float]:
    return {name: t * 10 + k for k, name in enumerate(HISTORY_SERIES)}


def test_trace_ring_window_is_the_newest_points_in_order_and_a_contiguous_view():
    ring = TraceRing(5)
    for t in range(3):
        ring.append(float(t), values_at(t))
    ts, series = ring.window()
    assert ts.tolist() == [0.0, 1.0, 2.0]
    for t in range(3, 12):
        ring.append(float(t), values_at(t))
        ts, series = ring.window()
        assert ts.tolist() == [float(x) for x in range(max(0, t - 4), t + 1)]
        assert series["temp_c"].tolist() == [x * 10 + 2 for x in range(max(0, t - 4), t + 1)]
        assert ts.flags["C_CONTIGUOUS"] and ts.base is not None, "a view, not a copy"
        assert series["power_w"].base is not None


def test_trace_ring_load_keeps_the_newest_capacity_points():
    ring = TraceRing(4)
    ts = np.arange(10, dtype=np.float64)
    ring.load(ts, {name: ts * (k + 1) for k, name in enumerate(HISTORY_SERIES)})
    window_ts, series = ring.window()
    assert window_ts.tolist() == [6.0, 7.0, 8.0, 9.0]
    assert series["mem_used_gib"].tolist() == [12.0, 14.0, 16.0, 18.0]
    ring.append(10.0, values_at(10))
    assert ring.window()[0].tolist() == [7.0, 8.0, 9.0, 10.0]


def test_fleet_history_wraps_and_returns_one_gpu_oldest_first():
    gpus = make_inventory(6, gpus_per_node=3)
    history = FleetHistory(FleetIndex(gpus), capacity=4)
    for shift in range(7):
        sample = make_sample(gpus, ts=1000.0 + shift, shift=shift)
        history.append(sample, sample_series(sample))
    ts, series = history.gpu(2)
    assert ts.tolist() == [1003.0, 1004.0, 1005.0, 1006.0]
    assert series["util_gpu_pct"].tolist() == [(2 * 37 + s) % 101 for s in range(3, 7)]
    assert series["mem_used_gib"].tolist() == [float((2 * 13 + s) % 80) for s in range(3, 7)]


def test_fleet_history_carries_known_gpus_to_a_changed_inventory():
    gpus = make_inventory(6, gpus_per_node=3)
    history = FleetHistory(FleetIndex(gpus), capacity=4)
    for shift in range(2):
        sample = make_sample(gpus, ts=float(shift), shift=shift)
        history.append(sample, sample_series(sample))
    changed = (gpus[4], *make_inventory(8, gpus_per_node=3)[6:])  # GPU 4 stays, two new GPUs
    moved = history.carried_to(FleetIndex(changed))
    ts, series = moved.gpu(0)
    assert ts.tolist() == [0.0, 1.0]
    assert series["util_gpu_pct"].tolist() == [(4 * 37 + s) % 101 for s in range(2)]
    assert np.isnan(moved.gpu(1)[1]["temp_c"]).all()

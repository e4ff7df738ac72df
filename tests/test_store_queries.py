"""Reading history: automatic resolution, at most max_points with spikes kept, the fleet at a past
instant, fleet series, and readers that never wait for the writer."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from gpuops.core.store import HistoryReader, HistoryWriter
from gpuops.core.store.queries import choose_level
from gpuops.core.telemetry import SAMPLE_METRICS, FleetSample, GpuState
from tests.samples import edited, make_inventory
from tests.store_support import T0, varied_sample

HOUR = 3600.0
BUCKETS = (0, 60_000, 3_600_000)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[FleetSample]]:
    """Five GPUs polled every 10 s for 7 hours; GPU 3 spikes to 100 % for one poll at 3 h and is
    lost for ten minutes at 5 h. The first 6-hour window is stored as 1-minute rollups."""
    path = tmp_path_factory.mktemp("queries") / "history.sqlite"
    gpus = make_inventory(5)
    polls = []
    with HistoryWriter(path) as writer:
        for k in range(int(7 * HOUR / 10)):
            ts = T0 + 10 * k
            lost = (3,) if 5 * HOUR <= 10 * k < 5 * HOUR + 600 else ()
            sample = varied_sample(gpus, ts, seed=5, lost=lost)
            spike = 100.0 if 10 * k == 3 * HOUR else (5.0 if not lost else np.nan)
            sample = edited(sample, lambda m, v=spike: m["util_gpu_pct"].__setitem__(3, v))
            writer.write(sample)
            writer.maintain(0.001)
            polls.append(sample)
        while writer.maintain(5.0):
            pass
    return path, polls


def test_choose_level_prefers_coarse_buckets_that_still_fill_the_plot() -> None:
    covered = [0, 0, 0]
    assert choose_level(3_600_000, 2000, 0, covered, BUCKETS) == 0  # 1 h: raw (1.8 s per point)
    assert choose_level(86_400_000, 2000, 0, covered, BUCKETS) == 1  # 24 h: 1-minute buckets
    assert choose_level(30 * 86_400_000, 2000, 0, covered, BUCKETS) == 1  # 30 d: 43,200 minutes cut to 2000
    assert choose_level(365 * 86_400_000, 2000, 0, covered, BUCKETS) == 2
    # Raw only reaches back 2 days: a 3-day range at high resolution takes the finest level that does.
    assert choose_level(3 * 86_400_000, 200_000, 0, [2 * 86_400_000, 0, 0], BUCKETS) == 1
    # Nothing reaches back that far: the level reaching furthest.
    assert choose_level(86_400_000, 2000, 0, [5, 9, None], BUCKETS) == 0
    assert choose_level(86_400_000, 2000, 0, [None, None, None], BUCKETS) == 1


def test_series_picks_its_resolution_and_keeps_spikes(history: tuple[Path, list[FleetSample]]) -> None:
    path, _ = history
    uuid = make_inventory(5)[3].uuid
    with HistoryReader(path) as reader:
        hour = reader.series(uuid, "util_gpu_pct", T0 + 2.5 * HOUR, T0 + 3.5 * HOUR, max_points=2000)
        assert hour.resolution == "raw" and len(hour) == 360
        whole = reader.series(uuid, "util_gpu_pct", T0, T0 + 7 * HOUR, max_points=300)
        assert whole.resolution == "1m" and 200 < len(whole) <= 300
        assert np.nanmax(whole.max) == 100.0 and np.nanmin(whole.min) == 5.0  # the one-poll spike survives
        assert np.nanmax(whole.avg) < 50
        assert np.all(np.diff(whole.ts) > 0)
        tiny = reader.series(uuid, "util_gpu_pct", T0, T0 + 7 * HOUR, max_points=7)
        assert len(tiny) <= 7 and np.nanmax(tiny.max) == 100.0
        lost = reader.series(uuid, "util_gpu_pct", T0 + 5 * HOUR, T0 + 5 * HOUR + 600, resolution="raw")
        assert len(lost) == 60 and np.isnan(lost.avg).all()


def test_series_of_an_unknown_gpu_or_metric_is_refused(history: tuple[Path, list[FleetSample]]) -> None:
    path, _ = history
    with HistoryReader(path) as reader:
        with pytest.raises(Exception, match="no GPU"):
            reader.series("GPU-nope", "power_w", T0, T0 + HOUR)
        with pytest.raises(KeyError):
            reader.series(make_inventory(1)[0].uuid, "bogus_metric", T0, T0 + HOUR)


def test_the_fleet_at_a_past_instant(history: tuple[Path, list[FleetSample]]) -> None:
    """Within the head, exactly the poll at or before t; older history from the keyframe of that
    minute; nothing when the nearest data is older than the staleness window."""
    path, polls = history
    by_ts = {p.ts: p for p in polls}
    with HistoryReader(path) as reader:
        recent = reader.fleet_at(T0 + 7 * HOUR - 25)  # still in the head: the poll 5 s before
        assert recent.ts == T0 + 7 * HOUR - 30
        expected = by_ts[recent.ts]
        assert [g.uuid for g in recent.gpus] == [g.uuid for g in expected.gpus]
        for name in SAMPLE_METRICS:
            assert np.allclose(recent.metrics[name], expected.metrics[name], atol=0.05, rtol=1e-9, equal_nan=True), name
        past = reader.fleet_at(T0 + 5 * HOUR + 95)  # compacted: the keyframe of that minute
        assert past.ts == T0 + 5 * HOUR + 60
        assert past.gpu_state(3) is GpuState.LOST and past.gpu_state(0) is GpuState.OK
        assert np.allclose(past.metrics["power_w"], by_ts[past.ts].metrics["power_w"], atol=0.05, equal_nan=True)
        assert past.processes == ((),) * 5
        assert reader.fleet_at(T0 - 1) is None
        assert reader.fleet_at(T0 + 7 * HOUR + 1000, staleness_s=60) is None


def test_fleet_series(history: tuple[Path, list[FleetSample]]) -> None:
    path, polls = history
    with HistoryReader(path) as reader:
        fleet = reader.fleet_series(T0, T0 + 7 * HOUR, max_points=500, metrics=["n_lost", "power_total_w", "util_gpu_mean_pct"])
    assert fleet["n_lost"].resolution == "1m"
    lost_minutes = fleet["n_lost"].ts[fleet["n_lost"].max > 0]
    assert lost_minutes.min() >= T0 + 5 * HOUR - 60 and lost_minutes.max() < T0 + 5 * HOUR + 600
    totals = np.array([np.nansum(p.metrics["power_w"]) for p in polls])
    assert np.nanmax(fleet["power_total_w"].max) == pytest.approx(totals.max(), abs=0.01)
    assert np.nanmin(fleet["power_total_w"].min) == pytest.approx(totals.min(), abs=0.01)
    assert len(fleet["util_gpu_mean_pct"]) <= 500


def test_readers_never_wait_for_the_writer(tmp_path: Path) -> None:
    """A reader holding a snapshot open does not block polls or compaction, and keeps seeing
    its snapshot until it ends it."""
    path = tmp_path / "history.sqlite"
    gpus = make_inventory(4)
    with HistoryWriter(path) as writer:
        writer.write(varied_sample(gpus, T0, seed=6))
        reader = sqlite3.connect(path, timeout=0, isolation_level=None)
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM fleet_samples").fetchone()[0] == 1
        for k in range(1, 100):
            assert writer.write(varied_sample(gpus, T0 + 10 * k, seed=6))
        assert not writer.maintain(5.0)
        assert writer.status().last_error is None and writer.status().written_polls == 100
        assert reader.execute("SELECT count(*) FROM fleet_samples").fetchone()[0] == 1
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM fleet_samples").fetchone()[0] == 100
        assert reader.execute("SELECT count(*) FROM samples").fetchone()[0] > 0
        reader.close()


def test_a_range_reaching_before_the_history_began_is_still_read_raw(tmp_path: Path) -> None:
    """Minute rollups are stored in windows hours long, so their first window starts well before
    the first poll: that is no reason to read minutes where raw polls hold the same data (an hour
    around an instant near the history's start, as replay asks, came back in minute buckets)."""
    path = tmp_path / "history.sqlite"
    gpus = make_inventory(4)
    first = float(int(time.time()) // 60 * 60 - 1500 + 17)  # recent, not on a minute nor on a rollup window
    with HistoryWriter(path) as writer:
        for k in range(40):
            writer.write(varied_sample(gpus, first + 30 * k, seed=3))
        while writer.maintain(5.0):
            pass
    with HistoryReader(path) as reader:
        assert len(reader.series(gpus[0].uuid, "util_gpu_pct", first, first + 1200, resolution="1m")), "rollups built"
        around = reader.series(gpus[0].uuid, "util_gpu_pct", first - 1500, first + 2100, max_points=200)
    assert around.resolution == "raw" and len(around) == 40

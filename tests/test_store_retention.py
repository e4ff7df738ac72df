"""Rollups and pruning: rolled-up buckets equal what the raw polls say, the newest data is rolled
up on the fly the same way, and pruning removes only what has expired and been rolled up."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from gpuops.core.store import HistoryReader, HistoryWriter, RetentionPolicy
from gpuops.core.store.columns import Stat
from gpuops.core.telemetry import FleetSample
from tests.samples import make_inventory
from tests.store_support import T0, bucket_stats, varied_sample

HOUR = 3600.0
DAY = 86400.0


def _write(path: Path, times: list[float], *, retention: RetentionPolicy | None = None, n_gpus: int = 3) -> list[FleetSample]:
    """Write polls at `times` (refused ones included), maintaining as a collector would; returns
    the polls that were stored."""
    gpus = make_inventory(n_gpus)
    stored = []
    with HistoryWriter(path, retention=retention) as writer:
        for ts in times:
            sample = varied_sample(gpus, ts, seed=3)
            if writer.write(sample):
                stored.append(sample)
            writer.maintain(0.002)
        while writer.maintain(5.0):
            pass
    return stored


def _expect(polls: list[FleetSample], i: int, metric: str, resolution: float, bucket_s: float, stat: Stat) -> dict[float, float]:
    times = np.array([p.ts for p in polls])
    values = np.round(np.array([p.metrics[metric][i] for p in polls]) / resolution) * resolution
    return bucket_stats(times, values, bucket_s, stat)


def _check(series, expected: dict[float, float], stat_name: str, tolerance: float) -> None:
    got = dict(zip(series.ts.tolist(), getattr(series, stat_name).tolist(), strict=True))
    assert got.keys() == expected.keys()
    for ts, value in expected.items():
        assert got[ts] == pytest.approx(value, abs=tolerance, nan_ok=True), (ts, stat_name)


def test_minute_rollups_stored_and_on_the_fly_equal_the_raw_polls(tmp_path: Path) -> None:
    """13 h of polls every 30 s, with the clock stepping back twice: the first two 6-hour windows
    are stored as 1-minute chunks, the last hour is rolled up at read time; both match."""
    path = tmp_path / "history.sqlite"
    times = [T0 + 30 * k + 0.013 * (k % 7) for k in range(26 * 60)]
    times[400:400] = [times[399] - 45.0, times[399] - 0.5]  # refused: earlier than what is stored
    times[1500:1500] = [times[1499] - 3 * HOUR]
    polls = _write(path, times)
    assert len(polls) == 26 * 60
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(DISTINCT t0_ms) FROM rollup_1m").fetchone()[0] == 2
    conn.close()
    gpus = polls[0].gpus
    with HistoryReader(path) as reader:
        for i in (0, 2):
            uuid = gpus[i].uuid
            util = reader.series(uuid, "util_gpu_pct", T0, T0 + 13 * HOUR, resolution="1m")
            assert util.resolution == "1m" and len(util) == 13 * 60
            for stat in ("min", "avg", "max"):
                _check(util, _expect(polls, i, "util_gpu_pct", 1, 60, Stat(stat)), stat, 0.051 if stat == "avg" else 1e-6)
            power = reader.series(uuid, "power_w", T0, T0 + 13 * HOUR, resolution="1m")
            _check(power, _expect(polls, i, "power_w", 0.1, 60, Stat.AVG), "avg", 0.0051)
            energy = reader.series(uuid, "energy_j", T0, T0 + 13 * HOUR, resolution="1m")
            _check(energy, _expect(polls, i, "energy_j", 1, 60, Stat.LAST), "max", 1e-6)
            mask = reader.series(uuid, "throttle_reasons_mask", T0, T0 + 13 * HOUR, resolution="1m")
            _check(mask, _expect(polls, i, "throttle_reasons_mask", 1, 60, Stat.OR), "avg", 1e-6)
            hourly = reader.series(uuid, "util_gpu_pct", T0, T0 + 13 * HOUR, resolution="1h")
            for stat in ("min", "avg", "max"):
                _check(hourly, _expect(polls, i, "util_gpu_pct", 1, HOUR, Stat(stat)), stat, 0.11 if stat == "avg" else 1e-6)
        fleet = reader.fleet_series(T0, T0 + 13 * HOUR, resolution="1m", metrics=["util_gpu_mean_pct", "n_ok"])
        means = np.array([np.nanmean(p.metrics["util_gpu_pct"]) for p in polls])
        expected = bucket_stats(np.array([p.ts for p in polls]), means, 60, Stat.AVG)
        _check(fleet["util_gpu_mean_pct"], expected, "avg", 1e-9)
        assert set(fleet["n_ok"].max.tolist()) == {3.0}


def test_hour_rollups_are_built_from_minute_rollups_and_pruning_follows_retention(tmp_path: Path) -> None:
    """Nine days of polls every 10 minutes with short retentions: old raw and 1-minute data are
    pruned only once rolled up, and a plot of the whole range falls back to 1-hour buckets."""
    path = tmp_path / "history.sqlite"
    times = [T0 + 600 * k for k in range(9 * 144)]
    retention = RetentionPolicy(raw_s=2 * HOUR, rollup_1m_s=2 * DAY, rollup_1h_s=30 * DAY)
    polls = _write(path, times, retention=retention, n_gpus=2)
    newest = times[-1]
    conn = sqlite3.connect(path)
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    rolled_1h = int(meta["rolled_1h_until_ms"]) / 1000
    assert rolled_1h > T0  # a whole 7-day window was rolled up into stored 1-hour chunks
    assert conn.execute("SELECT count(*) FROM rollup_1h").fetchone()[0] == 2
    oldest_raw = conn.execute("SELECT min(t0_ms) FROM samples").fetchone()[0] / 1000
    oldest_poll = conn.execute("SELECT min(ts_ms) FROM fleet_samples").fetchone()[0] / 1000
    oldest_minute = conn.execute("SELECT min(t0_ms) FROM rollup_1m").fetchone()[0] / 1000
    rolled_1m = int(meta["rolled_1m_until_ms"]) / 1000
    # Expired data is gone, except what the next level has not rolled up yet...
    assert oldest_raw >= min(newest - 2 * HOUR, rolled_1m) - 300 and oldest_poll >= min(newest - 2 * HOUR, rolled_1m) - 600
    assert oldest_minute >= min(newest - 2 * DAY, rolled_1h) - 6 * HOUR
    # ...which is all still there.
    assert oldest_raw <= rolled_1m and oldest_poll <= rolled_1m and oldest_minute <= rolled_1h
    assert rolled_1m >= newest - 12 * HOUR
    assert conn.execute("SELECT count(*) FROM keyframes WHERE ts_ms < ?", ((newest - 2 * HOUR) * 1000,)).fetchone()[0] == 0
    conn.close()
    with HistoryReader(path) as reader:
        whole = reader.series(polls[0].gpus[1].uuid, "util_gpu_pct", T0, newest + 1, max_points=100_000)
        assert whole.resolution == "1h"
        _check(whole, _expect(polls, 1, "util_gpu_pct", 1, HOUR, Stat.MAX), "max", 1e-6)
        _check(whole, _expect(polls, 1, "util_gpu_pct", 1, HOUR, Stat.AVG), "avg", 0.11)


def test_background_work_is_done_in_small_steps_between_writes(tmp_path: Path) -> None:
    """A backlog of compaction and rollups is worked off one short step per call, and polls keep
    being written in between."""
    path = tmp_path / "history.sqlite"
    gpus = make_inventory(20)
    interval = 60
    with HistoryWriter(path) as writer:
        for k in range(0, int(6.5 * HOUR), interval):
            writer.write(varied_sample(gpus, T0 + k, seed=4))
        steps = 0
        ts = T0 + 6.5 * HOUR
        while writer.maintain(0.0):  # a zero budget still makes one step of progress
            steps += 1
            if steps % 2 == 0:  # a poll arrives every other step
                ts += interval
                assert writer.write(varied_sample(gpus, ts, seed=4))
        assert steps > 78  # at least one step per 5-minute window compacted
        assert writer.status().written_polls == 6.5 * HOUR / interval + steps // 2
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(DISTINCT gpu_id) FROM rollup_1m").fetchone()[0] == 20
    assert conn.execute("SELECT count(*) FROM samples_head WHERE ts_ms < ?", ((ts - 300) * 1000,)).fetchone()[0] == 0
    conn.close()

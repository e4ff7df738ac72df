"""kill -9 at any moment: the history passes integrity_check, keeps every poll that was reported
stored, and stays consistent (each poll once, in order; rollups equal to the raw polls)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from gpuops.core.store import HistoryReader
from gpuops.core.store.columns import Stat
from tests.samples import make_inventory
from tests.store_crash_child import INTERVAL_S, N_GPUS
from tests.store_support import T0, bucket_stats, varied_sample

REPO = Path(__file__).resolve().parent.parent


def _reported(log: Path) -> list[int]:
    return [int(line.split()[1]) for line in log.read_text().splitlines() if line.startswith("stored ")]


def _wait_for_output(log: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not log.read_text().count("stored"):
        time.sleep(0.05)


def _check_history(path: Path, reported: set[int]) -> None:
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    polls = [ts for (ts,) in conn.execute("SELECT ts_ms FROM fleet_samples ORDER BY ts_ms")]
    conn.close()
    assert reported <= set(polls)  # nothing reported stored was lost
    assert polls == sorted(set(polls))
    gpus = make_inventory(N_GPUS)
    times = np.array(polls) / 1000
    written = np.array([varied_sample(gpus, t, seed=9).metrics["util_gpu_pct"] for t in times])
    with HistoryReader(path) as reader:
        for index in (0, N_GPUS - 1):
            uuid = gpus[index].uuid
            table = reader.table(uuid, T0, times[-1] + 1, metrics=["util_gpu_pct"])
            assert [round(t * 1000) for t in table.ts] == polls  # each poll exactly once, compacted or not
            util = reader.series(uuid, "util_gpu_pct", T0, times[-1] + 1, resolution="1m")
            assert dict(zip(util.ts.tolist(), util.max.tolist(), strict=True)) == bucket_stats(
                times, written[:, index], 60, Stat.MAX
            )


def test_a_writer_killed_at_random_moments_loses_nothing_it_reported(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    rng = random.Random(1234)
    reported: set[int] = set()
    for run in range(5):
        log = tmp_path / f"run{run}.log"
        with open(log, "w") as out:
            child = subprocess.Popen(
                [sys.executable, "-m", "tests.store_crash_child", str(path)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT
            )
            _wait_for_output(log)
            time.sleep(rng.uniform(0.2, 1.0))
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        stored = _reported(log)
        assert stored, log.read_text()
        reported.update(stored)
    conn = sqlite3.connect(path)
    rolled = conn.execute("SELECT count(*) FROM rollup_1m").fetchone()[0]
    conn.close()
    assert rolled > 0  # the kills also hit compaction and rollups, not only polls
    assert (max(reported) - round(T0 * 1000)) / 1000 / INTERVAL_S + 1 >= len(reported)
    _check_history(path, reported)


def test_the_collector_killed_repeatedly_keeps_a_sound_history(tmp_path: Path) -> None:
    """`gpuops collect` on the simulated fleet, killed with SIGKILL at random moments and
    restarted: every poll it logged as stored is there, in order, and the file is sound."""
    path = tmp_path / "history.sqlite"
    rng = random.Random(99)
    reported: set[int] = set()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for run in range(4):
        log = tmp_path / f"collect{run}.log"
        with open(log, "w") as out:
            child = subprocess.Popen(
                [sys.executable, "-m", "gpuops", "-v", "collect", "--source", "demo:16", "--db", str(path), "--interval", "0.05"],
                cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env,
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and "stored poll at" not in log.read_text():
                time.sleep(0.05)
            time.sleep(rng.uniform(0.1, 1.0))
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        lines = [line for line in log.read_text().splitlines() if "stored poll at" in line]
        assert lines, log.read_text()
        reported.update(round(float(line.split("stored poll at ")[1].split()[0]) * 1000) for line in lines)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    polls = [ts for (ts,) in conn.execute("SELECT ts_ms FROM fleet_samples ORDER BY ts_ms")]
    conn.close()
    assert reported <= set(polls)
    with HistoryReader(path) as reader:
        uuid = reader.gpus()[0].uuid
        table = reader.table(uuid, polls[0] / 1000, polls[-1] / 1000 + 1, metrics=["power_w"])
        assert [round(t * 1000) for t in table.ts] == polls

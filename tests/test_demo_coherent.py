"""The simulated fleet is coherent with its demo book (issue 14 item 8): workloads run on the GPUs
the book allocates, and busy-but-unallocated is a handful of GPUs (more than none, so the feature
shows), not half the fleet: a new user's first picture is not an alert flood."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from gpuops.core.alerts.persistence import AlertStore
from gpuops.core.allocations.busy import busy_mask
from gpuops.core.sources.demo import DemoSource
from gpuops.core.store.connection import open_database
from tests.alerts_support import collect_with_alerts
from tests.allocations_support import open_repo


class MinuteByMinute(DemoSource):
    """The simulated fleet polled once a simulated minute, so that rules with a `for` fire."""

    def __init__(self, n_gpus: int, start_ts: float) -> None:
        super().__init__(n_gpus, seed=0, start_ts=start_ts - 3600)
        self.next_ts = start_ts

    def poll(self):
        self.next_ts += 60.0
        return self.sample_at(self.next_ts)


def test_demo_512_raises_a_handful_of_busy_unallocated_alerts(tmp_path: Path) -> None:
    """Eight minutes of polls: busy_unallocated (for 5 min) fires for a handful of GPUs."""
    path = tmp_path / "history.sqlite"
    polls = collect_with_alerts(path, MinuteByMinute(512, time.time() - 900), 8, demo_seed=0)
    conn, _ = open_database(path, create=False)
    try:
        active = [a for a in AlertStore(conn).active_alerts() if a.rule == "busy_unallocated" and a.state.value == "firing"]
    finally:
        conn.close()
    assert 1 <= len(active) <= 8, len(active)
    repo = open_repo(path, read_only=True)
    try:
        sample = polls[-1]
        held = np.array([c is not None for c in repo.index().customer_of([g.uuid for g in sample.gpus], sample.ts)])
    finally:
        repo.close()
    busy, _, _ = busy_mask(sample)
    assert held.sum() > 200 and busy.sum() > 150
    assert 1 <= int((busy & ~held).sum()) <= 8, "busy GPUs nobody holds: a handful"
    assert {a.gpu_uuid for a in active} <= {sample.gpus[i].uuid for i in np.flatnonzero(busy & ~held)}


@pytest.mark.parametrize("n_gpus", [64, 10_000])
def test_workloads_follow_the_book_at_every_size_and_by_seed(n_gpus: int) -> None:
    from gpuops.core.allocations.demo_customers import demo_holdings
    from gpuops.core.sources.demo_fleet import BUSY_UNALLOCATED_PER_GPUS, build_fleet

    ts = 1_763_798_400.0
    samples = {}
    for seed in (0, 1):
        held = demo_holdings(build_fleet(n_gpus, seed)) >= 0
        sample = DemoSource(n_gpus, seed=seed, start_ts=ts - 3600).sample_at(ts)
        busy, _, _ = busy_mask(sample)
        unheld = int((busy & ~held).sum())
        assert 1 <= unheld <= max(3, 2 * n_gpus // BUSY_UNALLOCATED_PER_GPUS), (seed, unheld)
        samples[seed] = sample
    again = DemoSource(n_gpus, seed=0, start_ts=ts - 3600).sample_at(ts)
    assert np.array_equal(again.metrics["util_gpu_pct"], samples[0].metrics["util_gpu_pct"], equal_nan=True)

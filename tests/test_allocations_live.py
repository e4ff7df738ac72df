"""Allocations next to the collector: the demo book is seeded once the simulated fleet is stored,
busy-but-unallocated GPUs are recorded, and the allocated_idle / busy_unallocated alert rules
fire because each poll is evaluated with who holds each GPU; edits to the book are followed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gpuops.core.alerts.persistence import AlertStore
from gpuops.core.allocations.busy import EVENT_KIND
from gpuops.core.allocations.live import AllocationFollower, LiveAllocations
from gpuops.core.pipeline import PollPipeline
from gpuops.core.sources.demo import DemoSource
from gpuops.core.store.connection import open_database
from tests.alerts_support import collect_with_alerts
from tests.allocations_support import DAY_MS, T0_MS, make_history, open_repo
from tests.samples import make_inventory, make_sample

GPUS = make_inventory(4)
IDLE, BUSY = 0, 1  # GPU 0 is allocated and idle, GPU 1 busy and unallocated


def test_collecting_a_simulated_fleet_seeds_the_demo_book_and_records_busy_unallocated(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    polls = collect_with_alerts(
        path, DemoSource(n_gpus=64, seed=0), 3, demo_seed=0
    )
    repo = open_repo(path, read_only=True)
    try:
        assert len(repo.customers()) == 8
        index = repo.index()
        held = index.customer_of([g.uuid for g in polls[-1].gpus], polls[-1].ts)
        assert sum(name is not None for name in held) > 0
        events = repo.conn.execute("SELECT count(*) FROM events WHERE kind = ?", (EVENT_KIND,)).fetchone()[0]
        unallocated_busy = [i for i, name in enumerate(held) if name is None and len(polls[-1].processes[i])]
        assert unallocated_busy, "the demo book leaves some busy GPUs unallocated"
        assert events >= len(unallocated_busy)
    finally:
        repo.close()


def test_a_book_already_filled_is_left_alone_and_other_fleets_are_never_seeded(tmp_path: Path) -> None:
    path = make_history(tmp_path / "history.sqlite", GPUS)
    conn, _ = open_database(path, create=False)
    live = LiveAllocations(conn, demo_seed=0)
    live.observe(make_sample(gpus=GPUS, ts=T0_MS / 1000))
    assert live.repo.customers() == []
    conn.close()


def _poll(ts: float, busy_util: float = 90.0):
    return make_sample(gpus=GPUS, ts=ts, values={"util_gpu_pct": {IDLE: 0.0, BUSY: busy_util, 2: 50.0, 3: 50.0}})


def _active(conn) -> dict[str, tuple[str, str]]:
    return {
        a.rule: (a.gpu_uuid, a.state.value)
        for a in AlertStore(conn).active_alerts()
        if a.rule in ("allocated_idle", "busy_unallocated")
    }


def test_allocated_idle_and_busy_unallocated_fire_through_the_collector_hook(tmp_path: Path) -> None:
    path = make_history(tmp_path / "history.sqlite", GPUS)
    repo = open_repo(path)
    acme = repo.add_customer("Acme")
    contract = repo.add_contract(acme.id, "ACME-1", "reserved", "H100", 4, T0_MS - DAY_MS, T0_MS + DAY_MS, 2.0)
    repo.allocate(contract.id, [GPUS[IDLE].uuid, GPUS[2].uuid, GPUS[3].uuid], T0_MS - DAY_MS)
    pipeline = PollPipeline.open(path, poll_interval_s=60.0)
    alerts = pipeline.alerts
    try:
        t0 = T0_MS / 1000
        for minute in range(0, 40, 1):
            sample = _poll(t0 + minute * 60)
            pipeline.process(sample, sample.ts)
        active = _active(alerts.store.conn)
        assert active == {"allocated_idle": (GPUS[IDLE].uuid, "firing"), "busy_unallocated": (GPUS[BUSY].uuid, "firing")}
        [idle] = [a for a in AlertStore(alerts.store.conn).active_alerts() if a.rule == "allocated_idle"]
        assert "Acme" in idle.summary

        # The busy GPU is allocated now: the collector notices the change at its next poll.
        repo.allocate(contract.id, [GPUS[BUSY].uuid], round((t0 + 40 * 60) * 1000))
        for minute in range(40, 43):
            sample = _poll(t0 + minute * 60)
            pipeline.process(sample, sample.ts)
        assert "busy_unallocated" not in _active(alerts.store.conn)
    finally:
        pipeline.close()
        repo.close()


def test_the_follower_rebuilds_its_index_on_changes_and_every_refresh(tmp_path: Path) -> None:
    path = make_history(tmp_path / "history.sqlite", GPUS)
    repo = open_repo(path)
    clock = [0.0]
    follower = AllocationFollower(open_repo(path, read_only=True), refresh_s=60.0, clock=lambda: clock[0])
    first = follower.index()
    assert follower.index() is first  # nothing changed
    acme = repo.add_customer("Acme")
    assert follower.index() is not first  # the audit log grew
    second = follower.index()
    clock[0] = 61.0
    assert follower.index() is not second  # a minute passed
    contract = repo.add_contract(acme.id, "c", "reserved", "H100", 1, T0_MS, T0_MS + DAY_MS, 1.0)
    repo.allocate(contract.id, [GPUS[0].uuid], T0_MS)
    assert follower.index().holder(GPUS[0].uuid, T0_MS).customer == "Acme"
    mask = follower.index().allocated_mask(make_sample(gpus=GPUS, ts=T0_MS / 1000))
    assert np.array_equal(mask, [True, False, False, False])
    follower.repo.close()
    repo.close()

"""Allocations next to a live fleet, for whoever records it (`gpuops collect`, or the console
recording itself): who holds each GPU of a poll (for the alert rules and the grid), which busy
GPUs nobody pays for (recorded once per episode), and the demo book for a simulated fleet.

The allocation index is rebuilt only when the book changed, which every change announces with
an audit entry (one indexed read per poll: the newest audit id), and at least every
`refresh_s` so that an edit made around the repository (the sqlite3 shell) is picked up too.
A failing database never ends collection: the poll gets no allocation context, the problem is
logged once while it lasts.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from gpuops.core.allocations.busy import BusyUnallocated, BusyUnallocatedRecorder, find_busy_unallocated
from gpuops.core.allocations.demo_customers import seed_demo_customers
from gpuops.core.allocations.errors import AllocationError
from gpuops.core.allocations.index import AllocationIndex
from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.logonce import LastingProblem
from gpuops.core.sources.demo_fleet import build_fleet
from gpuops.core.store.errors import StoreError
from gpuops.core.telemetry import FleetSample

log = logging.getLogger("gpuops.allocations")

#: The index is rebuilt at least this often, changed or not.
REFRESH_S = 60.0


@dataclass(frozen=True)
class PollAllocations:
    """One poll seen against the book: `allocated[i]` per GPU of the sample, `customers` UUID ->
    customer (allocated GPUs only), the busy-but-unallocated GPUs with why. `allocated` is None
    when the book could not be read."""

    allocated: np.ndarray | None = None
    customers: Mapping[str, str] = field(default_factory=dict)
    busy: BusyUnallocated | None = None


def book_revision(conn: sqlite3.Connection) -> int:
    """Grows with every change to customers, contracts or allocations (each writes the audit log)."""
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()[0])


class AllocationFollower:
    """A current `AllocationIndex` at the cost of one small read per call (see the module docstring)."""

    def __init__(
        self, repo: AllocationRepository, *, refresh_s: float = REFRESH_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.repo = repo
        self._refresh_s = refresh_s
        self._clock = clock
        self._index: AllocationIndex | None = None
        self._revision = -1
        self._loaded_at = 0.0

    def index(self) -> AllocationIndex:
        revision = book_revision(self.repo.conn)
        if self._index is None or revision != self._revision or self._clock() - self._loaded_at >= self._refresh_s:
            self._index = self.repo.index()
            self._revision = revision
            self._loaded_at = self._clock()
        return self._index

    @property
    def revision(self) -> int:
        """The book revision of the index last returned."""
        return self._revision


class LiveAllocations:
    """Per recorded poll: allocation context for the alert rules, busy-but-unallocated events,
    and (with `demo_seed`, the seed of a simulated fleet) the demo customers once the history
    has stored the fleet, if the book is empty. The connection is the caller's, used on one thread."""

    def __init__(self, conn: sqlite3.Connection, *, demo_seed: int | None = None, refresh_s: float = REFRESH_S) -> None:
        self.repo = AllocationRepository(conn)
        self.follower = AllocationFollower(self.repo, refresh_s=refresh_s)
        self.busy = BusyUnallocatedRecorder(conn)
        self._demo_seed = None if demo_seed is None else int(demo_seed) & 0xFFFF_FFFF_FFFF_FFFF
        self._customers: Mapping[str, str] = {}
        self._problem = LastingProblem(log)

    def observe(self, sample: FleetSample) -> PollAllocations:
        """The poll against the book; records newly busy-but-unallocated GPUs. Never raises for a
        database problem (see the module docstring)."""
        try:
            self._maybe_seed(sample)
            index = self.follower.index()
            uuids = [g.uuid for g in sample.gpus]
            held = index.customer_of(uuids, sample.ts)
            customers = {uuid: name for uuid, name in zip(uuids, held, strict=True) if name is not None}
            if customers != self._customers:
                self._customers = customers  # the same object while unchanged: the alert engine caches by identity
            allocated = np.fromiter((name is not None for name in held), dtype=bool, count=len(held))
            busy = find_busy_unallocated(sample, allocated)
            self.busy.record(sample, busy)
        except (sqlite3.Error, StoreError, AllocationError) as exc:
            self._problem.occur(f"allocations not available for this poll: {exc}")
            return PollAllocations()
        self._problem.resolve()
        return PollAllocations(allocated, self._customers, busy)

    def _maybe_seed(self, sample: FleetSample) -> None:
        """Seed the demo book once: only for the simulated fleet of that seed (its UUIDs match),
        only into an empty book, and only once the history holds its GPUs (else: next poll)."""
        if self._demo_seed is None:
            return
        if self.repo.customers() or not _is_demo_fleet(sample, self._demo_seed):
            self._demo_seed = None
            return
        known = self.repo.gpu_names()
        if not all(g.uuid in known for g in sample.gpus):
            return
        seed, self._demo_seed = self._demo_seed, None
        if seed_demo_customers(self.repo, len(sample), seed, sample.ts):
            log.info("simulated fleet: seeded the demo customers, contracts and allocations")


def _is_demo_fleet(sample: FleetSample, seed: int) -> bool:
    layout = build_fleet(len(sample), seed)
    return [g.uuid for g in layout.gpus] == [g.uuid for g in sample.gpus]

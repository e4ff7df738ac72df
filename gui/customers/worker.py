"""Everything the console does with customers, contracts and allocations, on one worker thread
(a `StoreWorker`).

The GUI thread queues requests and hears back frozen answers through signals, so a usage report
that takes seconds, or a locked database, never freezes the window:
- each poll (coalesced: the newest replaces one still waiting) gives the health and supply for
  dialogs and the capacity plan; while the console does not record the history itself (a
  collector does, or --read-only) it is also seen against the book here, who holds each GPU
  and which busy GPUs nobody pays for (`fleetHeld`); while it records, the recorder's pipeline
  computes that once per poll and `fleet_held` words it;
- the book (customers, contracts, the allocation index) is read again when it changed (one
  small read every few seconds) and at least every minute (`bookChanged`);
- reads (usage report, timeline, capacity plan, audit log) are coalesced per kind;
- writes (allocate, release, audit export) queue in order and are never dropped; each answers
  with an `ActionResult` (refusals listed one problem a line, or the GPUs that need confirming).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from gpuops.core.allocations.accounting import CustomerUsage, usage_report
from gpuops.core.allocations.audit import AuditEntry, export_audit_csv
from gpuops.core.allocations.busy import BusyUnallocated, find_busy_unallocated
from gpuops.core.allocations.capacity import HOLDING, CapacitySeries, book_supply, capacity_plan
from gpuops.core.allocations.confirmation import unhealthy_gpus
from gpuops.core.allocations.errors import AllocationError, NeedsConfirmation, Problem, UnhealthyGpu, ValidationError
from gpuops.core.allocations.index import AllocationIndex
from gpuops.core.allocations.live import AllocationFollower, PollAllocations
from gpuops.core.allocations.model import Allocation, Contract, Customer
from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.health import FleetHealth
from gpuops.core.lifecycle.book import Transition, out_of_production
from gpuops.core.store import NoHistory, StoreError
from gpuops.core.store.connection import open_database, open_read_only, snapshot_outdated
from gpuops.core.telemetry import FleetSample
from gpuops.gui.workers.store_worker import Jobs, StoreWorker

log = logging.getLogger("gpuops.gui.allocations")

#: How often the book is checked for changes made elsewhere (one small read).
CHECK_S = 5.0
DAY_MS = 86_400_000
#: The capacity plan looks this far back and ahead of now.
CAPACITY_PAST_MS = 30 * DAY_MS
CAPACITY_AHEAD_MS = 540 * DAY_MS


@dataclass(frozen=True)
class Book:
    """Customers, contracts and the allocation index as read at `revision`."""

    customers: tuple[Customer, ...]
    contracts: tuple[Contract, ...]
    index: AllocationIndex
    revision: int
    lifecycle: Mapping[str, Transition] = field(default_factory=dict)  # GPUs out of production, UUID -> why


@dataclass(frozen=True)
class FleetHeld:
    """One poll against the book: UUID -> customer (allocated GPUs) and UUID -> why it is busy
    but unallocated."""

    ts: float
    customers: Mapping[str, str]
    busy: Mapping[str, str]


def fleet_held(sample: FleetSample, customers: Mapping[str, str], busy: BusyUnallocated) -> FleetHeld:
    """The grid's view of one poll against the book: `busy` worded per UUID."""
    return FleetHeld(sample.ts, customers, {sample.gpus[i].uuid: busy.reason(i) for i in np.flatnonzero(busy.mask)})


def recorded_held(sample: FleetSample, allocations: PollAllocations) -> FleetHeld | None:
    """`fleet_held` of a poll the recorder's pipeline saw (None: the book could not be read)."""
    if allocations.busy is None:
        return None
    return fleet_held(sample, allocations.customers, allocations.busy)


@dataclass(frozen=True)
class UsageResult:
    start_ms: int
    end_ms: int
    report: tuple[CustomerUsage, ...]
    contracted_now: Mapping[int, int]  # customer id -> GPUs under holding contracts now
    computed_s: float


@dataclass(frozen=True)
class TimelineData:
    customers: tuple[Customer, ...]
    contracts: tuple[Contract, ...]
    allocations: tuple[Allocation, ...]
    now_ms: int


@dataclass(frozen=True)
class CapacityResult:
    plan: tuple[CapacitySeries, ...]
    start_ms: int
    end_ms: int
    now_ms: int


@dataclass(frozen=True)
class ActionResult:
    """How a write went: `problems` lists every reason a change was refused, `unhealthy` the
    GPUs to confirm (repeat with confirm=True)."""

    ok: bool
    message: str
    problems: tuple[str, ...] = ()
    unhealthy: tuple[UnhealthyGpu, ...] = ()


class AllocationWorker(StoreWorker["_Session"]):
    """See the module docstring. `read_only` opens the book read-only: every write is refused.
    The poll is (sample, health); a write is an action on the session. `problem` (inherited):
    "" once the book can be read again."""

    unavailable_errors = (sqlite3.Error, StoreError, AllocationError)

    bookChanged = Signal(object)  # Book
    fleetHeld = Signal(object)  # FleetHeld
    usageReady = Signal(object)  # UsageResult
    timelineReady = Signal(object)  # TimelineData
    capacityReady = Signal(object)  # CapacityResult
    auditReady = Signal(object)  # tuple[AuditEntry, ...]
    actionDone = Signal(object)  # ActionResult

    def __init__(
        self, db_path: Path, parent: QObject | None = None, *, read_only: bool = False, check_s: float = CHECK_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(parent, area="allocations", log=log)
        self.db_path = Path(db_path)
        self.read_only = read_only
        self._clock = clock
        signals = {
            "book": self.bookChanged, "held": self.fleetHeld, "usage": self.usageReady, "timeline": self.timelineReady,
            "capacity": self.capacityReady, "audit": self.auditReady, "action": self.actionDone,
        }
        self._start(signals, check_s, self.check_book)

    # --- requests (GUI thread; never block) ----------------------------------------------

    def process(self, sample: FleetSample, health: FleetHealth | None = None, *, hold: bool = True) -> None:
        """The newest poll: for health and supply, and (`hold`) seen against the book for
        `fleetHeld` (False while the console's recorder computes that)."""
        self._set_poll(lambda _waiting: (sample, health, hold))

    def check_book(self) -> None:
        self._read("book")

    def query_usage(self, start_ms: int, end_ms: int) -> None:
        self._read("usage", (start_ms, end_ms))

    def query_timeline(self) -> None:
        self._read("timeline")

    def query_capacity(self) -> None:
        self._read("capacity")

    def query_audit(self, limit: int = 2000) -> None:
        self._read("audit", limit)

    def allocate(
        self, contract_id: int, uuids: tuple[str, ...], start_ms: int, end_ms: int | None, *, confirm: bool = False
    ) -> None:
        def write(worker: _Session) -> str:
            worker.repo().allocate(
                contract_id, uuids, start_ms, end_ms, confirm=confirm, unhealthy_gpus=worker.unhealthy()
            )
            return f"{len(uuids)} GPU(s) allocated to {worker.repo().contract(contract_id).name}"

        self._write(write)

    def release(self, uuids: tuple[str, ...], at_ms: int) -> None:
        """End, at `at_ms`, every allocation of these GPUs still running then (or remove the
        ones that start later)."""

        def write(worker: _Session) -> str:
            repo = worker.repo()
            wanted = set(uuids)
            ids = [a.id for a in repo.allocations(start_ms=at_ms) if a.gpu_uuid in wanted]
            if not ids:
                raise ValidationError([Problem(f"none of the {len(wanted)} selected GPU(s) is allocated at or after that time")])
            repo.release(ids, at_ms)
            return f"{len(ids)} allocation(s) of {len(wanted)} GPU(s) released"

        self._write(write)

    def export_audit(self, path: Path) -> None:
        def write(worker: _Session) -> str:
            return f"{export_audit_csv(worker.repo().conn, path)} audit entries written to {path}"

        self._write(write)

    # --- the worker thread ----------------------------------------------------------------

    def _open_session(self) -> _Session:
        return _Session(self.db_path, self.read_only, self.watch)

    def _problem_line(self, exc: Exception) -> str:
        if isinstance(exc, NoHistory):
            return "customers: no history yet (allocations live in the history database)"
        return f"customers not available: {exc}"

    def _run(self, session: _Session, jobs: Jobs) -> None:
        if jobs.poll is not None:
            session.sample, session.health, _hold = jobs.poll
        for action in jobs.writes:
            self._send("action", _attempt(action, session))
        if jobs.stopping:
            return  # the window is closing: nobody is left to show the book to
        book = session.book(force=bool(jobs.writes) or "book" in jobs.reads)
        if book is not None:
            self._send("book", book, self._latest.get("book", 0))
        if jobs.poll is not None and jobs.poll[2]:
            self._send("held", session.held(jobs.poll[0]))
        now_ms = round(self._clock() * 1000)
        for kind, read in jobs.reads.items():
            if kind != "book":
                self._send(kind, _read(session, kind, read.argument, now_ms), read.generation)


class _Session:
    """The worker's repository, opened on first use (the history may not exist yet) and again
    after a failure; the last poll it saw, for health and supply."""

    def __init__(self, db_path: Path, read_only: bool, watch: Callable[[sqlite3.Connection], None]) -> None:
        self._db_path = db_path
        self._read_only = read_only
        self._watch = watch  # lets the worker abandon a read when it stops
        self._repo: AllocationRepository | None = None
        self._follower: AllocationFollower | None = None
        self._shown_revision: tuple[int, int] | None = None
        self.sample: FleetSample | None = None
        self.health: FleetHealth | None = None

    def repo(self) -> AllocationRepository:
        if self._repo is not None and snapshot_outdated(self._repo.conn, self._db_path):
            self.close()  # read-only on a history at rest until now: reopen to see what is written
        if self._repo is None:
            if self._read_only:
                conn, _layout = open_read_only(self._db_path)
            else:
                conn, _layout = open_database(self._db_path, create=False)
            self._watch(conn)
            self._repo = AllocationRepository(conn, read_only=self._read_only)
            self._follower = AllocationFollower(self._repo)
        return self._repo

    def index(self) -> AllocationIndex:
        self.repo()
        assert self._follower is not None
        return self._follower.index()

    def book(self, *, force: bool) -> Book | None:
        """The book when it changed since last shown (or `force`), else None."""
        index = self.index()
        assert self._follower is not None
        key = (self._follower.revision, id(index))
        if not force and key == self._shown_revision:
            return None
        self._shown_revision = key
        repo = self.repo()
        return Book(
            tuple(repo.customers()), tuple(repo.contracts()), index, self._follower.revision, out_of_production(repo.conn)
        )

    def held(self, sample: FleetSample) -> FleetHeld:
        index = self.index()
        uuids = [g.uuid for g in sample.gpus]
        held = index.customer_of(uuids, sample.ts)
        customers = {u: c for u, c in zip(uuids, held, strict=True) if c is not None}
        found = find_busy_unallocated(sample, np.fromiter((c is not None for c in held), dtype=bool, count=len(held)))
        return fleet_held(sample, customers, found)

    def unhealthy(self) -> Mapping[str, str] | None:
        """Lost or critical GPUs of the last poll (None before any: the stored states decide)."""
        return None if self.sample is None else unhealthy_gpus(self.sample, self.health)

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()
        self._repo = self._follower = None
        self._shown_revision = None


def _read(session: _Session, kind: str, argument: Any, now_ms: int) -> object:
    repo = session.repo()
    if kind == "usage":
        start_ms, end_ms = argument
        began = time.perf_counter()
        report = tuple(usage_report(repo, start_ms, end_ms))
        contracted: dict[int, int] = {}
        for c in repo.contracts():
            if c.status in HOLDING and c.start_ms <= now_ms < c.end_or_open_ms:
                contracted[c.customer_id] = contracted.get(c.customer_id, 0) + c.gpu_count
        return UsageResult(start_ms, end_ms, report, contracted, time.perf_counter() - began)
    if kind == "timeline":
        return TimelineData(tuple(repo.customers()), tuple(repo.contracts()), tuple(repo.allocations()), now_ms)
    if kind == "capacity":
        supply, returning = book_supply(repo.conn, session.sample, session.health)
        start, end = now_ms - CAPACITY_PAST_MS, now_ms + CAPACITY_AHEAD_MS
        plan = capacity_plan(repo.contracts(), supply, start, end, returning=returning)
        return CapacityResult(tuple(plan), start, end, now_ms)
    if kind == "audit":
        entries: tuple[AuditEntry, ...] = tuple(repo.audit_log(limit=argument))
        return entries
    raise ValueError(f"unknown read {kind!r}")


def _attempt(action: Callable[[_Session], str], session: _Session) -> ActionResult:
    """Run a write; refusals come back as a failed result with every problem, or the GPUs to confirm."""
    try:
        return ActionResult(True, action(session))
    except NeedsConfirmation as exc:
        return ActionResult(False, "Some GPUs are lost or faulty: confirm to allocate them anyway", unhealthy=exc.gpus)
    except ValidationError as exc:
        return ActionResult(
            False, f"Nothing was changed: {len(exc.problems)} problem(s)", problems=tuple(str(p) for p in exc.problems)
        )
    except (AllocationError, OSError) as exc:
        return ActionResult(False, f"Nothing was changed: {exc}")

"""Writing polls into the history: one transaction per poll, never losing more than the poll in flight.

`HistoryWriter.write(sample)` encodes the poll (quantized, one compressed blob per block of GPUs)
and commits it, with its fleet figures and events, as one transaction into the durable head. A
killed process therefore loses at most the poll it was writing. `maintain(budget_s)` then does the
background work in short transactions: compaction of the head into per-GPU chunks, rollups, pruning.

When the database cannot be written (full disk, read-only file, I/O error) polls wait, encoded, in
a bounded in-memory backlog; the writer keeps accepting them, exposes the error in `status()` (for a
status bar) and writes the backlog out, oldest first, as soon as a write succeeds again.

Polls must arrive in time order: a poll not newer than the last one stored (the clock was stepped
back) is refused with a warning, so every series stays sorted and rollups stay consistent.

A writer holds the database's writer lock (`locking.py`) for its lifetime. Call it from one thread
(a worker, never the GUI thread); `status()` may be read from any thread.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gpuops.core.logonce import LastingProblem
from gpuops.core.store import meta
from gpuops.core.store.blocks import encode_blocks
from gpuops.core.store.columns import NAN_CODE, quantize
from gpuops.core.store.connection import BUSY_TIMEOUT_MS, open_database
from gpuops.core.store.errors import StoreError, failure_cause
from gpuops.core.store.fleet import FLEET_METRICS, fleet_row
from gpuops.core.store.inventory import DETAIL_FIELDS, SELECT_INVENTORY, detail_values, inventory_from_row
from gpuops.core.store.layout import StoreLayout
from gpuops.core.store.locking import WriterLock
from gpuops.core.store.maintenance import Maintenance
from gpuops.core.store.retention import RetentionPolicy
from gpuops.core.telemetry import FleetSample, GpuInventory, GpuState

log = logging.getLogger("gpuops.store")

DEFAULT_BACKLOG_BYTES = 64 * 2**20
# While another process holds the write lock (a bulk import, an acknowledgement), a poll waits
# this long, then in the backlog until the next poll: the poll loop never stalls behind it.
POLL_BUSY_WAIT_MS = 50
_NEVER_SEEN = 255
# Repeat a persisting problem in the log at most this often.
_REMIND_AFTER_S = 300.0

Connector = Callable[[Path], tuple[sqlite3.Connection, StoreLayout]]


def _problem(level: int) -> LastingProblem:
    """One reason polls are not being stored as they should (the database refuses writes, the
    clock is behind, background work fails): the same message at most every few minutes, however
    often the problem comes and goes."""
    return LastingProblem(log, level, prefix="history: ", remind_after_s=_REMIND_AFTER_S)


def _open_for_writing(path: Path) -> tuple[sqlite3.Connection, StoreLayout]:
    return open_database(path, create=True)


@dataclass(frozen=True)
class WriterStatus:
    """A snapshot for status bars and logs. `last_error` says why polls are not being stored
    right now (None while all is well)."""

    last_error: str | None = None
    backlog_polls: int = 0
    dropped_polls: int = 0
    rejected_polls: int = 0
    written_polls: int = 0
    last_written_ts: float | None = None


@dataclass
class _PreparedPoll:
    """Everything one poll (or one source error) writes, encoded and ready to commit."""

    ts_ms: int | None
    new_nodes: list[tuple] = field(default_factory=list)
    new_gpus: list[tuple] = field(default_factory=list)
    changed_gpus: list[tuple] = field(default_factory=list)
    state_changes: list[tuple] = field(default_factory=list)
    blocks: list[tuple] = field(default_factory=list)
    fleet: tuple | None = None
    events: list[tuple] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(len(block[3]) for block in self.blocks) + 256

    def absorb_structure(self, dropped: _PreparedPoll) -> None:
        """Keep inventory and events of a poll dropped from a full backlog: later polls refer to them."""
        self.new_nodes[:0] = dropped.new_nodes
        self.new_gpus[:0] = dropped.new_gpus
        self.changed_gpus[:0] = dropped.changed_gpus
        self.state_changes[:0] = dropped.state_changes
        self.events[:0] = dropped.events


_INSERT_GPU = (
    f"INSERT INTO gpus (id, uuid, node_id, gpu_index, {', '.join(DETAIL_FIELDS)}, first_seen_ms, last_seen_ms, last_state) "
    f"VALUES ({', '.join('?' * (len(DETAIL_FIELDS) + 7))})"
)
_UPDATE_GPU = (
    f"UPDATE gpus SET node_id = ?, gpu_index = ?, {', '.join(f'{name} = ?' for name in DETAIL_FIELDS)} WHERE id = ?"
)
_INSERT_FLEET = (
    f"INSERT INTO fleet_samples (ts_ms, {', '.join(FLEET_METRICS)}) VALUES ({', '.join('?' * (len(FLEET_METRICS) + 1))})"
)


class HistoryWriter:
    """The one writer of a history database (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        retention: RetentionPolicy | None = None,
        backlog_limit_bytes: int = DEFAULT_BACKLOG_BYTES,
        connect: Connector = _open_for_writing,
    ) -> None:
        """Take the writer lock and open (or create) the database. Raises CollectorRunning when
        another process writes to it, or another StoreError when the file cannot be used.
        `connect` opens the connection (and reopens it after a failed write)."""
        self.path = Path(path)
        self._connect = connect
        self._backlog_limit = backlog_limit_bytes
        lock = WriterLock(self.path)
        self._lock: WriterLock | None = lock  # None once closed
        try:
            self._conn: sqlite3.Connection | None
            self._conn, self.layout = connect(self.path)
            self._load_state(self._conn)
        except BaseException:
            lock.release()
            raise
        self._maintenance = Maintenance(self.layout, retention or RetentionPolicy())
        self._backlog: deque[_PreparedPoll] = deque()
        self._backlog_bytes = 0
        self._busy_since: float | None = None  # monotonic time the write lock was first found taken
        self._write_problem = _problem(logging.ERROR)
        self._clock_problem = _problem(logging.WARNING)
        self._maintenance_problem = _problem(logging.ERROR)
        self._counts = {"dropped": 0, "rejected": 0, "written": 0}
        self._status = WriterStatus(last_written_ts=self._high_water_ms / 1000 if self._high_water_ms else None)
        self._active_errors: frozenset[str] = frozenset()

    # -- state kept in memory between polls ------------------------------------------------------

    def _load_state(self, conn: sqlite3.Connection) -> None:
        self._node_ids = dict(conn.execute("SELECT name, id FROM nodes"))
        self._gpu_ids: dict[str, int] = {}
        self._inventory: dict[int, GpuInventory] = {}
        states = np.full(1024, _NEVER_SEEN, dtype=np.uint8)
        for row in conn.execute(SELECT_INVENTORY):
            gpu_id, uuid, index, node = row[:4]
            self._gpu_ids[uuid] = gpu_id
            self._inventory[gpu_id] = inventory_from_row(uuid, index, node, row[4:])
        for gpu_id, state in conn.execute("SELECT id, last_state FROM gpus WHERE last_state IS NOT NULL"):
            states = _grown(states, gpu_id, _NEVER_SEEN)
            states[gpu_id] = state
        self._next_gpu_id = max(self._inventory, default=0) + 1
        self._states = _grown(states, self._next_gpu_id, _NEVER_SEEN)
        self._next_node_id = max(self._node_ids.values(), default=0) + 1
        self._high_water_ms = conn.execute("SELECT max(ts_ms) FROM fleet_samples").fetchone()[0] or 0
        self._committed_high_water_ms = self._high_water_ms
        self._last_gpus: tuple[GpuInventory, ...] | None = None
        self._last_ids = np.empty(0, np.int64)

    def _ids_for(self, sample: FleetSample, ts_ms: int, poll: _PreparedPoll) -> np.ndarray:
        """Database ids of the sample's GPUs, registering new GPUs and inventory changes in `poll`."""
        if sample.gpus is self._last_gpus:
            return self._last_ids
        ids = np.empty(len(sample.gpus), dtype=np.int64)
        for i, gpu in enumerate(sample.gpus):
            gpu_id = self._gpu_ids.get(gpu.uuid)
            if gpu_id is None:
                gpu_id = self._register(gpu, ts_ms, int(sample.state[i]), poll)
            elif self._inventory[gpu_id] is not gpu and self._inventory[gpu_id] != gpu:
                self._inventory[gpu_id] = gpu
                poll.changed_gpus.append((self._node_id(gpu.node, ts_ms, poll), gpu.index, *detail_values(gpu), gpu_id))
            ids[i] = gpu_id
        self._last_gpus, self._last_ids = sample.gpus, ids
        return ids

    def _node_id(self, name: str, ts_ms: int, poll: _PreparedPoll) -> int:
        node_id = self._node_ids.get(name)
        if node_id is None:
            node_id = self._node_ids[name] = self._next_node_id
            self._next_node_id += 1
            poll.new_nodes.append((node_id, name, ts_ms, ts_ms))
        return node_id

    def _register(self, gpu: GpuInventory, ts_ms: int, state: int, poll: _PreparedPoll) -> int:
        gpu_id = self._next_gpu_id
        self._next_gpu_id += 1
        self._gpu_ids[gpu.uuid] = gpu_id
        self._inventory[gpu_id] = gpu
        node_id = self._node_id(gpu.node, ts_ms, poll)
        poll.new_gpus.append((gpu_id, gpu.uuid, node_id, gpu.index, *detail_values(gpu), ts_ms, ts_ms, state))
        self._states = _grown(self._states, gpu_id, _NEVER_SEEN)
        self._states[gpu_id] = state
        return gpu_id

    # -- encoding a poll -------------------------------------------------------------------------

    def _prepare(self, sample: FleetSample) -> _PreparedPoll | None:
        if not math.isfinite(sample.ts):
            raise ValueError(f"poll timestamp {sample.ts!r} is not a number")
        ts_ms = round(sample.ts * 1000)
        if ts_ms <= self._high_water_ms:
            self._refuse_backwards(ts_ms)
            return None
        self._clock_problem.resolve("the clock caught up, storing polls again")
        poll = _PreparedPoll(ts_ms)
        ids = self._ids_for(sample, ts_ms, poll)
        layout = self.layout
        codes = np.empty((len(ids), len(layout.metrics)), dtype=np.int64)
        for j, spec in enumerate(layout.metrics):
            column = sample.state if spec.name == "state" else sample.metrics.get(spec.name)
            codes[:, j] = NAN_CODE if column is None else quantize(column, spec.resolution)
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        blocks = sorted_ids // layout.block_size
        starts = [0, *(np.flatnonzero(np.diff(blocks)) + 1).tolist()] if len(ids) else []
        keyframe = int(ts_ms // layout.keyframe_interval_ms > self._high_water_ms // layout.keyframe_interval_ms)
        for start, blob in zip(starts, encode_blocks(sorted_ids, codes[order], starts) if starts else [], strict=True):
            poll.blocks.append((int(blocks[start]), ts_ms, keyframe, blob))
        poll.fleet = (ts_ms, *fleet_row(sample))
        self._add_events(sample, ids, ts_ms, poll)
        self._high_water_ms = ts_ms
        return poll

    def _add_events(self, sample: FleetSample, ids: np.ndarray, ts_ms: int, poll: _PreparedPoll) -> None:
        state = sample.state.astype(np.uint8)
        previous = self._states[ids]
        changed = previous != state
        for i in np.flatnonzero(changed):
            gpu_id, old, new = int(ids[i]), int(previous[i]), int(state[i])
            poll.state_changes.append((new, gpu_id))
            if new == GpuState.LOST and old != _NEVER_SEEN:
                poll.events.append((ts_ms, "gpu_lost", gpu_id, None, None))
            elif new == GpuState.OK and old == GpuState.LOST:
                poll.events.append((ts_ms, "gpu_recovered", gpu_id, None, None))
        self._states[ids] = state
        for xid in sample.xid_events:
            xid_gpu = self._gpu_ids.get(xid.uuid)
            poll.events.append((round(xid.ts * 1000), "xid", xid_gpu, xid.code, None if xid_gpu else xid.uuid))
        self._track_source_errors(frozenset(sample.errors), ts_ms, poll)

    def _track_source_errors(self, errors: frozenset[str], ts_ms: int, poll: _PreparedPoll) -> None:
        """Record a source error when it appears and when it clears, not on every poll."""
        for message in sorted(errors - self._active_errors):
            poll.events.append((ts_ms, "source_error", None, None, message))
        for message in sorted(self._active_errors - errors):
            poll.events.append((ts_ms, "source_error_cleared", None, None, message))
        self._active_errors = errors

    def _refuse_backwards(self, ts_ms: int) -> None:
        self._counts["rejected"] += 1
        message = self._clock_problem.message or (
            f"the clock went {(self._high_water_ms - ts_ms) / 1000:.1f} s behind the last stored poll; "
            "polls are not stored until it catches up"
        )
        self._clock_problem.occur(message, f" ({self._counts['rejected']} refused so far)")
        self._publish()

    # -- committing ------------------------------------------------------------------------------

    def write(self, sample: FleetSample) -> bool:
        """Store one poll (a transaction of its own). Returns False if it was refused because it is
        not newer than the last stored poll. A failing database does not raise: the poll waits in
        the backlog and `status().last_error` says why."""
        poll = self._prepare(sample)
        if poll is None:
            return False
        self._enqueue(poll)
        return True

    def record_source_error(self, message: str, ts: float) -> None:
        """Note that polling the whole source failed (the collector calls this instead of write)."""
        poll = _PreparedPoll(None)
        self._track_source_errors(frozenset({message}), round(ts * 1000), poll)
        if poll.events:
            self._enqueue(poll)

    def _enqueue(self, poll: _PreparedPoll) -> None:
        self._backlog.append(poll)
        self._backlog_bytes += poll.nbytes
        self._flush()
        self._publish()

    def _flush(self, busy_wait_ms: int = POLL_BUSY_WAIT_MS) -> None:
        written = 0
        while self._backlog:
            poll = self._backlog[0]
            try:
                self._commit(poll, busy_wait_ms)
            except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
                raise
            except (sqlite3.DatabaseError, StoreError) as exc:
                if busy_wait_ms < BUSY_TIMEOUT_MS and self._briefly_busy(exc):
                    return  # the polls wait in the backlog for the next try
                self._failed(
                    self._write_problem,
                    f"cannot write the history {self.path}: {failure_cause(exc, self.path)}",
                    f"; keeping polls in memory (up to {self._backlog_limit >> 20} MiB) and retrying",
                )
                self._trim_backlog()
                return
            self._busy_since = None
            self._backlog.popleft()
            self._backlog_bytes -= poll.nbytes
            written += 1
            if poll.ts_ms is not None:
                self._counts["written"] += 1
                self._committed_high_water_ms = poll.ts_ms
        self._write_problem.resolve(f"writing resumed ({written} waiting polls written, {self._counts['dropped']} dropped)")

    def _briefly_busy(self, exc: Exception) -> bool:
        """True while another process has held the write lock for less than the usual busy
        timeout: not a failure yet (after that it is one, logged as such)."""
        if getattr(exc, "sqlite_errorname", "") not in ("SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT"):
            return False
        now = time.monotonic()
        if self._busy_since is None:
            self._busy_since = now
        return now - self._busy_since < BUSY_TIMEOUT_MS / 1000

    def _commit(self, poll: _PreparedPoll, busy_wait_ms: int) -> None:
        if self._conn is None:
            self._conn, _ = self._connect(self.path)
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {busy_wait_ms}")
        with meta.write_transaction(conn):
            conn.executemany("INSERT INTO nodes (id, name, first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?)", poll.new_nodes)
            conn.executemany(_INSERT_GPU, poll.new_gpus)
            conn.executemany(_UPDATE_GPU, poll.changed_gpus)
            conn.executemany("UPDATE gpus SET last_state = ? WHERE id = ?", poll.state_changes)
            conn.executemany("INSERT INTO samples_head (block, ts_ms, keyframe, data) VALUES (?, ?, ?, ?)", poll.blocks)
            if poll.fleet is not None:
                conn.execute(_INSERT_FLEET, poll.fleet)
            conn.executemany("INSERT INTO events (ts_ms, kind, gpu_id, code, detail) VALUES (?, ?, ?, ?, ?)", poll.events)

    def _failed(self, problem: LastingProblem, message: str, detail: str = "") -> None:
        problem.occur(message, detail)
        # Reopen on the next attempt: a connection that hit a read-only file stays read-only.
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _trim_backlog(self) -> None:
        while self._backlog_bytes > self._backlog_limit and len(self._backlog) > 1:
            dropped = self._backlog.popleft()
            self._backlog_bytes -= dropped.nbytes
            self._backlog[0].absorb_structure(dropped)
            if dropped.ts_ms is not None:
                if self._counts["dropped"] == 0:
                    log.error("history: the in-memory backlog is full; dropping the oldest unwritten polls")
                self._counts["dropped"] += 1

    def _publish(self) -> None:
        self._status = WriterStatus(
            last_error=self._write_problem.message or self._clock_problem.message or self._maintenance_problem.message,
            backlog_polls=sum(1 for poll in self._backlog if poll.ts_ms is not None),
            dropped_polls=self._counts["dropped"],
            rejected_polls=self._counts["rejected"],
            written_polls=self._counts["written"],
            last_written_ts=self._committed_high_water_ms / 1000 if self._committed_high_water_ms else None,
        )

    def status(self) -> WriterStatus:
        return self._status

    @property
    def last_error(self) -> str | None:
        """Why polls are not being stored right now, in one line; None while all is well."""
        return self._status.last_error

    # -- background work and shutdown ------------------------------------------------------------

    def maintain(self, budget_s: float) -> bool:
        """Compact, roll up and prune for up to about `budget_s` (each step a short transaction;
        one step may overrun the budget by its own length). Returns True if work remains.
        Does nothing while writes are failing."""
        if self._backlog or self._conn is None:
            return False
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {POLL_BUSY_WAIT_MS}")
            more = self._maintenance.run(self._conn, self._committed_high_water_ms, time.monotonic() + budget_s)
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorname", "").startswith("SQLITE_BUSY"):
                return True  # another process writes for now: the work waits for the next call
            self._failed(
                self._maintenance_problem, f"background work (compaction, rollups, pruning) on {self.path} failed: {exc}"
            )
            self._publish()
            return False
        if self._maintenance_problem.message is not None:
            self._maintenance_problem.resolve("background work resumed")
            self._publish()
        return more

    def close(self) -> None:
        """Write out what the backlog holds (if the database takes it), then release the file and
        the lock. What is still unwritten is reported in the log. Safe to call twice."""
        if self._lock is None:
            return
        if self._backlog:
            self._flush(BUSY_TIMEOUT_MS)
        if self._backlog:
            log.error(
                "history: %d polls could not be written before closing: %s", len(self._backlog), self._write_problem.message
            )
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._lock.release()
        self._lock = None

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _grown(array: np.ndarray, index: int, fill: int) -> np.ndarray:
    if index < len(array):
        return array
    grown = np.full(max(index + 1, 2 * len(array)), fill, dtype=array.dtype)
    grown[: len(array)] = array
    return grown

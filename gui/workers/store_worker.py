"""One daemon thread that does an area's SQLite work for the GUI thread (alerts, allocations).

The GUI thread only queues requests, which never block, and hears back frozen answers through
signals, so a locked or slow database never freezes the window. What waits for the thread:
- the latest poll (a newer one replaces one still waiting: only the fleet now matters);
- reads, coalesced per kind: asking again replaces a request still waiting, and an answer older
  than the newest request of its kind is dropped on the GUI thread;
- writes, in order, never dropped; `stop` finishes the ones queued before the thread ends,
  and abandons a read under way (its SQLite statements are aborted through a progress handler
  the session installs with `watch`), so quitting never waits for a long usage report.
The session (the area's connection) is opened lazily on the thread, and closed after a database
error so that the next job opens it again; the error reaches the GUI as the `problem` signal,
sent only when the problem changes ("" once the area can be read again).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from PySide6.QtCore import QObject, QTimer, Signal, SignalInstance

from gpuops.core.logonce import LastingProblem
from gpuops.core.store import NoHistory
from gpuops.gui.workers.bridge import Bridge


class Session(Protocol):
    """What the worker needs of an area's session: closing it (after an error, and at the end)."""

    def close(self) -> None: ...


SessionT = TypeVar("SessionT", bound=Session)

#: SQLite virtual-machine steps between two looks at whether `stop` wants a read abandoned.
_PROGRESS_STEPS = 10_000


@dataclass(frozen=True)
class Read:
    """A read of `kind` asked for as request number `generation`."""

    kind: str
    generation: int
    argument: Any = None


@dataclass
class Jobs:
    """What the thread has to do next: the latest poll, coalesced reads, ordered writes."""

    poll: Any = None
    reads: dict[str, Read] = field(default_factory=dict)
    writes: deque = field(default_factory=deque)
    stopping: bool = False

    def empty(self) -> bool:
        return self.poll is None and not self.reads and not self.writes


@dataclass(frozen=True)
class _Answer:
    kind: str
    generation: int
    payload: object


class StoreWorker(QObject, Generic[SessionT]):
    """See the module docstring. A subclass sets up its own fields, then calls `_start`; it
    turns its requests into `_set_poll` / `_read` / `_write`, and does the work in `_run`
    (on the thread), answering with `_send`."""

    problem = Signal(str)  # the area cannot be read or written; "" once it can again

    #: Errors that mean the database is not usable now (the session is reopened at the next job).
    unavailable_errors: tuple[type[Exception], ...] = ()

    def __init__(self, parent: QObject | None, *, area: str, log: logging.Logger) -> None:
        super().__init__(parent)
        self._unavailable = LastingProblem(log, logging.WARNING, prefix=f"{area}: ")  # once, not every job
        self._jobs = Jobs()
        self._wake = threading.Condition()
        self._generation = 0
        self._latest: dict[str, int] = {}
        self._problem = ""
        self._stopping = threading.Event()
        self._writing = False  # the thread is running writes: never abort them
        self._signals: Mapping[str, SignalInstance] = {}
        self._bridge: Bridge[_Answer] = Bridge(self._on_answer)
        self._thread = threading.Thread(target=self._work, name=f"gpuops-{area}", daemon=True)
        self._timer = QTimer(self)

    def _start(self, signals: Mapping[str, SignalInstance], every_s: float, periodic: Callable[[], None]) -> None:
        """Start the thread once the subclass is ready; `signals` carry each kind of answer,
        `periodic` is asked now and every `every_s` seconds."""
        self._signals = signals
        self._thread.start()
        self._timer.setInterval(max(1, round(every_s * 1000)))
        self._timer.timeout.connect(periodic)
        self._timer.start()
        periodic()

    # --- requests (GUI thread; never block) ----------------------------------------------

    def stop(self, wait_s: float = 2.0) -> bool:
        """Finish the writes already queued, then end the thread (waiting up to `wait_s`)."""
        self._timer.stop()
        self._stopping.set()
        with self._wake:
            self._jobs.stopping = True
            self._wake.notify()
        return self.join(wait_s)

    def watch(self, conn: sqlite3.Connection) -> None:
        """Let `stop` abort `conn`'s statements while the thread only reads (sessions call this
        on every connection they open)."""
        conn.set_progress_handler(self._abandon_reads, _PROGRESS_STEPS)

    def _abandon_reads(self) -> int:
        """SQLite's progress handler: non-zero aborts the statement ("interrupted")."""
        return 1 if self._stopping.is_set() and not self._writing else 0

    def join(self, timeout_s: float) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _set_poll(self, newest: Callable[[Any], Any]) -> None:
        """Replace the poll still waiting (or None) with `newest(waiting)`."""
        with self._wake:
            self._jobs.poll = newest(self._jobs.poll)
            self._wake.notify()

    def _read(self, kind: str, argument: Any = None) -> None:
        with self._wake:
            self._generation += 1
            self._latest[kind] = self._generation
            self._jobs.reads[kind] = Read(kind, self._generation, argument)
            self._wake.notify()

    def _write(self, write: object) -> None:
        with self._wake:
            self._jobs.writes.append(write)
            self._wake.notify()

    # --- answers (GUI thread) -------------------------------------------------------------

    def _on_answer(self, answer: _Answer) -> None:
        if answer.kind == "problem":
            if answer.payload != self._problem:
                self._problem = str(answer.payload)
                self.problem.emit(self._problem)
            return
        if answer.kind in self._latest and answer.generation < self._latest[answer.kind]:
            return  # a newer request of this kind is on its way
        self._signals[answer.kind].emit(answer.payload)

    # --- the worker thread ----------------------------------------------------------------

    def _send(self, kind: str, payload: object, generation: int = 0) -> None:
        """Hand an answer to the GUI thread (generation 0: never dropped as stale)."""
        self._bridge.send(_Answer(kind, generation, payload))

    def _work(self) -> None:
        session = self._open_session()
        try:
            while True:
                with self._wake:
                    while self._jobs.empty() and not self._jobs.stopping:
                        self._wake.wait()
                    if self._jobs.stopping and not self._jobs.writes:
                        return
                    jobs, self._jobs = self._jobs, Jobs(stopping=self._jobs.stopping)
                if jobs.stopping:  # only the writes still matter
                    jobs.poll, jobs.reads = None, {}
                self._writing = bool(jobs.writes)
                try:
                    self._run(session, jobs)
                except NoHistory as exc:
                    self._send("problem", self._problem_line(exc))
                except self.unavailable_errors as exc:
                    session.close()  # reopen at the next job
                    if not (self._stopping.is_set() and not self._writing):  # not just an abandoned read
                        self._unavailable.occur(str(exc))
                        self._send("problem", self._problem_line(exc))
                else:
                    self._unavailable.resolve("usable again")
                    self._send("problem", "")
                finally:
                    self._writing = False
        finally:
            session.close()

    def _open_session(self) -> SessionT:
        """The area's session (on the thread; it connects on first use)."""
        raise NotImplementedError

    def _run(self, session: SessionT, jobs: Jobs) -> None:
        """Do `jobs` (on the thread), answering through `_send`."""
        raise NotImplementedError

    def _problem_line(self, exc: Exception) -> str:
        """The `problem` line for a missing history or one of `unavailable_errors`."""
        raise NotImplementedError

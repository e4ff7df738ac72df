"""Polling a telemetry source off the GUI thread.

A driver call can hang for minutes when a GPU falls off the bus, and opening a source can hang
as well, so both happen on one daemon worker thread. The GUI thread only schedules work (a
QTimer) and receives frozen results through a queued signal. At most one job is in flight: a
slow source is reported as stalled instead of being asked again. Stopping never waits long for
the worker: a hung driver call must not keep the window from closing, and the daemon thread
dies with the process.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from gpuops.core.sources.base import SourceError, TelemetrySource
from gpuops.core.telemetry import FleetSample
from gpuops.gui.workers.bridge import Bridge

if TYPE_CHECKING:
    from gpuops.gui.live.poll_grading import GradedPoll

log = logging.getLogger("gpuops.gui.poller")

#: Without an answer for this many poll intervals, the source counts as stalled.
STALL_INTERVALS = 3
#: After a failed open, wait this long before trying again (a driver may be reloading).
REOPEN_AFTER_S = 10.0


@dataclass(frozen=True)
class SourceInfo:
    """What the window may know about the open source (never the source itself)."""

    name: str
    simulated: bool
    notice: str | None


@dataclass(frozen=True)
class PollResult:
    """One successful poll; `duration_s` is the wall time of the call, as the GUI saw it;
    `graded` is the worker's grading of it (None when nobody graded it yet)."""

    sample: FleetSample
    duration_s: float
    graded: GradedPoll | None = None


@dataclass(frozen=True)
class _Outcome:
    kind: str  # "opened" | "sample" | "failed" | "crashed"
    payload: object


_STOP = object()
_JOB = object()


def _work(
    open_source: Callable[[], TelemetrySource],
    jobs: queue.SimpleQueue[object],
    stopping: threading.Event,
    bridge: Bridge[_Outcome],
    grade: Callable[[FleetSample], GradedPoll] | None,
) -> None:
    """Worker thread body: open once, then poll (and grade) per job; close the source on the way out."""
    source: TelemetrySource | None = None
    try:
        while jobs.get() is not _STOP:
            started = time.monotonic()
            try:
                if source is None:
                    source = open_source()
                    outcome = _Outcome("opened", SourceInfo(source.name, source.simulated, source.notice))
                else:
                    sample = source.poll()
                    duration_s = time.monotonic() - started
                    outcome = _Outcome("sample", PollResult(sample, duration_s, None if grade is None else grade(sample)))
            except SourceError as exc:
                outcome = _Outcome("failed", str(exc) or type(exc).__name__)
            except Exception as exc:  # a bug: reported in the GUI thread, where it is re-raised
                log.exception("telemetry source raised an unexpected error")
                outcome = _Outcome("crashed", exc)
            if stopping.is_set():
                break
            bridge.send(outcome)
    finally:
        if source is not None:
            try:
                source.close()
            except Exception:
                log.exception("closing the telemetry source failed")


class Poller(QObject):
    """Polls a source every `interval_s` on a worker thread; all signals fire in the GUI thread.
    `grade`, if given, runs on the worker after each poll (see `gui.poll_grading`)."""

    #: SourceInfo, once the source is open.
    sourceOpened = Signal(object)
    #: PollResult of each successful poll.
    sampleReady = Signal(object)
    #: One readable line: opening or polling failed with SourceError.
    sourceFailed = Signal(str)
    #: One readable line, repeated each interval while a job has been in flight too long.
    stalled = Signal(str)

    def __init__(
        self,
        open_source: Callable[[], TelemetrySource],
        interval_s: float,
        parent: QObject | None = None,
        *,
        stall_after_s: float | None = None,
        reopen_after_s: float = REOPEN_AFTER_S,
        grade: Callable[[FleetSample], GradedPoll] | None = None,
    ) -> None:
        super().__init__(parent)
        if not interval_s > 0:
            raise ValueError(f"poll interval must be positive, got {interval_s!r} s")
        self.interval_s = interval_s
        self.stall_after_s = STALL_INTERVALS * interval_s if stall_after_s is None else stall_after_s
        self._reopen_after_s = reopen_after_s
        self._open_source = open_source
        self._grade = grade
        self._jobs: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._bridge: Bridge[_Outcome] = Bridge(self._on_outcome)
        self._thread: threading.Thread | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(max(1, round(interval_s * 1000)))
        self._timer.timeout.connect(self._tick)
        self._in_flight_since: float | None = None
        self._source_open = False
        self._open_failed_at: float | None = None

    @property
    def in_flight(self) -> bool:
        return self._in_flight_since is not None

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._stopping.is_set()

    def start(self) -> None:
        """Start the worker, open the source there, and poll every interval."""
        if self._thread is not None:
            raise RuntimeError("poller already started")
        self._thread = threading.Thread(
            target=_work,
            args=(self._open_source, self._jobs, self._stopping, self._bridge, self._grade),
            name="gpuops-poller",
            daemon=True,
        )
        self._thread.start()
        self._timer.start()
        self._request()

    def stop(self, wait_s: float = 0.5) -> bool:
        """Stop polling; give the worker `wait_s` to close the source. Returns whether it
        finished; a worker stuck in a driver call is left behind (it is a daemon)."""
        self._timer.stop()
        if self._thread is None or self._stopping.is_set():
            return self.join(0)
        self._stopping.set()
        self._jobs.put(_STOP)
        return self.join(wait_s)

    def join(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for the worker to end; True if it has (or never started)."""
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _request(self) -> None:
        self._in_flight_since = time.monotonic()
        self._jobs.put(_JOB)

    @Slot()
    def _tick(self) -> None:
        now = time.monotonic()
        if self._in_flight_since is not None:
            waited = now - self._in_flight_since
            if waited >= self.stall_after_s:
                doing = "answered" if self._source_open else "finished opening"
                self.stalled.emit(f"the source has not {doing} for {waited:.0f} s")
            return
        if not self._source_open and self._open_failed_at is not None:
            if now - self._open_failed_at < self._reopen_after_s:
                return
        self._request()

    def _on_outcome(self, outcome: _Outcome) -> None:
        if self._stopping.is_set():
            return
        self._in_flight_since = None
        if outcome.kind == "opened":
            self._source_open = True
            self.sourceOpened.emit(outcome.payload)
            self._request()  # first data now, not one interval later
        elif outcome.kind == "sample":
            self.sampleReady.emit(outcome.payload)
        elif outcome.kind == "failed":
            if not self._source_open:
                self._open_failed_at = time.monotonic()
            self.sourceFailed.emit(outcome.payload)
        else:
            error = outcome.payload
            assert isinstance(error, Exception)
            self.sourceFailed.emit(f"internal error in the telemetry source: {error!r}")
            raise error

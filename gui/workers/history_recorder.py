"""The console recording the fleet itself when no `gpuops collect` runs for its database.

Every recorded poll goes through the same `core.pipeline.PollPipeline` as `gpuops collect`, on
one thread: the history write, the allocations view (who holds each GPU, busy-but-unallocated,
the demo book of a simulated fleet), the alert evaluation. The GUI thread only hands over frozen
samples (`record`) and failed polls (`source_failed`), and hears back each `PollOutcome` and
`WriterStatus`. If another process holds the database's writer lock, the console does not
write: it says so once and only reads (the collector's history is as good as its own).
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from gpuops.core.pipeline import PollOutcome, PollPipeline
from gpuops.core.store import CollectorRunning, RetentionPolicy, StoreError, WriterStatus
from gpuops.core.telemetry import FleetSample
from gpuops.gui.app.settings_store import load_preferences
from gpuops.gui.workers.bridge import Bridge

log = logging.getLogger("gpuops.gui.history")

#: Polls waiting for the writer thread beyond this are dropped (oldest first) and counted.
QUEUE_MAX = 30
#: Seconds of maintenance (compaction, rollups, pruning) the writer does after each poll at most.
MAINTENANCE_BUDGET_S = 0.05

_STOP = object()


class HistoryRecorder(QObject):
    """Records every poll into the history at `db_path` from a worker thread (see the module
    docstring), keeping each level as long as `retention` says (None: as saved in Settings, the
    same durations `gpuops collect --keep-*` takes). `demo_seed`: the seed of a simulated fleet,
    whose demo book is seeded into an empty history."""

    #: PollOutcome of each recorded poll (allocations and alerts computed once, for every view).
    outcomeReady = Signal(object)
    #: WriterStatus after each write (last_error says why polls are not being stored).
    statusChanged = Signal(object)
    #: One readable line when the recorder cannot or need not write (collector running, bad file).
    notice = Signal(str)

    def __init__(
        self, db_path: Path, parent: QObject | None = None, *, poll_interval_s: float = 1.0,
        retention: RetentionPolicy | None = None, demo_seed: int | None = None,
    ) -> None:
        super().__init__(parent)
        self.db_path = Path(db_path)
        self.retention = retention or load_preferences().retention()
        self._poll_interval_s = poll_interval_s
        self._demo_seed = demo_seed
        self._queue: queue.Queue[object] = queue.Queue()
        self._outcome: Bridge[PollOutcome] = Bridge(self.outcomeReady.emit)
        self._status: Bridge[WriterStatus] = Bridge(self.statusChanged.emit)
        self._notice: Bridge[str] = Bridge(self.notice.emit)
        self._writing = threading.Event()
        self._closed = threading.Event()
        self.dropped = 0
        self._thread = threading.Thread(target=self._work, name="gpuops-history-writer", daemon=True)
        self._thread.start()

    @property
    def writing(self) -> bool:
        """True once this console holds the writer lock and writes the history."""
        return self._writing.is_set()

    def record(self, sample: FleetSample) -> None:
        """Queue a poll (never blocks; the oldest waiting poll goes if too many wait)."""
        self._put(sample)

    def source_failed(self, message: str) -> None:
        """Queue a poll that failed outright (the history notes it, `source_down` counts it)."""
        self._put(message)

    def _put(self, item: FleetSample | str) -> None:
        if self._closed.is_set():
            return
        while self._queue.qsize() >= QUEUE_MAX:
            try:
                self._queue.get_nowait()
                self.dropped += 1
            except queue.Empty:
                break
        self._queue.put(item)

    def stop(self, wait_s: float = 2.0) -> bool:
        """Record what is queued, close the database, release the lock (waiting up to `wait_s`)."""
        self._queue.put(_STOP)
        self._thread.join(wait_s)
        return not self._thread.is_alive()

    def _work(self) -> None:
        try:
            pipeline = PollPipeline.open(
                self.db_path, poll_interval_s=self._poll_interval_s, retention=self.retention, demo_seed=self._demo_seed
            )
        except CollectorRunning as exc:
            self._closed.set()
            self._notice.send(f"history: {exc}; this console only reads it")
            return
        except StoreError as exc:
            self._closed.set()
            self._notice.send(f"history not recorded: {exc}")
            return
        self._writing.set()
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                if isinstance(item, FleetSample):
                    self._outcome.send(pipeline.process(item))
                else:
                    assert isinstance(item, str)
                    pipeline.source_failed(item)
                if self._queue.empty():
                    pipeline.maintain(MAINTENANCE_BUDGET_S)
                self._status.send(pipeline.status())
        finally:
            self._closed.set()
            pipeline.close()

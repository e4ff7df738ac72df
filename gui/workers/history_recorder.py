"""The console collecting history itself when no `gpuops collect` runs for its database.

Opening the database, every write and the background maintenance happen on one writer thread;
the GUI thread only hands over frozen samples (`record`) and hears back `WriterStatus` snapshots.
If another process holds the database's writer lock, the console does not write: it says so
once and only reads (the collector's history is as good as its own).
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from gpuops.core.store import CollectorRunning, HistoryWriter, RetentionPolicy, StoreError, WriterStatus
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
    """Writes every recorded poll to the history at `db_path` from a worker thread, keeping each
    level as long as `retention` says (None: as saved in Settings, the same durations
    `gpuops collect --keep-*` takes)."""

    #: WriterStatus after each write (last_error says why polls are not being stored).
    statusChanged = Signal(object)
    #: One readable line when the recorder cannot or need not write (collector running, bad file).
    notice = Signal(str)

    def __init__(self, db_path: Path, parent: QObject | None = None, *, retention: RetentionPolicy | None = None) -> None:
        super().__init__(parent)
        self.db_path = Path(db_path)
        self.retention = retention or load_preferences().retention()
        self._queue: queue.Queue[object] = queue.Queue()
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
        """Queue a poll for writing (never blocks; the oldest waiting poll goes if too many wait)."""
        if self._closed.is_set():
            return
        while self._queue.qsize() >= QUEUE_MAX:
            try:
                self._queue.get_nowait()
                self.dropped += 1
            except queue.Empty:
                break
        self._queue.put(sample)

    def stop(self, wait_s: float = 2.0) -> bool:
        """Write what is queued, close the database, release the lock (waiting up to `wait_s`)."""
        self._queue.put(_STOP)
        self._thread.join(wait_s)
        return not self._thread.is_alive()

    def _work(self) -> None:
        try:
            writer = HistoryWriter(self.db_path, retention=self.retention)
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
                assert isinstance(item, FleetSample)
                writer.write(item)
                if self._queue.empty():
                    writer.maintain(MAINTENANCE_BUDGET_S)
                self._status.send(writer.status())
        finally:
            self._closed.set()
            writer.close()

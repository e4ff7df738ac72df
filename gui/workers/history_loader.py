"""Reading the history database off the GUI thread, one job per resource.

A view asks for data with `request(resource, query)`, where `query(reader)` runs on the loader's
worker thread against a `HistoryReader` it opened there, or, when the console reads a
`prometheus:` source and is given its spec, a `PrometheusHistory` (core.sources.prometheus_history)
answering the same questions from Prometheus: a slow or failing Prometheus only delays or fails
that worker's answer, which then says why the plot is empty. Each resource ("detail", "trends",
"replay", ...) has at most one pending job: asking again replaces the pending one, and a result
that arrives after a newer request for the same resource is dropped, so zooming and panning never
show an old range over a newer one. Results and failures come back as signals in the GUI thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from gpuops.core.sources.base import SourceError
from gpuops.core.sources.prometheus import PrometheusSpec
from gpuops.core.sources.prometheus_history import PrometheusHistory
from gpuops.core.store import HistoryReader, NoHistory, StoreError
from gpuops.gui.workers.bridge import Bridge

log = logging.getLogger("gpuops.gui.history")

Reader = HistoryReader | PrometheusHistory
Query = Callable[[Any], Any]


@dataclass(frozen=True)
class _Done:
    resource: str
    generation: int
    ok: bool
    payload: object


class HistoryLoader(QObject):
    """One worker thread answering history queries; see the module docstring."""

    #: (resource, result) for the newest request of a resource.
    loaded = Signal(str, object)
    #: (resource, one readable line) when the history cannot be read.
    failed = Signal(str, str)

    def __init__(
        self, db_path: Path, parent: QObject | None = None, *, read_only: bool = False,
        prometheus: PrometheusSpec | None = None,
    ) -> None:
        super().__init__(parent)
        self.db_path = Path(db_path)
        self.read_only = read_only
        self.prometheus = prometheus
        self._pending: dict[str, tuple[int, Query]] = {}
        self._latest: dict[str, int] = {}
        self._generation = 0
        self._wake = threading.Condition()
        self._stopping = False
        self._bridge: Bridge[_Done] = Bridge(self._on_done)
        self._thread = threading.Thread(target=self._work, name="gpuops-history-loader", daemon=True)
        self._thread.start()

    def request(self, resource: str, query: Query) -> None:
        """Run `query(reader)` on the worker; supersedes any earlier request for `resource`."""
        with self._wake:
            self._generation += 1
            self._latest[resource] = self._generation
            self._pending[resource] = (self._generation, query)
            self._wake.notify()

    def busy(self, resource: str) -> bool:
        """True while a request for `resource` has not been answered."""
        return resource in self._latest

    def stop(self, wait_s: float = 1.0) -> bool:
        with self._wake:
            self._stopping = True
            self._pending.clear()
            self._wake.notify()
        self._thread.join(wait_s)
        return not self._thread.is_alive()

    def _work(self) -> None:
        reader: Reader | None = None
        try:
            while True:
                with self._wake:
                    while not self._pending and not self._stopping:
                        self._wake.wait()
                    if self._stopping:
                        return
                    resource = next(iter(self._pending))
                    generation, query = self._pending.pop(resource)
                try:
                    if reader is None:
                        reader = self._open()
                    done = _Done(resource, generation, True, query(reader))
                except NoHistory:
                    done = _Done(resource, generation, False, f"no history yet at {self.db_path}")
                except (StoreError, SourceError) as exc:
                    done = _Done(resource, generation, False, str(exc))
                except Exception as exc:  # a bug in a query: reported, and logged with its traceback
                    log.exception("history query for %s failed", resource)
                    done = _Done(resource, generation, False, f"internal error reading the history: {exc!r}")
                if self._stopping:
                    return
                self._bridge.send(done)
        finally:
            if reader is not None:
                reader.close()

    def _open(self) -> Reader:
        if self.prometheus is not None:
            return PrometheusHistory(self.prometheus)
        return HistoryReader(self.db_path, read_only=self.read_only)

    def _on_done(self, done: _Done) -> None:
        if self._latest.get(done.resource) != done.generation:
            return  # a newer request for this resource is on its way
        del self._latest[done.resource]
        if done.ok:
            self.loaded.emit(done.resource, done.payload)
        else:
            self.failed.emit(done.resource, str(done.payload))

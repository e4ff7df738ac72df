"""An alert service on a history database, as a collector runs it, for the alert tests."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from gpuops.core.alerts.service import AlertService
from gpuops.core.sources.base import TelemetrySource
from gpuops.core.store.connection import open_database
from gpuops.core.store.writer import HistoryWriter
from gpuops.core.telemetry import FleetSample
from gpuops.commands.collect import collect_loop

POLL_S = 5.0


def open_service(path: Path) -> AlertService:
    """A service on its own connection to `path` (created if missing), polling every POLL_S;
    opening it again on the same file is a collector restart."""
    conn, _layout = open_database(path, create=True)
    return AlertService(conn, poll_interval_s=POLL_S)


def collect_with_alerts(
    path: Path, source: TelemetrySource, polls: int, handler: Callable[[AlertService], Callable[[FleetSample], None]]
) -> list[FleetSample]:
    """`gpuops collect`'s loop for `polls` polls: each stored sample goes to `handler(service)`
    (the per-poll work built on the collector's alert service); returns the samples."""
    stop = threading.Event()
    seen: list[FleetSample] = []
    with HistoryWriter(path) as writer:
        alerts = AlertService.for_collector(path, poll_interval_s=0.01)
        handle = handler(alerts)

        def on_sample(sample: FleetSample) -> None:
            handle(sample)
            seen.append(sample)
            if len(seen) == polls:
                stop.set()

        try:
            collect_loop(source, writer, 0.01, stop, on_sample)
        finally:
            alerts.close()
    return seen

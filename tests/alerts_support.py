"""An alert service on a history database, as a collector runs it, for the alert tests."""

from __future__ import annotations

import threading
from pathlib import Path

from gpuops.core.alerts.service import AlertService
from gpuops.core.pipeline import PollOutcome, PollPipeline, collect_loop
from gpuops.core.sources.base import TelemetrySource
from gpuops.core.store.connection import open_database
from gpuops.core.telemetry import FleetSample

POLL_S = 5.0


def open_service(path: Path) -> AlertService:
    """A service on its own connection to `path` (created if missing), polling every POLL_S;
    opening it again on the same file is a collector restart."""
    conn, _layout = open_database(path, create=True)
    return AlertService(conn, poll_interval_s=POLL_S)


def collect_with_alerts(path: Path, source: TelemetrySource, polls: int, *, demo_seed: int | None = None) -> list[FleetSample]:
    """`gpuops collect`'s loop and poll pipeline (history, allocations, alerts) for `polls` polls;
    `demo_seed` as for a simulated fleet of that seed. Returns the samples."""
    stop = threading.Event()
    seen: list[FleetSample] = []

    def on_outcome(outcome: PollOutcome) -> None:
        seen.append(outcome.sample)
        if len(seen) == polls:
            stop.set()

    pipeline = PollPipeline.open(path, poll_interval_s=0.01, demo_seed=demo_seed)
    try:
        collect_loop(source, pipeline, 0.01, stop, on_outcome)
    finally:
        pipeline.close()
    return seen

"""One poll's work for whoever records the fleet: `gpuops collect`, or the console recording the
history itself. Both go through `PollPipeline`, so the order is written once:

1. the history write (one transaction; a failing database keeps the poll in the writer's backlog);
2. the allocations view: who holds each GPU and which busy GPUs nobody pays for, computed once
   per poll (and the demo book seeded for a simulated fleet);
3. the alert evaluation, told who holds each GPU.

`process` returns a `PollOutcome` holding all three, for the console's grid and alerts tab.
`collect_loop` is the collector's loop around it. Neither ever raises for a database problem:
it is logged (once while it lasts) and polling goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gpuops.core.alerts.model import AlertChanges
from gpuops.core.alerts.service import AlertService
from gpuops.core.allocations.live import LiveAllocations, PollAllocations
from gpuops.core.logonce import LastingProblem
from gpuops.core.sources.base import SourceError, TelemetrySource
from gpuops.core.store.retention import RetentionPolicy
from gpuops.core.store.writer import HistoryWriter, WriterStatus
from gpuops.core.telemetry import FleetSample

log = logging.getLogger("gpuops.collect")

#: Background work (compaction, rollups, pruning) per poll never takes more than this, so a stop
#: request is served within about a second whatever the interval.
MAX_MAINTENANCE_S = 0.5


@dataclass(frozen=True)
class PollOutcome:
    """What one poll did. `stored`: the history took it (False: refused as not newer than the
    last stored poll); `allocations`: the poll against the book (empty when the book could not
    be read); `alerts`: what changed (None when the alerts could not be evaluated)."""

    sample: FleetSample
    stored: bool
    allocations: PollAllocations
    alerts: AlertChanges | None


class PollPipeline:
    """The writer, the allocations and the alert service of one history, used on one thread
    (see the module docstring). Takes ownership of all three: `close` closes them."""

    def __init__(self, writer: HistoryWriter, alerts: AlertService, allocations: LiveAllocations) -> None:
        self.writer = writer
        self.alerts = alerts
        self.allocations = allocations

    @classmethod
    def open(
        cls, db_path: Path, *, poll_interval_s: float, retention: RetentionPolicy | None = None,
        alertmanager_url: str | None = None, demo_seed: int | None = None,
    ) -> PollPipeline:
        """Take the history's writer lock (CollectorRunning if another process holds it), then
        open the alert service and the allocations on their own connection. `demo_seed`: the seed
        of a simulated fleet, whose demo book is seeded into an empty history."""
        writer = HistoryWriter(db_path, retention=retention)
        try:
            alerts = AlertService.for_collector(db_path, poll_interval_s=poll_interval_s, alertmanager_url=alertmanager_url)
        except BaseException:
            writer.close()
            raise
        return cls(writer, alerts, LiveAllocations(alerts.store.conn, demo_seed=demo_seed))

    def expect_demo_fleet(self, seed: int) -> None:
        """Before the first poll: the source is the simulated fleet of `seed`, whose demo book is
        seeded into an empty history (for a collector, which opens its source after the lock)."""
        self.allocations = LiveAllocations(self.alerts.store.conn, demo_seed=seed)

    def process(self, sample: FleetSample, now: float | None = None) -> PollOutcome:
        """Write, see against the book, evaluate at `now`: by default the poll's own time, so a
        poll that waited in a queue (the console's) is judged as of when it was taken, and the
        collector and the console record the same thing for the same polls."""
        stored = self.writer.write(sample)
        held = self.allocations.observe(sample)
        at = sample.ts if now is None else now
        changes = self.alerts.on_sample(sample, at, allocated=held.allocated, customers=held.customers)
        return PollOutcome(sample, stored, held, changes)

    def source_failed(self, error: str, now: float | None = None) -> None:
        """A poll failed outright: the history notes it and the `source_down` rule counts it."""
        self.writer.record_source_error(error, time.time() if now is None else now)
        self.alerts.on_source_error(error, now)

    def maintain(self, budget_s: float) -> None:
        """Background work on the history (compaction, rollups, pruning) for up to `budget_s`."""
        self.writer.maintain(budget_s)

    def status(self) -> WriterStatus:
        return self.writer.status()

    def close(self) -> None:
        self.alerts.close()
        self.writer.close()


def collect_loop(
    source: TelemetrySource, pipeline: PollPipeline, interval_s: float, stop: threading.Event,
    on_outcome: Callable[[PollOutcome], None] | None = None,
    on_source_error: Callable[[str], None] | None = None,
) -> None:
    """Poll, run the pipeline, do background work in the time left, until `stop` is set. A
    failing source or database never ends the loop: the failure is logged and recorded, and
    polling goes on. `on_outcome` sees every poll's outcome, `on_source_error` every failed poll."""
    next_at = time.monotonic()
    source_down = LastingProblem(log, prefix=f"polling {source.name} ")
    while not stop.is_set():
        try:
            sample = source.poll()
        except SourceError as exc:
            source_down.occur(f"failed: {exc}")
            pipeline.source_failed(str(exc))
            if on_source_error is not None:
                on_source_error(str(exc))
        else:
            source_down.resolve("works again")
            outcome = pipeline.process(sample)
            written = pipeline.status()
            if outcome.stored and written.backlog_polls == 0:  # committed, not only queued
                # The time as stored (whole milliseconds), so that the line names the row exactly.
                log.debug("stored poll at %.3f (%d GPUs)", written.last_written_ts, len(sample))
            elif outcome.stored:
                log.debug("poll at %.3f waits in the backlog (the history is busy)", sample.ts)
            if on_outcome is not None:
                on_outcome(outcome)
        next_at += interval_s
        now = time.monotonic()
        if next_at < now:
            next_at = now  # a poll took longer than the interval: do not try to catch up
        pipeline.maintain(min((next_at - now) / 2, MAX_MAINTENANCE_S))
        stop.wait(max(0.0, next_at - time.monotonic()))

"""`gpuops collect`: poll the fleet forever and record it in the history database, headless.

Logs go to stderr. SIGTERM or SIGINT stop it within about a second: the poll in progress is
finished and written, then it exits 0. Only one collector may write to a database; a second one is
refused at once (exit 1) while the console and exports keep reading. With --once it polls once and
exits like `gpuops status`: 1 when no GPU answered or every target failed.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from gpuops.commands._options import BOOK, FLEET, Failed, UsageError, add_command, interval_s
from gpuops.commands.status import add_strict, poll_failure
from gpuops.core.history_retention import DEFAULT_KEEP_1H, DEFAULT_KEEP_1M, DEFAULT_KEEP_RAW

if TYPE_CHECKING:
    from gpuops.core.alerts.service import AlertService
    from gpuops.core.allocations.live import LiveAllocations
    from gpuops.core.sources.base import TelemetrySource
    from gpuops.core.store.writer import HistoryWriter
    from gpuops.core.telemetry import FleetSample

log = logging.getLogger("gpuops.collect")
T = TypeVar("T")

#: Background work (compaction, rollups, pruning) per poll never takes more than this, so a stop
#: request is served within about a second whatever the interval.
MAX_MAINTENANCE_S = 0.5


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "collect", takes=(*FLEET, *BOOK), source_default="auto",
        help="record the fleet into the history database (headless)",
        description=(
            "Poll the fleet every --interval seconds and record it in the history database until "
            "stopped (SIGTERM or Ctrl-C), or once with --once. Only one collector may write to a database."
        ),
    )
    parser.add_argument(
        "--interval", type=interval_s, default=1.0, metavar="S",
        help="poll interval in seconds, 0.05 to 86400 (default 1)",
    )
    parser.add_argument(
        "--once", action="store_true",
        help="poll, record and evaluate the alert rules once, then exit (for cron)",
    )
    add_strict(parser)
    parser.add_argument(
        "--keep-raw", default=DEFAULT_KEEP_RAW, metavar="DURATION",
        help=f"keep every poll this long (default {DEFAULT_KEEP_RAW})",
    )
    parser.add_argument(
        "--keep-1m", default=DEFAULT_KEEP_1M, metavar="DURATION",
        help=f"keep 1-minute rollups this long (default {DEFAULT_KEEP_1M})",
    )
    parser.add_argument(
        "--keep-1h", default=DEFAULT_KEEP_1H, metavar="DURATION",
        help=f"keep 1-hour rollups this long (default {DEFAULT_KEEP_1H})",
    )
    parser.add_argument("--alertmanager", default=None, metavar="URL", help="also send alerts to this Prometheus Alertmanager")
    parser.set_defaults(run=run)


def collect_loop(
    source: TelemetrySource, writer: HistoryWriter, interval_s: float, stop: threading.Event,
    on_sample: Callable[[FleetSample], None] | None = None,
    on_source_error: Callable[[str], None] | None = None,
) -> None:
    """Poll, write, do background work in the time left, until `stop` is set. A failing source
    or database never ends the loop: the failure is logged and recorded, and polling goes on.
    `on_sample` sees every sample after it is written, `on_source_error` every failed poll
    (the alert rules: a source that stays down raises an alert)."""
    from gpuops.core.sources.base import SourceError

    next_at = time.monotonic()
    source_error: str | None = None
    while not stop.is_set():
        try:
            sample = source.poll()
        except SourceError as exc:
            if str(exc) != source_error:
                log.error("polling %s failed: %s", source.name, exc)
            source_error = str(exc)
            writer.record_source_error(source_error, time.time())
            if on_source_error is not None:
                on_source_error(source_error)
        else:
            if source_error is not None:
                log.warning("polling %s works again", source.name)
                source_error = None
            if writer.write(sample):
                log.debug("stored poll at %.3f (%d GPUs)", sample.ts, len(sample))
            if on_sample is not None:
                on_sample(sample)
        next_at += interval_s
        now = time.monotonic()
        if next_at < now:
            next_at = now  # a poll took longer than the interval: do not try to catch up
        writer.maintain(min((next_at - now) / 2, MAX_MAINTENANCE_S))
        stop.wait(max(0.0, next_at - time.monotonic()))


def after_each_poll(alerts: AlertService, allocations: LiveAllocations) -> Callable[..., None]:
    """The work on each stored poll: the allocations (busy-but-unallocated events, the demo book
    of a simulated fleet), then the alert rules, told who holds each GPU. `now` (default: the
    wall clock) is when the rules evaluate."""

    def on_sample(sample: FleetSample, now: float | None = None) -> None:
        held = allocations.observe(sample)
        alerts.on_sample(sample, now, allocated=held.allocated, customers=held.customers)

    return on_sample


def _retention(args: argparse.Namespace):
    from gpuops.core.history_retention import retention_policy

    return retention_policy(args.keep_raw, args.keep_1m, args.keep_1h)


def run(args: argparse.Namespace) -> int:
    from gpuops.core.alerts.service import AlertService
    from gpuops.core.allocations.live import LiveAllocations
    from gpuops.core.sources.base import SourceError
    from gpuops.core.sources.factory import open_source
    from gpuops.core.store.errors import StoreError
    from gpuops.core.store.paths import default_db_path
    from gpuops.core.store.writer import HistoryWriter
    from gpuops.core.timespec import BadTimeSpec

    if args.read_only:
        raise Failed("--read-only: `gpuops collect` writes the history; refused")
    if args.strict and not args.once:
        raise UsageError("--strict goes with --once (a running collector logs failed targets and keeps polling)")
    try:
        retention = _retention(args)
    except (BadTimeSpec, ValueError) as exc:
        raise UsageError(str(exc)) from None
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    db_path = args.db or default_db_path()
    try:
        writer = HistoryWriter(db_path, retention=retention)
    except StoreError as exc:
        raise Failed(str(exc)) from None
    try:
        alerts = AlertService.for_collector(db_path, poll_interval_s=args.interval, alertmanager_url=args.alertmanager)
    except (StoreError, ValueError) as exc:
        writer.close()
        raise Failed(str(exc)) from None
    try:
        source = open_source(args.source, seed=args.seed, topology=args.topology)
    except SourceError as exc:
        alerts.close()
        writer.close()
        raise Failed(str(exc)) from None
    if source.notice:
        log.warning("%s", source.notice)
    log.info("collecting %s %s into %s", source.name, "once" if args.once else f"every {args.interval:g} s", db_path)
    allocations = LiveAllocations(alerts.store.conn, demo_seed=args.seed if source.simulated else None)
    on_sample, on_source_error = after_each_poll(alerts, allocations), alerts.on_source_error
    outcome: list[FleetSample | str] = []
    if args.once:
        on_sample, on_source_error = _then_stop(on_sample, outcome, stop), _then_stop(on_source_error, outcome, stop)
    try:
        collect_loop(source, writer, args.interval, stop, on_sample, on_source_error)
    finally:
        source.close()
        alerts.close()
        writer.close()
    status = writer.status()
    log.info("stopped: %d polls stored this run", status.written_polls)
    if outcome:
        failure = outcome[0] if isinstance(outcome[0], str) else poll_failure(outcome[0], strict=args.strict)
        if failure is not None:
            raise Failed(failure)
    return 0


def _then_stop(hook: Callable[[T], None], outcome: list, stop: threading.Event) -> Callable[[T], None]:
    """`hook`, then remember what it was given and stop the loop (--once)."""

    def once(value: T) -> None:
        hook(value)
        outcome.append(value)
        stop.set()

    return once

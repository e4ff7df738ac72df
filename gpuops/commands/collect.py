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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gpuops.commands._options import BOOK, FLEET, Failed, UsageError, add_command, interval_s
from gpuops.commands.status import add_strict, poll_failure
from gpuops.core.history_retention import DEFAULT_KEEP_1H, DEFAULT_KEEP_1M, DEFAULT_KEEP_RAW

if TYPE_CHECKING:
    from gpuops.core.lifecycle.suggest import AutoDrain
    from gpuops.core.pipeline import PollOutcome

log = logging.getLogger("gpuops.collect")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "collect", takes=(*FLEET, *BOOK, "alertmanager"), source_default="auto",
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
    parser.add_argument(
        "--suggest-rules", type=Path, default=None, metavar="FILE",
        help="lifecycle suggestion rules (see gpuops nodes suggest): drain the nodes of the rules marked auto, "
        "checked every 5 minutes",
    )
    parser.set_defaults(run=run)


def _retention(args: argparse.Namespace):
    from gpuops.core.history_retention import retention_policy

    return retention_policy(args.keep_raw, args.keep_1m, args.keep_1h)


def run(args: argparse.Namespace) -> int:
    from gpuops.core.pipeline import PollPipeline, collect_loop
    from gpuops.core.sources.base import SourceError
    from gpuops.core.sources.factory import open_source
    from gpuops.core.store.errors import StoreError
    from gpuops.core.store.paths import default_db_path
    from gpuops.core.timefmt import BadTimeSpec

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
    auto = None if args.suggest_rules is None else _auto_drain(args.suggest_rules, db_path)
    try:
        pipeline = PollPipeline.open(
            db_path, poll_interval_s=args.interval, retention=retention, alertmanager_url=args.alertmanager
        )
    except (StoreError, ValueError) as exc:
        raise Failed(str(exc)) from None
    try:
        source = open_source(args.source, seed=args.seed, topology=args.topology)
    except SourceError as exc:
        pipeline.close()
        raise Failed(str(exc)) from None

    def stop_and_interrupt(*_: object) -> None:
        stop.set()
        source.interrupt()

    for signum in (signal.SIGTERM, signal.SIGINT):  # now also cut a poll waiting on slow targets short
        signal.signal(signum, stop_and_interrupt)
    if source.notice:
        log.warning("%s", source.notice)
    if source.simulated:
        pipeline.expect_demo_fleet(args.seed)
    log.info("collecting %s %s into %s", source.name, "once" if args.once else f"every {args.interval:g} s", db_path)
    seen: list[PollOutcome | str] = []
    after = _then_stop(seen, stop) if args.once else None
    on_outcome = after if auto is None else _with_auto_drain(auto, after)
    try:
        collect_loop(source, pipeline, args.interval, stop, on_outcome, after)
    finally:
        source.close()
        pipeline.close()
    log.info("stopped: %d polls stored this run", pipeline.status().written_polls)
    if seen:
        first = seen[0]
        failure = first if isinstance(first, str) else poll_failure(first.sample, strict=args.strict)
        if failure is not None:
            raise Failed(failure)
    return 0


def _auto_drain(rules_file: Path, db_path: Path) -> AutoDrain:
    from gpuops.core.lifecycle.suggest import AutoDrain, RulesError, load_rules

    try:
        rules, window_h = load_rules(rules_file)
    except RulesError as exc:
        raise Failed(str(exc)) from None
    return AutoDrain(db_path, rules, window_h)


def _with_auto_drain(auto: AutoDrain, then: Callable[[PollOutcome], None] | None) -> Callable[[PollOutcome], None]:
    """After each stored poll, the automatic lifecycle rules (at most every 5 minutes), then `then`."""

    def on_outcome(outcome: PollOutcome) -> None:
        if outcome.stored:
            auto.maybe_run(outcome.sample.ts)
        if then is not None:
            then(outcome)

    return on_outcome


def _then_stop(seen: list, stop: threading.Event) -> Callable[[object], None]:
    """Remember the first poll's outcome (or failure) and stop the loop (--once)."""

    def once(value: object) -> None:
        seen.append(value)
        stop.set()

    return once

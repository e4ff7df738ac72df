"""The options that mean the same wherever they are typed (`gpuops --db X collect` is
`gpuops collect --db X`), the exit statuses, and bounded number types for the command line.

Every parser level (the top, each subcommand, each action of a subcommand) declares the shared
options it takes with `argparse.SUPPRESS` defaults, so a level that was not given an option
never overwrites what another level parsed; `apply_defaults` then fills in the command's own
defaults and refuses a shared option the command does not take (a usage error, never silently
dropped)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1  # the work failed: bad input file, source down, database unusable, refused
EXIT_USAGE = 2  # the command line is wrong

#: Poll and scrape intervals: faster than 50 ms only spins, slower than a day is not monitoring.
MIN_INTERVAL_S = 0.05
MAX_INTERVAL_S = 86_400.0


class UsageError(Exception):
    """The command line asks for something it cannot mean; exit status 2."""


class Failed(Exception):
    """The work could not be done; one line, exit status 1."""


def _source_help() -> str:
    from gpuops.core.sources.factory import SOURCE_HELP

    return SOURCE_HELP


#: name -> (add the option with a SUPPRESS default, its value when not given).
SHARED: dict[str, tuple[Callable[[argparse.ArgumentParser], Any], Any]] = {
    "verbose": (lambda p: p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                                         help="log debug detail to stderr"), False),
    "source": (lambda p: p.add_argument("--source", default=argparse.SUPPRESS, metavar="SRC", help=_source_help()), None),
    "seed": (lambda p: p.add_argument("--seed", type=int, default=argparse.SUPPRESS, metavar="N",
                                      help="seed of the simulated fleet (default 0)"), 0),
    "topology": (lambda p: p.add_argument(
        "--topology", type=Path, default=argparse.SUPPRESS, metavar="FILE",
        help="CSV of node,site,rack,notes placing nodes in sites and racks; unlisted nodes go to 'unassigned'"), None),
    "db": (lambda p: p.add_argument("--db", type=Path, default=argparse.SUPPRESS, metavar="PATH",
                                    help="history database (default: history.sqlite in the user data directory)"), None),
    "read_only": (lambda p: p.add_argument(
        "--read-only", action="store_true", default=argparse.SUPPRESS,
        help="change nothing: open the history without creating or writing it; actions that write are refused"), False),
    "alertmanager": (lambda p: p.add_argument(
        "--alertmanager", default=argparse.SUPPRESS, metavar="URL",
        help="Prometheus Alertmanager base URL: collect sends alerts there, the console and `alerts` show its alerts "
        "and silences and make silences there, doctor checks it"), None),
}

FLEET = ("source", "seed", "topology")
BOOK = ("db", "read_only")


def add_shared(parser: argparse.ArgumentParser, names: Iterable[str]) -> None:
    """Give `parser` the shared options `names` (and -v, which every level takes)."""
    for name in ("verbose", *names):
        SHARED[name][0](parser)


def add_command(
    subparsers: argparse._SubParsersAction, name: str, *, takes: Iterable[str] = (), source_default: str | None = None,
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """A subcommand parser that takes the shared options `takes` in any position;
    `source_default` is its --source when none is given."""
    takes = tuple(takes)
    parser = subparsers.add_parser(name, **kwargs)
    add_shared(parser, takes)
    parser.set_defaults(shared_taken=takes, source_default=source_default, command_name=name)
    return parser


def add_action(
    actions: argparse._SubParsersAction, parent: argparse.ArgumentParser, name: str, **kwargs: Any
) -> argparse.ArgumentParser:
    """An action of a subcommand (`alerts ack`), taking the same shared options as its command."""
    takes = parent.get_default("shared_taken")
    parser = actions.add_parser(name, **kwargs)
    add_shared(parser, takes)
    parser.set_defaults(shared_taken=takes)  # for this action's own actions (`alerts rules export`)
    return parser


def apply_defaults(args: argparse.Namespace) -> None:
    """Fill in the shared options not given; refuse one the command does not take."""
    taken = set(args.shared_taken) | {"verbose"}
    for name, (_add, default) in SHARED.items():
        if name not in taken:
            if hasattr(args, name):
                flag = "--" + name.replace("_", "-")
                raise UsageError(f"{flag} does not apply to `gpuops {args.command_name}`")
            continue
        if not hasattr(args, name):
            setattr(args, name, args.source_default if name == "source" else default)


def interval_s(text: str) -> float:
    """argparse type: seconds between polls, a finite number within the sane range."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and MIN_INTERVAL_S <= value <= MAX_INTERVAL_S):
        raise argparse.ArgumentTypeError(f"{text} s is outside {MIN_INTERVAL_S:g} s .. {MAX_INTERVAL_S:g} s (1 day)")
    return value


def positive_number(text: str) -> float:
    """argparse type: a finite number above zero (a scale, a price)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is not a positive finite number")
    return value


#: Times on the command line lie after this (2000-01-01 UTC): anything earlier is a typo or an
#: absurd duration (`99999999d`), not a period gpuops could have recorded.
EARLIEST_TS = 946_684_800.0


def time_arg(flag: str, text: str, now: float) -> float:
    """Epoch seconds of a `--since`/`--until` value (ISO 8601 or a duration ago); a usage error
    when it does not parse or lies before 2000 or in the future."""
    from gpuops.core.timefmt import BadTimeSpec, parse_time

    try:
        ts = parse_time(text, now)
    except BadTimeSpec as exc:
        raise UsageError(f"{flag}: {exc}") from None
    if not (math.isfinite(ts) and EARLIEST_TS <= ts <= now + MAX_INTERVAL_S):
        raise UsageError(f"{flag} {text}: before 2000-01-01 or more than a day ahead; no history can lie there")
    return ts


def period(since: str, until: str | None, now: float) -> tuple[float, float]:
    """(start, end) of `--since` and `--until` (default now), start before end."""
    start = time_arg("--since", since, now)
    end = now if until is None else time_arg("--until", until, now)
    if start >= end:
        raise UsageError("--since must be before --until")
    return start, end

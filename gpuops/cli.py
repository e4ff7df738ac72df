"""The `gpuops` command: `gpuops window` (what a bare `gpuops [OPTIONS]` runs) opens the console;
the other subcommands are headless.

Each subcommand lives in `gpuops.commands.<name>` and exposes `add_parser(subparsers)`, which sets
`run(args) -> int` as the parser's default. Command modules import heavy things (Qt, NVML,
SQLite) inside `run`, so `gpuops --help` and headless commands stay quick and need no display.

Exit status, the same for every subcommand: 0 success, 1 the work failed (bad input file, source
down, database unusable, refused by --read-only), 2 usage error (argparse's own, bad option
values, an existing file without --force). A closed standard output (`gpuops status | head -1`)
ends quietly with 0.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from gpuops import __version__
from gpuops.commands._options import EXIT_FAILED, EXIT_OK, EXIT_USAGE, SHARED, Failed, UsageError, add_shared, apply_defaults

COMMAND_MODULES: tuple[str, ...] = (
    "window", "status", "install-desktop", "agent", "collect", "export", "alerts", "customers", "contracts", "allocations",
    "usage", "audit", "doctor", "nodes", "rma",
)
DEFAULT_COMMAND = "window"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with `command` only that subcommand under the top level: a
    command line that starts with a command's name needs no other, and importing every command
    module cost a one-shot `gpuops status` a fifth of its CPU."""
    parser = argparse.ArgumentParser(
        prog="gpuops",
        description="Operations console for a GPU cloud. Without COMMAND, `gpuops [OPTIONS]` is `gpuops window [OPTIONS]`. "
        "The options below may also be given after COMMAND, with the same meaning.",
        epilog="exit status: 0 success, 1 the work failed, 2 usage error",
        allow_abbrev=False,  # an abbreviation would hide which tokens are option values (see _with_default_command)
    )
    parser.add_argument("--version", action="version", version=f"gpuops {__version__}")
    add_shared(parser, [name for name in SHARED if name != "verbose"])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES if command is None else (command,):
        importlib.import_module(f"gpuops.commands.{name.replace('-', '_')}").add_parser(subparsers)
    return parser


def command_summaries() -> list[tuple[str, str]]:
    """(name, one-line help) of every subcommand, in the order `gpuops --help` lists them."""
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return [(choice.dest, choice.help or "") for choice in subparsers._choices_actions]


def _with_default_command(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`argv` with `window` in front when it names no subcommand (only options, or nothing),
    unless it asks for the help or the version."""
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    window = subparsers.choices[DEFAULT_COMMAND]
    takes_value = {
        option for action in (*parser._actions, *window._actions) if action.nargs != 0 for option in action.option_strings
    }
    shared = parser._option_string_actions
    window_only: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token in ("-h", "--help", "--version") or token == "--":
            return argv
        if not token.startswith("-") or token == "-":
            if window_only:
                parser.error(f"{window_only[0]} is an option of `gpuops window`; after COMMAND, give that command's own options")
            return argv
        option = token.split("=", 1)[0]
        if option in window._option_string_actions and option not in shared:
            window_only.append(option)
        if token in takes_value:
            next(tokens, None)
    return [DEFAULT_COMMAND, *argv]


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line as the commands see it: the subcommand (default `window`) and every
    shared option, wherever it was typed; a usage error exits 2."""
    command = argv[0] if argv and argv[0] in COMMAND_MODULES else None
    parser = build_parser(command)
    args = parser.parse_args(argv if command else _with_default_command(parser, argv))
    try:
        apply_defaults(args)
    except UsageError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from gpuops.core.files import OutputRefused

    try:
        return args.run(args)
    except (UsageError, OutputRefused) as exc:
        print(f"gpuops: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Failed as exc:
        print(f"gpuops: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader went away (`| head -1`): what it wanted it got. Point stdout at /dev/null so
        # the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK

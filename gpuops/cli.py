"""The `gpuops` command: no subcommand opens the console window; subcommands are headless.

Each subcommand lives in `gpuops.commands.<name>` and exposes `add_parser(subparsers)` and
`run(args) -> int`. Command modules import heavy things (Qt, NVML, SQLite) inside `run`, so
`gpuops --help` and headless commands stay quick and need no display.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from gpuops import __version__

COMMAND_MODULES: tuple[str, ...] = (
    "status", "install-desktop", "agent", "collect", "export", "alerts", "customers", "contracts", "allocations", "usage", "audit",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpuops",
        description="Operations console for a GPU cloud. With no subcommand, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"gpuops {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    from gpuops.commands import window

    window.add_arguments(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"gpuops.commands.{name.replace('-', '_')}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command is None:
        from gpuops.commands import window

        return window.run(args)
    return args.run(args)

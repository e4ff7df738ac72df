"""`gpuops` with no subcommand: the console window."""

from __future__ import annotations

import argparse

from core.sources.factory import SOURCE_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default="auto", help=SOURCE_HELP)
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated fleet (default 0)")
    parser.add_argument(
        "--interval", type=float, default=1.0, metavar="S", help="poll interval in seconds (default 1)"
    )


def run(args: argparse.Namespace) -> int:
    from gui.app import run_app

    return run_app(source_spec=args.source, seed=args.seed, interval_s=args.interval)

"""`gpuops` with no subcommand: the console window."""

from __future__ import annotations

import argparse

from core.sources.factory import SOURCE_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default=None, help=SOURCE_HELP + " (default: as saved in Settings, else auto)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated fleet (default 0)")
    parser.add_argument(
        "--interval", type=float, default=None, metavar="S", help="poll interval in seconds (default: as saved in Settings, else 1)"
    )
    parser.add_argument(
        "--new-instance", action="store_true", help="open another window even if the console is already open (default: raise it)"
    )


def run(args: argparse.Namespace) -> int:
    from gui.app import run_app
    from gui.settings_store import load_preferences

    saved = load_preferences()
    return run_app(
        source_spec=args.source or saved.source or "auto",
        seed=args.seed,
        interval_s=saved.interval_s if args.interval is None else args.interval,
        new_instance=args.new_instance,
    )

"""`gpuops` with no subcommand: the console window."""

from __future__ import annotations

import argparse
from pathlib import Path

from gpuops.commands.source_options import add_source_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser, default=None, source_help=" (default: as saved in Settings, else auto)")
    parser.add_argument(
        "--interval", type=float, default=None, metavar="S", help="poll interval in seconds (default: as saved in Settings, else 1)"
    )
    parser.add_argument(
        "--db", type=Path, default=None, metavar="PATH",
        help="history database the console reads, and writes when no 'gpuops collect' does "
        "(default: history.sqlite in the per-user data directory)",
    )
    parser.add_argument(
        "--no-history", action="store_true", help="neither read nor write history: Live views only"
    )
    parser.add_argument(
        "--read-only", action="store_true",
        help="look, do not touch: acknowledging, silencing and maintenance are disabled",
    )
    parser.add_argument(
        "--new-instance", action="store_true", help="open another window even if the console is already open (default: raise it)"
    )


def run(args: argparse.Namespace) -> int:
    from gpuops.gui.app import run_app

    source_spec, interval_s, db_path = launch_settings(args)
    return run_app(
        source_spec=source_spec,
        seed=args.seed,
        topology=args.topology,
        interval_s=interval_s,
        new_instance=args.new_instance,
        history_db=None if args.no_history else db_path,
        read_only=args.read_only,
    )


def launch_settings(args: argparse.Namespace) -> tuple[str, float, Path]:
    """(source, poll interval, history file): the command line's, else as saved in Settings,
    else the defaults (so a desktop shortcut with no arguments opens the console on the fleet
    chosen there)."""
    from gpuops.core.store import default_db_path
    from gpuops.gui.settings_store import load_preferences

    saved = load_preferences()
    return (
        args.source or saved.source or "auto",
        saved.interval_s if args.interval is None else args.interval,
        args.db or (Path(saved.db_path) if saved.db_path else default_db_path()),
    )

"""The options every command that reads a fleet shares: --source, --seed, --topology."""

from __future__ import annotations

import argparse
from pathlib import Path

from gpuops.core.sources.factory import SOURCE_HELP


def add_source_arguments(parser: argparse.ArgumentParser, *, default: str | None = "auto", source_help: str = "") -> None:
    parser.add_argument("--source", default=default, help=SOURCE_HELP + source_help)
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated fleet (default 0)")
    parser.add_argument(
        "--topology", type=Path, default=None, metavar="FILE",
        help="CSV of node,site,rack,notes placing nodes in sites and racks; unlisted nodes go to 'unassigned'",
    )

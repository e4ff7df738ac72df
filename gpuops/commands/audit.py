"""`gpuops audit export FILE.csv`: every change to customers, contracts and allocations, with who,
when, and the record before and after (JSON)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gpuops.commands._book import add_db_arguments, refuse_overwrite, run_on_book


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="export the audit log of customer, contract and allocation changes",
        description="Write the audit log (ts,user,action,entity,entity_id,before,after; oldest first) to a CSV file.",
    )
    parser.add_argument("action", choices=("export",))
    parser.add_argument("file", type=Path, metavar="FILE.csv")
    parser.add_argument("--since", default=None, metavar="DURATION", help="only changes since (24h, 30d, or ISO 8601)")
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")
    add_db_arguments(parser, edits=False)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from core.allocations.audit import export_audit_csv
    from core.timespec import BadTimeSpec, parse_time

    since_ms = None
    if args.since is not None:
        try:
            since_ms = round(parse_time(args.since, time.time()) * 1000)
        except BadTimeSpec as exc:
            print(f"gpuops: {exc}", file=sys.stderr)
            return 2
    if refuse_overwrite(args.file, args.force):
        return 2

    def export(repo) -> int:
        print(f"{export_audit_csv(repo.conn, args.file, since_ms=since_ms)} audit entries written to {args.file}")
        return 0

    return run_on_book(args, export, writes=False)

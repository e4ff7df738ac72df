"""`gpuops audit export FILE.csv`: every change to customers, contracts and allocations, with who,
when, and the record before and after (JSON)."""

from __future__ import annotations

import argparse
import sys
import time

from gpuops.commands._book import add_file_arguments, export_from_book


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="export the audit log of customer, contract and allocation changes",
        description="Write the audit log (ts,user,action,entity,entity_id,before,after; oldest first) to a CSV file.",
    )
    add_file_arguments(parser, imports=False)
    parser.add_argument("--since", default=None, metavar="DURATION", help="only changes since (24h, 30d, or ISO 8601)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gpuops.core.allocations.audit import export_audit_csv
    from gpuops.core.timespec import BadTimeSpec, parse_time

    since_ms = None
    if args.since is not None:
        try:
            since_ms = round(parse_time(args.since, time.time()) * 1000)
        except BadTimeSpec as exc:
            print(f"gpuops: {exc}", file=sys.stderr)
            return 2
    return export_from_book(args, "audit entries", lambda repo, path: export_audit_csv(repo.conn, path, since_ms=since_ms))

"""`gpuops audit export [-o FILE]`: every change to customers, contracts, allocations and lifecycles, with
who, when, and the record before and after (JSON)."""

from __future__ import annotations

import argparse
import time

from gpuops.commands._book import add_book_command, add_file_actions, export_from_book
from gpuops.commands._options import time_arg


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_book_command(
        subparsers, "audit",
        help="export the audit log of customer, contract, allocation and lifecycle changes",
        description="Write the audit log (ts,user,action,entity,entity_id,before,after; oldest first) as CSV.",
    )
    actions = add_file_actions(parser, "audit entries", imports=False)
    actions.choices["export"].add_argument(
        "--since", default=None, metavar="DURATION",
        help="only changes since (24h, 30d, or ISO 8601)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gpuops.core.allocations.audit import export_audit_csv

    since_ms = None if args.since is None else round(time_arg("--since", args.since, time.time()) * 1000)
    return export_from_book(args, "audit entries", lambda repo, path: export_audit_csv(repo.conn, path, since_ms=since_ms))

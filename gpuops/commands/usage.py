"""`gpuops usage`: the per-customer usage report (invoice input) over a period, as CSV or JSON."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from gpuops.commands._book import add_db_arguments, run_on_book

CSV_COLUMNS = (
    "customer", "allocated_gpu_hours", "used_gpu_hours", "idle_gpu_hours", "energy_kwh", "revenue",
    "unavailable_gpu_hours", "utilization_pct", "availability_pct",
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "usage",
        help="per-customer usage report: allocated, used and idle GPU-hours, energy, revenue",
        description="Per-customer usage over a period, from allocations and recorded history (schema in README).",
    )
    parser.add_argument("--since", required=True, metavar="DURATION", help="start: a duration ago (24h, 30d) or an ISO 8601 time")
    parser.add_argument("--until", default=None, metavar="TIME", help="end: an ISO 8601 time or a duration ago (default now)")
    parser.add_argument("--customer", default=None, metavar="NAME", help="only this customer")
    parser.add_argument("--format", required=True, choices=("csv", "json"))
    parser.add_argument("--output", "-o", type=Path, default=None, metavar="FILE", help="write here instead of stdout")
    add_db_arguments(parser, edits=False)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gpuops.core.allocations.accounting import usage_report
    from gpuops.core.timespec import BadTimeSpec, parse_time

    now = time.time()
    try:
        start = parse_time(args.since, now)
        end = parse_time(args.until, now) if args.until else now
    except BadTimeSpec as exc:
        print(f"gpuops: {exc}", file=sys.stderr)
        return 2
    if start >= end:
        print("gpuops: --since must be before --until", file=sys.stderr)
        return 2

    def report(repo) -> int:
        if args.customer is not None and repo.customer_named(args.customer) is None:
            print(f"gpuops: no customer named {args.customer!r}", file=sys.stderr)
            return 1
        rows = [r.as_dict() for r in usage_report(repo, round(start * 1000), round(end * 1000), customer=args.customer)]
        out = open(args.output, "w", newline="", encoding="utf-8") if args.output else sys.stdout
        try:
            if args.format == "json":
                json.dump(rows, out, indent=2)
                out.write("\n")
            else:
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(CSV_COLUMNS)
                writer.writerows([["" if row[c] is None else row[c] for c in CSV_COLUMNS] for row in rows])
        finally:
            if args.output:
                out.close()
        return 0

    return run_on_book(args, report, writes=False)

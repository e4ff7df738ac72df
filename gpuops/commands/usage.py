"""`gpuops usage`: the per-customer usage report (invoice input) over a period, as CSV or JSON."""

from __future__ import annotations

import argparse
import time

from gpuops.commands._book import add_book_command, run_on_book
from gpuops.commands._options import Failed, UsageError, period
from gpuops.commands._output import add_format, add_output, output_file

CSV_COLUMNS = (
    "customer", "allocated_gpu_hours", "measured_gpu_hours", "coverage_pct", "used_gpu_hours",
    "idle_gpu_hours", "energy_kwh", "revenue",
    "unavailable_gpu_hours", "utilization_pct", "availability_pct",
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_book_command(
        subparsers, "usage",
        help="per-customer usage report: allocated, used and idle GPU-hours, energy, revenue",
        description="Per-customer usage over a period, from allocations and recorded history (schema in README).",
    )
    parser.add_argument("--since", required=True, metavar="DURATION", help="start: a duration ago (24h, 30d) or an ISO 8601 time")
    parser.add_argument("--until", default=None, metavar="TIME", help="end: an ISO 8601 time or a duration ago (default now)")
    parser.add_argument("--customer", default=None, metavar="NAME", help="only this customer")
    parser.add_argument(
        "--history", default=None, metavar="prometheus:URL",
        help="read the GPUs' readings from this Prometheus (options as for --source prometheus:) instead of the database",
    )
    add_format(parser, ("csv", "json"), default=None, json_alias=False)
    add_output(parser, what="the report")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gpuops.core.allocations.accounting import usage_report
    from gpuops.core.csv_cells import write_rows
    from gpuops.core.jsontext import dumps

    start, end = period(args.since, args.until, time.time())
    if args.history is not None and not args.history.startswith("prometheus:"):
        raise UsageError(f"--history {args.history}: expected prometheus:http(s)://host:port[?options]")

    def report(repo) -> int:
        if args.customer is not None and repo.customer_named(args.customer) is None:
            raise Failed(f"no customer named {args.customer!r}")
        if args.history is None:
            found = usage_report(repo, round(start * 1000), round(end * 1000), customer=args.customer)
        else:
            found = _from_prometheus(args.history, repo, start, end, args.customer)
        rows = [r.as_dict() for r in found]
        with output_file(args.output, force=args.force) as tmp, open(tmp, "w", newline="", encoding="utf-8") as out:
            if args.format == "json":
                out.write(dumps(rows, indent=2) + "\n")
            else:
                write_rows(out, CSV_COLUMNS, ([row[c] for c in CSV_COLUMNS] for row in rows))
        return 0

    return run_on_book(args, report, writes=False)


def _from_prometheus(spec: str, repo, start: float, end: float, customer: str | None) -> list:
    from gpuops.core.allocations.accounting import usage_report
    from gpuops.core.sources.base import SourceError
    from gpuops.core.sources.prometheus_history import PrometheusHistory

    try:
        with PrometheusHistory.from_spec(spec) as history:
            return usage_report(
                repo, round(start * 1000), round(end * 1000), customer=customer, history=history.usage_history()
            )
    except SourceError as exc:
        raise Failed(str(exc)) from None

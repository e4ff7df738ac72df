"""`gpuops allocations import FILE.csv | export [-o FILE]`: who holds which GPU, as CSV (columns in README)."""

from __future__ import annotations

import argparse

from gpuops.commands._book import add_book_command, add_file_actions, export_from_book, run_on_book


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_book_command(
        subparsers, "allocations",
        help="import or export GPU allocations as CSV",
        description="Import allocations from CSV (customer,contract,contract_type,gpu_uuid,start,end,price_per_gpu_hour; "
        "all or nothing: any bad row rejects the whole file and every problem is listed by row) or export every stored "
        "allocation. Exporting and importing the same file changes nothing.",
    )
    actions = add_file_actions(parser, "allocations", imports=True)
    actions.choices["import"].add_argument("--allow-unhealthy", action="store_true", help="allocate lost or faulty GPUs too")
    actions.choices["import"].add_argument(
        "--lifecycle-override", default=None, metavar="REASON",
        help="allocate GPUs outside production too (draining, repair, ...); the reason goes in the audit log",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gpuops.core.allocations.csv_io import export_allocations, import_allocations

    if args.action == "export":
        return export_from_book(args, "allocation(s)", export_allocations)

    def do_import(repo) -> int:
        s = import_allocations(repo, args.file, confirm=args.allow_unhealthy, lifecycle_override=args.lifecycle_override)
        print(
            f"{s.added} allocation(s) added ({s.unchanged} already stored); "
            f"{s.customers_created} customer(s) and {s.contracts_created} contract(s) created"
        )
        return 0

    return run_on_book(args, do_import, writes=True)

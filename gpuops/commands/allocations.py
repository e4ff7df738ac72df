"""`gpuops allocations import|export FILE.csv`: who holds which GPU, as CSV (columns in README)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gpuops.commands._book import add_db_arguments, refuse_overwrite, run_on_book


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "allocations",
        help="import or export GPU allocations as CSV",
        description="Import allocations from CSV (customer,contract,contract_type,gpu_uuid,start,end,price_per_gpu_hour; "
        "all or nothing: any bad row rejects the whole file and every problem is listed by row) or export every stored "
        "allocation. Exporting and importing the same file changes nothing.",
    )
    parser.add_argument("action", choices=("import", "export"))
    parser.add_argument("file", type=Path, metavar="FILE.csv")
    parser.add_argument("--allow-unhealthy", action="store_true", help="import: allocate lost or faulty GPUs too")
    parser.add_argument("--force", action="store_true", help="export: replace FILE if it exists")
    add_db_arguments(parser, edits=True)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from core.allocations.csv_io import export_allocations, import_allocations

    if args.action == "export":
        if refuse_overwrite(args.file, args.force):
            return 2

        def export(repo) -> int:
            print(f"{export_allocations(repo, args.file)} allocation(s) written to {args.file}")
            return 0

        return run_on_book(args, export, writes=False)

    def do_import(repo) -> int:
        s = import_allocations(repo, args.file, confirm=args.allow_unhealthy)
        print(
            f"{s.added} allocation(s) added ({s.unchanged} already stored); "
            f"{s.customers_created} customer(s) and {s.contracts_created} contract(s) created"
        )
        return 0

    return run_on_book(args, do_import, writes=True)

"""`gpuops customers import|export FILE.csv`: the customer list as CSV (name, contact, notes)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gpuops.commands._book import add_db_arguments, refuse_overwrite, run_on_book


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "customers",
        help="import or export customers as CSV",
        description="Import customers from CSV (columns name,contact,notes: new ones are added, changed contact or "
        "notes updated; any bad row rejects the whole file) or export them, sorted by name.",
    )
    parser.add_argument("action", choices=("import", "export"))
    parser.add_argument("file", type=Path, metavar="FILE.csv")
    parser.add_argument("--force", action="store_true", help="export: replace FILE if it exists")
    add_db_arguments(parser, edits=True)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from core.allocations.csv_io import export_customers, import_customers

    if args.action == "export":
        if refuse_overwrite(args.file, args.force):
            return 2

        def export(repo) -> int:
            print(f"{export_customers(repo, args.file)} customer(s) written to {args.file}")
            return 0

        return run_on_book(args, export, writes=False)

    def do_import(repo) -> int:
        summary = import_customers(repo, args.file)
        print(f"{summary.customers_created} customer(s) added, {summary.customers_updated} updated, {summary.unchanged} unchanged")
        return 0

    return run_on_book(args, do_import, writes=True)

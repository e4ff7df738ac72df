"""`gpuops customers import FILE.csv | export [-o FILE]`: the customer list as CSV (name, contact, notes)."""

from __future__ import annotations

import argparse

from gpuops.commands._book import add_book_command, add_file_actions, export_from_book, run_on_book


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_book_command(
        subparsers, "customers",
        help="import or export customers as CSV",
        description="Import customers from CSV (columns name,contact,notes: new ones are added, changed contact or "
        "notes updated; any bad row rejects the whole file) or export them, sorted by name.",
    )
    add_file_actions(parser, "customers", imports=True)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gpuops.core.allocations.csv_io import export_customers, import_customers

    if args.action == "export":
        return export_from_book(args, "customer(s)", export_customers)

    def do_import(repo) -> int:
        summary = import_customers(repo, args.file)
        print(
            f"{summary.customers_created} customer(s) added, {summary.customers_updated} updated, "
            f"{summary.unchanged} unchanged"
        )
        return 0

    return run_on_book(args, do_import, writes=True)

"""`gpuops status`: one poll, printed as a table (like gpustat) or as JSON for scripts."""

from __future__ import annotations

import argparse
import json
import sys

from gpuops.commands.source_options import add_source_arguments


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status",
        help="poll every GPU once and print the result",
        description="Poll every GPU once and print a table, or one JSON object with --json.",
    )
    add_source_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object (schema in README)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gpuops.core.sources.base import SourceError
    from gpuops.core.sources.factory import open_source
    from gpuops.core.status_report import status_document, status_table

    try:
        with open_source(args.source, seed=args.seed, topology=args.topology) as source:
            sample = source.poll()
            document = status_document(source, sample)
    except SourceError as exc:
        print(f"gpuops: {exc}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        if document.get("notice"):
            print(document["notice"])
        print(status_table(document))
    return 0

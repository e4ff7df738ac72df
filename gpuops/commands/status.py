"""`gpuops status`: one poll, printed as a table (like gpustat) or as JSON for scripts.

Exit status a health check can trust: 1 when the source yields no GPU or every target failed,
0 with `errors` filled when only some failed (1 with --strict)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from gpuops.commands._options import FLEET, Failed, add_command
from gpuops.commands._output import add_format, print_json

if TYPE_CHECKING:
    from gpuops.core.telemetry import FleetSample


def add_strict(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strict", action="store_true", help="exit 1 when any target failed (default: only when every one did)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "status", takes=(*FLEET, "read_only"), source_default="auto",
        help="poll every GPU once and print the result",
        description="Poll every GPU once and print a table, or one JSON object with --format json. Exits 1 when the "
        "source yields no GPU or every target failed.",
    )
    add_format(parser, ("table", "json"), default="table", json_alias=True)
    add_strict(parser)
    parser.set_defaults(run=run)


def poll_failure(sample: FleetSample, *, strict: bool) -> str | None:
    """Why this one poll counts as failed for a script, or None: no GPU at all, every node's
    target down (all stale), or with `strict` any error."""
    if len(sample) == 0:
        return "no GPU found" + (f": {'; '.join(sample.errors)}" if sample.errors else "")
    if sample.stale_nodes and {gpu.node for gpu in sample.gpus} <= sample.stale_nodes:
        return "every target failed: " + "; ".join(sample.errors)
    if strict and sample.errors:
        return f"{len(sample.errors)} problem(s) (--strict): " + "; ".join(sample.errors)
    return None


def run(args: argparse.Namespace) -> int:
    from gpuops.core.sources.base import SourceError
    from gpuops.core.sources.factory import open_source
    from gpuops.core.status_report import status_document, status_table

    try:
        with open_source(args.source, seed=args.seed, topology=args.topology) as source:
            sample = source.poll()
            document = status_document(source, sample)
    except SourceError as exc:
        raise Failed(str(exc)) from None
    if args.format == "json":
        print_json(document)
    else:
        if document.get("notice"):
            print(document["notice"])
        if len(sample):
            print(status_table(document))
    failure = poll_failure(sample, strict=args.strict)
    if failure is not None:
        sys.stdout.flush()
        raise Failed(failure)
    return 0

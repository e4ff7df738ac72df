"""`gpuops export`: history to a file - a table (csv, json) of every GPU per timestamp.

Each format is one entry of FORMATS; a new format (e.g. a png/pdf snapshot) adds an entry whose
`write` produces the document into the temporary file that `run` then moves into place. An
existing output file is never replaced unless --force (exit 2 otherwise).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ExportFormat:
    help: str
    #: Write the document for `args` to the (empty, open for writing) text file; return a summary line.
    write: Callable[[argparse.Namespace, "object"], str]


def _history_table(kind: str) -> Callable[[argparse.Namespace, object], str]:
    def write(args: argparse.Namespace, out) -> str:
        from core.store.export import ExportRequest, write_csv, write_json
        from core.store.queries import HistoryReader

        with HistoryReader(args.db_path) as reader:
            request = ExportRequest(args.start, args.end, args.resolution, args.gpu, args.metric)
            rows = (write_csv if kind == "csv" else write_json)(reader, request, out)
        return f"{rows} rows"

    return write


FORMATS: dict[str, ExportFormat] = {
    "csv": ExportFormat("one row per GPU per timestamp: ts, uuid, node, then one column per metric", _history_table("csv")),
    "json": ExportFormat("the same rows as a JSON document (schema in core/store/export.py)", _history_table("json")),
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write recorded history to a file (csv, json)",
        description="Write recorded history to a file. " + " ".join(f"{name}: {f.help}." for name, f in FORMATS.items()),
    )
    parser.add_argument("--format", required=True, choices=sorted(FORMATS), help="file format")
    parser.add_argument("--db", type=Path, default=None, metavar="PATH", help="history database (default: in the user data directory)")
    parser.add_argument("--since", required=True, metavar="DURATION", help="start: a duration ago (15m, 24h, 7d) or an ISO 8601 time")
    parser.add_argument("--until", default=None, metavar="TIME", help="end: an ISO 8601 time or a duration ago (default now)")
    parser.add_argument("--gpu", action="append", default=None, metavar="UUID", help="only this GPU (repeatable; default all)")
    parser.add_argument("--metric", action="append", default=None, metavar="NAME", help="only this metric (repeatable; default all)")
    parser.add_argument(
        "--resolution", default="raw", choices=("raw", "1m", "1h"),
        help="raw polls (kept 48 h by default) or 1-minute / 1-hour rollups with min/avg/max columns (default raw)",
    )
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="FILE", help="file to write")
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")
    parser.set_defaults(run=run)


def _publish(tmp: Path, output: Path, force: bool) -> None:
    """Move the finished file into place with the permissions any new file would get (the
    temporary file was private); without force, never over an existing file (even one created
    while the export ran): a hard link fails if the name exists."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    if force:
        os.replace(tmp, output)
        return
    try:
        os.link(tmp, output)
    finally:
        os.unlink(tmp)


def run(args: argparse.Namespace) -> int:
    from core.store.errors import StoreError
    from core.store.paths import default_db_path
    from core.timespec import BadTimeSpec, parse_time

    output: Path = args.output
    if output.exists() and not args.force:
        print(f"gpuops: {output} exists; pass --force to replace it", file=sys.stderr)
        return 2
    now = time.time()
    try:
        args.start = parse_time(args.since, now)
        args.end = parse_time(args.until, now) if args.until else now
    except BadTimeSpec as exc:
        print(f"gpuops: {exc}", file=sys.stderr)
        return 2
    if args.start >= args.end:
        print("gpuops: --since must be before --until", file=sys.stderr)
        return 2
    args.db_path = args.db or default_db_path()
    try:
        handle = tempfile.NamedTemporaryFile(
            "w", dir=output.parent or ".", prefix=f".{output.name}.", suffix=".part", delete=False, encoding="utf-8", newline=""
        )
    except OSError as exc:
        print(f"gpuops: cannot write {output}: {exc.strerror}", file=sys.stderr)
        return 1
    tmp = Path(handle.name)
    try:
        with handle:
            summary = FORMATS[args.format].write(args, handle)
        _publish(tmp, output, args.force)
    except FileExistsError:
        print(f"gpuops: {output} appeared while exporting; pass --force to replace it", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"gpuops: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"gpuops: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {output} ({summary})", file=sys.stderr)
    return 0

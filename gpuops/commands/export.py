"""`gpuops export`: history to a file - a table (csv, json) of every GPU per timestamp - or,
without --since/--until, a snapshot of the fleet now (png, pdf, csv, json; see core/snapshot.py).

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

from gpuops.commands.source_options import add_source_arguments


@dataclass(frozen=True)
class ExportFormat:
    help: str
    #: Write the document for `args` to the (empty, open for writing) file; return a summary line.
    write: Callable[[argparse.Namespace, "object"], str]
    #: The file is opened in binary mode (images, PDF) rather than as UTF-8 text.
    binary: bool = False


def _history_table(kind: str) -> Callable[[argparse.Namespace, object], str]:
    def write(args: argparse.Namespace, out) -> str:
        from gpuops.core.store.export import ExportRequest, write_csv, write_json
        from gpuops.core.store.queries import HistoryReader

        with HistoryReader(args.db_path) as reader:
            request = ExportRequest(args.start, args.end, args.resolution, args.gpu, args.metric)
            rows = (write_csv if kind == "csv" else write_json)(reader, request, out)
        return f"{rows} rows"

    return write


FORMATS: dict[str, ExportFormat] = {
    "csv": ExportFormat("one row per GPU per timestamp: ts, uuid, node, then one column per metric", _history_table("csv")),
    "json": ExportFormat("the same rows as a JSON document (schema in core/store/export.py)", _history_table("json")),
}


def _snapshot_of(args: argparse.Namespace):
    """--db alone: the fleet as last recorded there. Otherwise poll --source (default auto) and
    read allocations, alerts and plots from --db (default: the user's history, if any)."""
    from gpuops.core.snapshot import collect_snapshot
    from gpuops.core.store.paths import default_db_path

    if args.source is None and args.db is not None:
        return collect_snapshot(source_spec=None, db_path=args.db, plot_uuids=args.gpu)
    return collect_snapshot(source_spec=args.source or "auto", db_path=args.db or default_db_path(), seed=args.seed, topology=args.topology, plot_uuids=args.gpu)


def _snapshot_table(kind: str) -> Callable[[argparse.Namespace, object], str]:
    def write(args: argparse.Namespace, out) -> str:
        from gpuops.core.snapshot import write_snapshot_csv, write_snapshot_json

        rows = (write_snapshot_csv if kind == "csv" else write_snapshot_json)(_snapshot_of(args), out)
        return f"snapshot of {rows} GPUs"

    return write


def _snapshot_picture(kind: str) -> Callable[[argparse.Namespace, object], str]:
    def write(args: argparse.Namespace, out) -> str:
        snapshot = _snapshot_of(args)
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # cron: no display, and Qt would abort
        from gpuops.gui.app import application
        from gpuops.gui.snapshot_render import quiet_platform_notices, render_snapshot

        application()
        with quiet_platform_notices():
            out.write(render_snapshot(snapshot, kind, scale=args.scale, view=args.view))
        return f"snapshot of {len(snapshot.sample)} GPUs"

    return write


#: Without --since/--until: the fleet now.
SNAPSHOT_FORMATS: dict[str, ExportFormat] = {
    "png": ExportFormat("a picture of the console (--view window or grid, --scale 2 for high DPI)", _snapshot_picture("png"), binary=True),
    "pdf": ExportFormat("a report: time, source, fleet figures, grid, active alerts, customers, plots", _snapshot_picture("pdf"), binary=True),
    "csv": ExportFormat("one row per GPU: inventory, current readings, health, customer, alerts", _snapshot_table("csv")),
    "json": ExportFormat('{"collected_at", "source", "gpus": [...]} with the same per-GPU facts', _snapshot_table("json")),
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write recorded history (csv, json) or a snapshot of the fleet now (png, pdf, csv, json) to a file",
        description="With --since: write recorded history to a file. "
        + " ".join(f"{name}: {f.help}." for name, f in FORMATS.items())
        + " Without --since: a snapshot of the fleet now, polled from --source (default auto) or read from --db. "
        + " ".join(f"{name}: {f.help}." for name, f in SNAPSHOT_FORMATS.items()),
    )
    parser.add_argument("--format", required=True, choices=sorted(set(FORMATS) | set(SNAPSHOT_FORMATS)), help="file format")
    parser.add_argument("--db", type=Path, default=None, metavar="PATH", help="history database (default: in the user data directory)")
    parser.add_argument(
        "--since", default=None, metavar="DURATION",
        help="history start: a duration ago (15m, 24h, 7d) or an ISO 8601 time (without it: a snapshot of now)",
    )
    parser.add_argument("--until", default=None, metavar="TIME", help="end: an ISO 8601 time or a duration ago (default now)")
    parser.add_argument("--gpu", action="append", default=None, metavar="UUID", help="only this GPU (repeatable; default all)")
    parser.add_argument("--metric", action="append", default=None, metavar="NAME", help="only this metric (repeatable; default all)")
    parser.add_argument(
        "--resolution", default="raw", choices=("raw", "1m", "1h"),
        help="raw polls (kept 48 h by default) or 1-minute / 1-hour rollups with min/avg/max columns (default raw)",
    )
    parser.add_argument(
        "-o", "--output", default=None, type=Path, metavar="FILE",
        help="file to write (snapshots default to gpuops-snapshot-YYYYmmdd-HHMMSS.<format> here)",
    )
    add_source_arguments(parser, default=None, source_help=" (snapshot: poll this source once)")
    parser.add_argument("--scale", type=float, default=1.0, metavar="F", help="png: pixels per screen pixel (2 for high DPI)")
    parser.add_argument("--view", default="window", choices=("window", "grid"), help="png: the whole window or the fleet grid")
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
    from gpuops.core.store.errors import StoreError
    from gpuops.core.store.paths import default_db_path
    from gpuops.core.timespec import BadTimeSpec, parse_time

    from gpuops.core.snapshot import NoSnapshotData, default_file_name
    from gpuops.core.sources.base import SourceError

    history = args.since is not None or args.until is not None
    formats = FORMATS if history else SNAPSHOT_FORMATS
    if args.format not in formats:
        print(f"gpuops: {args.format} is a snapshot of the fleet now; it takes no --since/--until", file=sys.stderr)
        return 2
    if history and args.since is None:
        print("gpuops: --until needs --since", file=sys.stderr)
        return 2
    if args.output is None and history:
        print("gpuops: a history export needs -o FILE", file=sys.stderr)
        return 2
    if not args.scale > 0:
        print(f"gpuops: --scale must be a positive number, not {args.scale:g}", file=sys.stderr)
        return 2
    output: Path = args.output or Path(default_file_name(args.format))
    if output.exists() and not args.force:
        print(f"gpuops: {output} exists; pass --force to replace it", file=sys.stderr)
        return 2
    if history:
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
    export_format = formats[args.format]
    try:
        text = {} if export_format.binary else {"encoding": "utf-8", "newline": ""}
        handle = tempfile.NamedTemporaryFile(
            "wb" if export_format.binary else "w", dir=output.parent or ".", prefix=f".{output.name}.", suffix=".part",
            delete=False, **text,
        )
    except OSError as exc:
        print(f"gpuops: cannot write {output}: {exc.strerror}", file=sys.stderr)
        return 1
    tmp = Path(handle.name)
    try:
        with handle:
            summary = export_format.write(args, handle)
        _publish(tmp, output, args.force)
    except FileExistsError:
        print(f"gpuops: {output} appeared while exporting; pass --force to replace it", file=sys.stderr)
        return 2
    except (StoreError, SourceError, NoSnapshotData) as exc:
        print(f"gpuops: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"gpuops: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {output} ({summary})", file=sys.stderr)
    return 0

"""`gpuops export`: history to a file - a table (csv, json) of every GPU per timestamp, from the
local history or (--source prometheus:URL) from Prometheus - or, without --since/--until, a
snapshot of the fleet now (png, pdf, csv, json; see core/snapshot.py).

Each format is one entry of FORMATS; a new format adds an entry whose `write` produces the
document into the temporary file that `core.files.atomic_write` then moves into place. An
existing output file is never replaced unless --force (exit 2 otherwise); `-o -` writes to
standard output. A snapshot polled from a source exits 1, writing nothing, when the source
yields no GPU or every target failed (any failed target with --strict).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from gpuops.commands._options import BOOK, FLEET, Failed, UsageError, add_command, period, positive_number
from gpuops.commands._output import add_output, destination, output_file
from gpuops.commands.status import add_strict, poll_failure


@dataclass(frozen=True)
class ExportFormat:
    help: str
    #: Write the document for `args` to the (empty, open for writing) file; return a summary line.
    write: Callable[[argparse.Namespace, object], str]
    #: The file is opened in binary mode (images, PDF) rather than as UTF-8 text.
    binary: bool = False


def _history_table(kind: str) -> Callable[[argparse.Namespace, object], str]:
    def write(args: argparse.Namespace, out) -> str:
        from gpuops.core.store.export import ExportRequest, write_csv, write_json
        from gpuops.core.store.queries import HistoryReader

        if args.prometheus is not None:
            from gpuops.core.sources.prometheus_history import PrometheusHistory

            with PrometheusHistory.from_spec(args.prometheus) as history:
                view = history.period(args.start, args.end)
                request = ExportRequest(view.start, args.end, args.resolution, args.gpu, args.metric)
                rows = (write_csv if kind == "csv" else write_json)(view, request, out)
            return f"{rows} rows from {history.path}"
        with HistoryReader(args.db_path, read_only=True) as reader:
            # From the oldest stored data at the earliest: `--since 99999999d` must not walk
            # through millennia of empty time.
            span = reader.time_range()
            start = args.start if span is None else min(max(args.start, span[0]), args.end)
            request = ExportRequest(start, args.end, args.resolution, args.gpu, args.metric)
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
    snapshot = collect_snapshot(
        source_spec=args.source or "auto", db_path=args.db or default_db_path(), seed=args.seed, topology=args.topology,
        plot_uuids=args.gpu,
    )
    failure = poll_failure(snapshot.sample, strict=args.strict)
    if failure is not None:
        raise Failed(failure)
    return snapshot


def _snapshot_table(kind: str) -> Callable[[argparse.Namespace, object], str]:
    def write(args: argparse.Namespace, out) -> str:
        from gpuops.core.snapshot import write_snapshot_csv, write_snapshot_json

        rows = (write_snapshot_csv if kind == "csv" else write_snapshot_json)(_snapshot_of(args), out)
        return f"snapshot of {rows} GPUs"

    return write


def _snapshot_picture(kind: str) -> Callable[[argparse.Namespace, object], str]:
    def write(args: argparse.Namespace, out) -> str:
        snapshot = _snapshot_of(args)
        # A picture needs no display: render offscreen unless told otherwise, so cron, ssh or a
        # display that cannot be opened never makes Qt abort.
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from gpuops.gui.app.launch import application
        from gpuops.gui.snapshot.headless import render_snapshot
        from gpuops.gui.snapshot.render import quiet_platform_notices

        application()
        with quiet_platform_notices():
            out.write(render_snapshot(snapshot, kind, scale=args.scale, view=args.view))
        return f"snapshot of {len(snapshot.sample)} GPUs"

    return write


#: Without --since/--until: the fleet now.
SNAPSHOT_FORMATS: dict[str, ExportFormat] = {
    "png": ExportFormat(
        "a picture of the console (--view window or grid, --scale 2 for high DPI)", _snapshot_picture("png"), binary=True
    ),
    "pdf": ExportFormat(
        "a report: time, source, fleet figures, grid, active alerts, customers, plots", _snapshot_picture("pdf"), binary=True
    ),
    "csv": ExportFormat("one row per GPU: inventory, current readings, health, customer, alerts", _snapshot_table("csv")),
    "json": ExportFormat('{"collected_at", "source", "gpus": [...]} with the same per-GPU facts', _snapshot_table("json")),
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "export", takes=(*FLEET, *BOOK),
        help="write recorded history (csv, json) or a snapshot of the fleet now (png, pdf, csv, json) to a file",
        description="With --since: write recorded history to a file, from --db (default: the user's history) or, "
        "with --source prometheus:URL, from that Prometheus. "
        + " ".join(f"{name}: {f.help}." for name, f in FORMATS.items())
        + " Without --since: a snapshot of the fleet now, polled from --source (default auto) or read from --db. "
        + " ".join(f"{name}: {f.help}." for name, f in SNAPSHOT_FORMATS.items()),
    )
    parser.add_argument("--format", required=True, choices=sorted(set(FORMATS) | set(SNAPSHOT_FORMATS)), help="file format")
    parser.add_argument(
        "--since", default=None, metavar="DURATION",
        help="history start: a duration ago (15m, 24h, 7d) or an ISO 8601 time (without it: a snapshot of now)",
    )
    parser.add_argument("--until", default=None, metavar="TIME", help="end: an ISO 8601 time or a duration ago (default now)")
    parser.add_argument("--gpu", action="append", default=None, metavar="UUID", help="only this GPU (repeatable; default all)")
    parser.add_argument(
        "--metric", action="append", default=None, metavar="NAME",
        help="only this metric (repeatable; default all)",
    )
    parser.add_argument(
        "--resolution", default="raw", choices=("raw", "1m", "1h"),
        help="raw polls (kept 48 h by default) or 1-minute / 1-hour rollups with min/avg/max columns (default raw)",
    )
    add_output(parser, what="the export", default="history: required; snapshot: gpuops-snapshot-YYYYmmdd-HHMMSS.<format> here")
    parser.add_argument(
        "--scale", type=positive_number, default=1.0, metavar="F",
        help="png: pixels per screen pixel (2 for high DPI)",
    )
    parser.add_argument("--view", default="window", choices=("window", "grid"), help="png: the whole window or the fleet grid")
    add_strict(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gpuops.core.snapshot import NoSnapshotData, default_file_name
    from gpuops.core.sources.base import SourceError
    from gpuops.core.store.errors import StoreError
    from gpuops.core.store.paths import default_db_path

    history = args.since is not None or args.until is not None
    formats = FORMATS if history else SNAPSHOT_FORMATS
    if args.format not in formats:
        raise UsageError(f"{args.format} is a snapshot of the fleet now; it takes no --since/--until")
    if history and args.since is None:
        raise UsageError("--until needs --since")
    if args.output is None and history:
        raise UsageError("a history export needs -o FILE (- for standard output)")
    if args.strict and (history or (args.source is None and args.db is not None)):
        raise UsageError("--strict is for a snapshot polled from a source, not one read from the history")
    output = args.output or default_file_name(args.format)
    if history:
        args.start, args.end = period(args.since, args.until, time.time())
        args.db_path = args.db or default_db_path()
        # History from Prometheus with --source prometheus:URL; any other source records nothing
        # to export, so the local history stays the one read, as before.
        prometheus = args.source is not None and args.source.startswith("prometheus:")
        if prometheus and args.db is not None:
            raise UsageError("--db and --source prometheus: are two histories; give one")
        args.prometheus = args.source if prometheus else None
    export_format = formats[args.format]
    try:
        with output_file(output, force=args.force) as tmp:
            with open(tmp, "wb") if export_format.binary else open(tmp, "w", encoding="utf-8", newline="") as handle:
                summary = export_format.write(args, handle)
    except FileExistsError:
        raise UsageError(f"{output} appeared while exporting; pass --force to replace it") from None
    except (StoreError, SourceError, NoSnapshotData) as exc:
        raise Failed(str(exc)) from None
    except OSError as exc:
        raise Failed(f"cannot write {output}: {exc.strerror or exc}") from None
    print(f"wrote {destination(output)} ({summary})", file=sys.stderr)
    return 0

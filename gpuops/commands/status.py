"""`gpuops status`: one poll, printed as a table (like gpustat and nvitop) or as JSON for scripts;
`--watch` redraws the table in place until Ctrl-C.

Exit status a health check can trust: 1 when the source yields no GPU or every target failed,
0 with `errors` filled when only some failed (1 with --strict). The table side (columns, colour,
filters, processes) lives in core/status_table.py."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpuops.commands._options import BOOK, FLEET, Failed, UsageError, add_command, interval_s
from gpuops.commands._output import STDOUT, add_format, add_output, output_file

if TYPE_CHECKING:
    from gpuops.core.health import HealthModel
    from gpuops.core.sources.base import TelemetrySource
    from gpuops.core.status_table import Filters, TableOptions
    from gpuops.core.telemetry import FleetSample

#: `-i` without a number: gpustat's default.
DEFAULT_WATCH_S = 1.0
_HEALTH_CHOICES = ("ok", "warning", "critical", "stale")


def add_strict(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strict", action="store_true", help="exit 1 when any target failed (default: only when every one did)")


def _health_list(text: str) -> str:
    for part in text.split(","):
        if part.strip() and part.strip() not in _HEALTH_CHOICES:
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not a health; choose from {', '.join(_HEALTH_CHOICES)}")
    return text


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "status", takes=(*FLEET, *BOOK), source_default="auto",
        help="poll every GPU once and print the result",
        description="Poll every GPU once and print a table that fits 100 columns (--wide: every column), or one JSON "
        "object with --format json. Exits 1 when the source yields no GPU or every target failed.",
    )
    add_format(parser, ("table", "json"), default="table", json_alias=True)
    add_output(parser, what="the table or the JSON document")
    add_strict(parser)
    parser.add_argument(
        "-i", "--watch", nargs="?", type=interval_s, const=DEFAULT_WATCH_S, default=None, metavar="SECONDS",
        help=f"redraw the table every SECONDS (default {DEFAULT_WATCH_S:g}) until Ctrl-C",
    )
    parser.add_argument("--wide", action="store_true", help="every column, nothing cut (wider than 100 columns)")
    parser.add_argument("--processes", action="store_true", help="list each GPU's processes: pid, user, GPU memory, name")
    parser.add_argument("--no-color", dest="no_color", action="store_true",
                        help="no colour even on a terminal (NO_COLOR in the environment does the same)")
    parser.add_argument("--gpu", action="append", metavar="ID",
                        help="only this GPU: UUID (or its first 8+ characters) or index; repeat or comma-separate")
    parser.add_argument("--node", action="append", metavar="NAME",
                        help="only GPUs of this node (a shell pattern such as 'gpu-*' too); repeatable")
    parser.add_argument("--health", action="append", type=_health_list, metavar="GRADE",
                        help=f"only GPUs of this health: {', '.join(_HEALTH_CHOICES)}; repeat or comma-separate")
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


def _filters(args: argparse.Namespace) -> Filters:
    from gpuops.core.status_table import Filters, split_values

    return Filters(gpus=split_values(args.gpu), nodes=split_values(args.node), healths=split_values(args.health))


def _report(source: TelemetrySource, sample: FleetSample, model: HealthModel, filters: Filters) -> tuple[dict[str, Any], list]:
    """The JSON document of the GPUs the filters keep, each with its `health` and
    `health_reason`, and their grades (for the table)."""
    from gpuops.core.status_report import status_document
    from gpuops.core.status_table import grade_sample, selected

    document = status_document(source, sample)
    grades = grade_sample(sample, model)
    for record, grade in zip(document["gpus"], grades, strict=True):
        record["health"], record["health_reason"] = grade.grade, grade.reason or None
    keep = selected(document["gpus"], grades, filters)
    document["gpus"] = [document["gpus"][i] for i in keep]
    return document, [grades[i] for i in keep]


def _add_lifecycle(document: dict[str, Any], db: Path | None) -> None:
    """Each GPU's `lifecycle` from the book (production when nothing is recorded); an unreadable
    history is one more entry in `errors`, not a failed status."""
    from gpuops.core.lifecycle.states import DEFAULT_STATE
    from gpuops.core.store.paths import default_db_path

    path = db or default_db_path()
    if not path.exists():  # no book: skip importing it, as most one-shot checks on a node have none
        for record in document["gpus"]:
            record["lifecycle"] = DEFAULT_STATE.value
        return
    from gpuops.core.lifecycle.book import with_lifecycle

    problem = with_lifecycle(document["gpus"], path)
    if problem:
        document["errors"].append(problem)


def _table(document: dict[str, Any], grades: list, options: TableOptions, filters: Filters, total: int) -> str:
    from gpuops.core.status_table import render_table

    if total and not document["gpus"]:
        return "\n".join([f"no GPU of {total} matches {filters.describe()}", *(f"error: {e}" for e in document["errors"])])
    return render_table(document["gpus"], grades, document["errors"], options)


#: numpy starts one OpenBLAS thread per core when imported, which costs a one-shot status ~40 ms of
#: CPU (a fifth of the whole run on 2 cores); status does no linear algebra.
_BLAS_THREADS = {"OPENBLAS_NUM_THREADS": "1"}


def run(args: argparse.Namespace) -> int:
    for name, value in _BLAS_THREADS.items():
        os.environ.setdefault(name, value)  # before the first numpy import, in the factory below
    from gpuops.core.health import HealthModel
    from gpuops.core.sources.base import SourceError
    from gpuops.core.sources.factory import open_source
    from gpuops.core.status_table import TableOptions, colour_enabled

    if args.watch is not None and args.format == "json":
        raise UsageError("--watch redraws the table; for JSON, run `gpuops status --json` each time or record with collect")
    if args.watch is not None and args.output not in (None, STDOUT):
        raise UsageError("--watch redraws the terminal; -o FILE takes one poll")
    to_terminal = args.output in (None, STDOUT) and sys.stdout.isatty()
    filters = _filters(args)
    model = HealthModel()
    try:
        with open_source(args.source, seed=args.seed, topology=args.topology) as source:
            options = TableOptions(
                wide=args.wide,
                colour=colour_enabled(is_tty=to_terminal, no_color_flag=args.no_color, environ=os.environ),
                processes=args.processes,
                local_processes=source.name == "nvml",
            )
            if args.watch is not None:
                return _watch(source, model, filters, options, args.watch)
            sample = source.poll()
            document, grades = _report(source, sample, model, filters)
            _add_lifecycle(document, args.db)
    except SourceError as exc:
        raise Failed(str(exc)) from None
    except KeyboardInterrupt:  # a watch stopped while its source was opening or closing: still a clean stop
        if args.watch is None:
            raise
        return 0
    if args.format == "json":
        from gpuops.core.jsontext import dumps

        text = dumps(document, indent=2) + "\n"
    else:
        lines = [document["notice"]] if document.get("notice") else []
        if len(sample):
            lines.append(_table(document, grades, options, filters, len(sample)))
        text = "".join(line + "\n" for line in lines)
    with output_file(args.output, force=args.force) as tmp:  # the document is the evidence even of a failed poll
        tmp.write_text(text, encoding="utf-8")
    failure = poll_failure(sample, strict=args.strict)
    if failure is not None:
        sys.stdout.flush()
        raise Failed(failure)
    return 0


_HOME_CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear the screen: the first frame
_HOME = "\x1b[H"  # later frames overwrite in place (no flicker)
_CLEAR_LINE_END = "\x1b[K"
_CLEAR_BELOW = "\x1b[J"


def _fit_height(frame: str, rows: int) -> str:
    """`frame` cut to the terminal's height, so that redrawing from the top overwrites all of it."""
    lines = frame.split("\n")
    if len(lines) < rows:
        return frame
    kept = max(rows - 2, 1)
    return "\n".join([*lines[:kept], f"… {len(lines) - kept} more lines: narrow with --node, --gpu or --health"])


def _watch(source: TelemetrySource, model: HealthModel, filters: Filters, options: TableOptions, every_s: float) -> int:
    """Poll and redraw until Ctrl-C (exit 0). On a terminal each frame overwrites the last; piped,
    frames follow one another, a blank line apart. A failed poll shows its reason and the loop
    goes on: a watch is for watching a fleet come back too."""
    from gpuops.core.sources.base import SourceError
    from gpuops.core.timefmt import local_time

    terminal = sys.stdout.isatty()
    first = True
    try:
        while True:
            started = time.monotonic()
            stamp = local_time(time.time())
            title = f"{source.name}  {stamp}  every {every_s:g} s, Ctrl-C to stop"
            try:
                sample = source.poll()
                document, grades = _report(source, sample, model, filters)
                body = _table(document, grades, options, filters, len(sample)) if len(sample) else "no GPU found"
                if not len(sample) and sample.errors:
                    body += "\n" + "\n".join(f"error: {error}" for error in sample.errors)
            except SourceError as exc:
                body = f"gpuops: {exc}"
            frame = f"{title}\n{body}"
            if terminal:
                frame = _fit_height(frame, shutil.get_terminal_size().lines)
                lead = _HOME_CLEAR if first else _HOME
                sys.stdout.write(lead + frame.replace("\n", _CLEAR_LINE_END + "\n") + _CLEAR_LINE_END + _CLEAR_BELOW)
            else:
                sys.stdout.write(("" if first else "\n") + frame + "\n")
            sys.stdout.flush()
            first = False
            time.sleep(max(0.0, every_s - (time.monotonic() - started)))
    except KeyboardInterrupt:
        if terminal:
            sys.stdout.write("\n")
            sys.stdout.flush()
        return 0

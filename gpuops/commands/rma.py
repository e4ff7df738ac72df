"""`gpuops rma report GPU-UUID --format json|pdf -o FILE`: what a vendor's RMA form asks for about
one GPU, from the history database (contents in core/lifecycle/rma.py). The PDF is drawn by Qt's
PDF writer offscreen, as `gpuops export --format pdf` is: no display needed."""

from __future__ import annotations

import argparse
import os
import sys
import time

from gpuops.commands._options import BOOK, Failed, add_action, add_command
from gpuops.commands._output import add_format, add_output, destination, output_file


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "rma", takes=BOOK,
        help="the RMA report of a GPU: identity, XID, ECC and row-remap history, last 24 h, lifecycle",
        description="Assemble what a vendor's RMA form asks for about one GPU from the history database: serial, "
        "part number (when the inventory has it), PCI bus id, VBIOS, driver, node, the XID history with the "
        "catalogue's meaning, ECC and row-remap history, temperature and power over the last 24 h, and the "
        "lifecycle history. Reads only; never changes the history.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    report = add_action(actions, parser, "report", help="write the RMA report of one GPU")
    report.add_argument("gpu", metavar="GPU-UUID")
    add_format(report, ("json", "pdf"), default=None)
    add_output(report, what="the report")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gpuops.core.jsontext import dumps
    from gpuops.core.lifecycle.rma import rma_report
    from gpuops.core.store.errors import StoreError
    from gpuops.core.store.paths import default_db_path

    try:
        report = rma_report(args.db or default_db_path(), args.gpu, now=time.time())
    except StoreError as exc:
        raise Failed(str(exc)) from None
    with output_file(args.output, force=args.force) as tmp:
        if args.format == "json":
            tmp.write_text(dumps(report, indent=2) + "\n", encoding="utf-8")
        else:
            tmp.write_bytes(_pdf(report))
    print(f"RMA report of {args.gpu} written to {destination(args.output)}", file=sys.stderr)
    return 0


def _pdf(report: dict) -> bytes:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no display needed, as export's pictures
    from gpuops.gui.app.launch import application
    from gpuops.gui.lifecycle.rma_pdf import rma_pdf
    from gpuops.gui.snapshot.render import quiet_platform_notices

    application()
    with quiet_platform_notices():
        return rma_pdf(report)

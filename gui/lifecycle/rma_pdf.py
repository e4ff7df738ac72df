"""The RMA report (core/lifecycle/rma.py) as a PDF, laid out like the snapshot report: identity,
lifecycle, XID and bus history, ECC and row-remap counters, and the last 24 hours as curves."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QRectF

from gpuops.core.timefmt import parse_iso_ms
from gpuops.gui.snapshot.pdf import _MM, _MUTED, _Block, _draw_chart, _font, _Report, write_pdf

NOT_REPORTED = "not reported"
_CURVES = (("temp_c", "Temperature", "°C"), ("power_w", "Power", "W"))


def _cell(value: Any) -> str:
    return NOT_REPORTED if value is None else str(value)


def _or_none(report: _Report, rows: list, what: str) -> bool:
    if not rows:
        report.text(f"No {what} recorded.", _font(9), _MUTED)
    return bool(rows)


def _identity(report: _Report, rma: dict[str, Any]) -> None:
    gpu = rma["gpu"]
    report.text(f"RMA report: {gpu['name'] or 'GPU'}", _font(16, bold=True))
    report.text(f"{gpu['uuid']} · generated {rma['generated_at']} · first seen {rma['first_seen'] or NOT_REPORTED}",
                _font(8.5), _MUTED)
    report.heading("GPU")
    report.table((("Field", 0.3), ("Value", 0.7)), [(key, _cell(value)) for key, value in gpu.items()])


def _lifecycle(report: _Report, rma: dict[str, Any]) -> None:
    life = rma["lifecycle"]
    report.heading(f"Lifecycle: {life['current']}" + (f" (ticket {life['ticket']})" if life["ticket"] else ""))
    rows = [(t["ts"], t["gpu_uuid"] and "GPU" or "node", f"{t['previous']} -> {t['state']}", t["user"], t["reason"],
             t["ticket"] or "") for t in life["history"]]
    if _or_none(report, rows, "lifecycle transitions"):
        report.table((("When", 0.24), ("Of", 0.06), ("Change", 0.2), ("By", 0.13), ("Why", 0.25), ("Ticket", 0.12)), rows)


def _xids(report: _Report, rma: dict[str, Any]) -> None:
    report.heading("XID history")
    rows = [(x["ts"], str(x["code"]), x["mnemonic"], x["description"], x["immediate_action"] or "")
            for x in rma["xid_history"]]
    if _or_none(report, rows, "XID errors"):
        report.table((("When", 0.24), ("XID", 0.05), ("Mnemonic", 0.24), ("Meaning", 0.32), ("Action", 0.15)), rows)
    report.heading("Fell off the bus")
    bus = [(b["ts"], b["event"]) for b in rma["bus_history"]]
    if _or_none(report, bus, "losses"):
        report.table((("When", 0.3), ("Event", 0.7)), bus)


def _counters(report: _Report, rma: dict[str, Any]) -> None:
    report.heading("ECC and row remapping")
    counters = rma["ecc_and_row_remap"]
    report.table(
        (("Counter", 0.4), ("Last value", 0.2), ("Changes", 0.15), ("Last change", 0.25)),
        [(name, _cell(c["last"]), str(max(len(c["changes"]) - 1, 0)), c["changes"][-1]["ts"] if c["changes"] else "")
         for name, c in counters.items()],
    )
    moves = [(c["ts"], name, _cell(c["value"])) for name, counter in counters.items() for c in counter["changes"][1:]]
    if moves:
        report.space(2)
        report.table((("When", 0.3), ("Counter", 0.45), ("New value", 0.25)), sorted(moves))


def _last_day(report: _Report, rma: dict[str, Any]) -> None:
    day = rma["last_24h"]
    report.heading(f"Last 24 hours ({day['start']} to {day['end']})")
    report.table(
        (("Reading", 0.4), ("Min", 0.2), ("Average", 0.2), ("Max", 0.2)),
        [(f"{title} ({unit})", *(_cell(None if day[key][s] is None else round(day[key][s], 1)) for s in ("min", "avg", "max")))
         for key, title, unit in _CURVES],
    )
    report.space(2)
    chart_h, gap = 48 * _MM, 4 * _MM

    def draw(painter, top: float, width: float) -> None:
        chart_w = (width - gap) / 2
        for k, (key, title, unit) in enumerate(_CURVES):
            points = day[key]["points"]
            ts = np.array([parse_iso_ms(p["ts"]) / 1000 for p in points], dtype=np.float64)
            values = np.array([np.nan if p["avg"] is None else p["avg"] for p in points], dtype=np.float64)
            _draw_chart(painter, QRectF(k * (chart_w + gap), top, chart_w, chart_h), ts, values, f"{title} ({unit})")

    report.blocks.append(_Block(chart_h, draw))


def rma_pdf(rma: dict[str, Any]) -> bytes:
    """The report as PDF bytes (needs a QApplication; renders offscreen)."""
    gpu = rma["gpu"]

    def build(report: _Report) -> None:
        for section in (_identity, _lifecycle, _xids, _counters, _last_day):
            section(report, rma)

    return write_pdf(f"gpuops RMA report {gpu['uuid']}", f"gpuops RMA report · {gpu['uuid']} · {rma['generated_at']}", build)

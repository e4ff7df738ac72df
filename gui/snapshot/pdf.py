"""The PDF report of a snapshot, drawn with Qt's own PDF writer (no extra dependency).

Sections: a header (local and UTC time, source, fleet figures), the fleet grid as an image, the
active alerts, allocations and usage per customer, and plots of selected GPUs. The report is
laid out as a list of blocks first, paginated, then drawn, so every page can say "page i of n";
tables continue across pages with their header repeated.

`checkpoint()` is called between sections and blocks: it raises ExportCancelled to stop, which
leaves no document behind (the bytes are only returned on success).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter, QPen, QPolygonF

from gpuops.core.alerts.model import Severity
from gpuops.core.condition import Condition
from gpuops.core.snapshot import PLOT_SERIES, GpuPlot, Snapshot, customers_now, health_counts
from gpuops.core.timefmt import local_time, utc_time
from gpuops.core.units import format_optional, format_power
from gpuops.gui.window.kpi_strip import fleet_kpis

RESOLUTION_DPI = 150
_MM = RESOLUTION_DPI / 25.4
_INK = QColor(20, 20, 20)
_MUTED = QColor(110, 110, 110)
_RULE = QColor(200, 200, 200)
_HEADER_FILL = QColor(235, 238, 242)
_LINE = QColor(33, 110, 180)
#: The conditions counted in the header, in the KPI strip's order.
_CONDITION_ORDER = tuple(c.label for c in (Condition.OK, Condition.WARNING, Condition.CRITICAL, Condition.LOST,
                                             Condition.STALE, Condition.UNKNOWN))
_SEVERITY_INK = {Severity.CRITICAL: QColor(170, 0, 60), Severity.WARNING: QColor(150, 90, 0), Severity.INFO: _INK}


class ExportCancelled(Exception):
    """The user cancelled an export; nothing was written."""


def _font(points: float, bold: bool = False) -> QFont:
    font = QFont()
    font.setPointSizeF(points)
    font.setBold(bold)
    return font


@dataclass
class _Block:
    """A piece of the report of fixed height; `draw(painter, top, width)` paints it."""

    height: float
    draw: Callable[[QPainter, float, float], None]
    repeat_header: _Block | None = None  # a table row: its header, repeated on a new page
    page_break_before: bool = False


class _Report:
    """Builds the blocks of one report on one PDF writer."""

    def __init__(self, writer: QPdfWriter, width: float) -> None:
        self.writer = writer
        self.width = width
        self.blocks: list[_Block] = []

    def metrics(self, font: QFont) -> QFontMetricsF:
        return QFontMetricsF(font, self.writer)

    def space(self, mm: float) -> None:
        self.blocks.append(_Block(mm * _MM, lambda p, top, width: None))

    def text(self, text: str, font: QFont, color: QColor = _INK) -> None:
        flags = int(Qt.TextFlag.TextWordWrap)
        height = self.metrics(font).boundingRect(QRectF(0, 0, self.width, 1e6), flags, text).height()

        def draw(painter: QPainter, top: float, width: float) -> None:
            painter.setFont(font)
            painter.setPen(color)
            painter.drawText(QRectF(0, top, width, height + 1), flags, text)

        self.blocks.append(_Block(height, draw))

    def heading(self, text: str) -> None:
        self.space(5)
        self.text(text, _font(13, bold=True))
        self.space(1.5)

    def image(self, image: QImage, max_height_mm: float = 150) -> None:
        if image.isNull() or image.width() == 0:
            self.text("(no image)", _font(9), _MUTED)
            return
        scale = min(self.width / image.width(), max_height_mm * _MM / image.height())
        w, h = image.width() * scale, image.height() * scale

        def draw(painter: QPainter, top: float, width: float) -> None:
            painter.drawImage(QRectF(0, top, w, h), image)
            painter.setPen(QPen(_RULE, 1))
            painter.drawRect(QRectF(0, top, w, h))

        self.blocks.append(_Block(h, draw))

    def table(
        self, columns: Sequence[tuple[str, float]], rows: Sequence[Sequence[str]], colors: Sequence[QColor] | None = None
    ) -> None:
        """Columns are (title, share of the width); long cells are elided."""
        font, bold = _font(8.5), _font(8.5, bold=True)
        row_h = self.metrics(font).height() * 1.5
        pad = 1.2 * _MM

        def cells(
            values: Sequence[str], cell_font: QFont, fill: QColor | None, ink: QColor
        ) -> Callable[[QPainter, float, float], None]:
            def draw(painter: QPainter, top: float, width: float) -> None:
                if fill is not None:
                    painter.fillRect(QRectF(0, top, width, row_h), fill)
                painter.setFont(cell_font)
                fm = QFontMetricsF(cell_font, painter.device())
                x = 0.0
                for (_, share), value in zip(columns, values, strict=True):
                    w = share * width
                    painter.setPen(ink)
                    text = fm.elidedText(value, Qt.TextElideMode.ElideRight, w - 2 * pad)
                    painter.drawText(QRectF(x + pad, top, w - 2 * pad, row_h), int(Qt.AlignmentFlag.AlignVCenter), text)
                    x += w
                painter.setPen(QPen(_RULE, 1))
                painter.drawLine(QPointF(0, top + row_h), QPointF(width, top + row_h))

            return draw

        header = _Block(row_h, cells([title for title, _ in columns], bold, _HEADER_FILL, _INK))
        self.blocks.append(header)
        for k, row in enumerate(rows):
            ink = colors[k] if colors is not None else _INK
            self.blocks.append(_Block(row_h, cells(row, font, None, ink), repeat_header=header))

    def charts(self, plot: GpuPlot) -> None:
        """The GPU's four series as a 2 x 2 block of line charts sharing the time span."""
        chart_h = 42 * _MM
        gap = 4 * _MM
        height = 2 * chart_h + gap

        def draw(painter: QPainter, top: float, width: float) -> None:
            chart_w = (width - gap) / 2
            for k, (name, title, unit) in enumerate(PLOT_SERIES):
                x = (k % 2) * (chart_w + gap)
                y = top + (k // 2) * (chart_h + gap)
                _draw_chart(painter, QRectF(x, y, chart_w, chart_h), plot.ts, plot.series[name], f"{title} ({unit})")

        self.blocks.append(_Block(height, draw))


def _draw_chart(painter: QPainter, rect: QRectF, ts: np.ndarray, values: np.ndarray, title: str) -> None:
    small = _font(7.5)
    fm = QFontMetricsF(small, painter.device())
    painter.setFont(_font(8.5, bold=True))
    painter.setPen(_INK)
    title_h = fm.height() * 1.6
    painter.drawText(QRectF(rect.left(), rect.top(), rect.width(), title_h), int(Qt.AlignmentFlag.AlignLeft), title)
    axis_w = fm.horizontalAdvance("00000.0") + 4
    area = QRectF(rect.left() + axis_w, rect.top() + title_h, rect.width() - axis_w, rect.height() - title_h - fm.height() * 1.4)
    painter.setPen(QPen(_RULE, 1))
    painter.drawRect(area)
    finite = np.isfinite(values)
    painter.setFont(small)
    painter.setPen(_MUTED)
    if not finite.any() or len(ts) < 1:
        painter.drawText(area, int(Qt.AlignmentFlag.AlignCenter), "no data")
        return
    low, high = float(values[finite].min()), float(values[finite].max())
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    t0, t1 = float(ts[0]), float(ts[-1])
    span = max(t1 - t0, 1e-9)
    for value, y in ((high, area.top()), (low, area.bottom() - fm.height())):
        painter.drawText(QRectF(rect.left(), y, axis_w - 4, fm.height()), int(Qt.AlignmentFlag.AlignRight), f"{value:.1f}")
    below = QRectF(area.left(), area.bottom() + 2, area.width(), fm.height())
    painter.drawText(below, int(Qt.AlignmentFlag.AlignLeft), local_time(t0, with_date=False, with_seconds=False))
    painter.drawText(below, int(Qt.AlignmentFlag.AlignRight), local_time(t1, with_date=False, with_seconds=False))
    xs = area.left() + (ts - t0) / span * area.width()
    ys = area.bottom() - (values - low) / (high - low) * area.height()
    pen = QPen(_LINE, 2)
    painter.setPen(pen)
    run: list[QPointF] = []
    for x, y, ok in zip(xs.tolist(), ys.tolist(), finite.tolist(), strict=True):
        if ok:
            run.append(QPointF(x, y))
        elif run:
            painter.drawPolyline(QPolygonF(run))
            run = []
    if len(run) == 1:
        painter.drawPoint(run[0])
    elif run:
        painter.drawPolyline(QPolygonF(run))


def _header(report: _Report, snapshot: Snapshot) -> None:
    local, utc = local_time(snapshot.collected_at, with_zone=True), utc_time(snapshot.collected_at)
    kpis = fleet_kpis(snapshot.sample, snapshot.condition)
    health = health_counts(snapshot)
    report.text("gpuops fleet snapshot", _font(18, bold=True))
    report.space(2)
    report.text(f"Taken {local}  ·  {utc}", _font(10))
    simulated = " (simulated fleet: generated readings, not hardware)" if snapshot.simulated else ""
    report.text(f"Source: {snapshot.source}{simulated}", _font(10))
    report.space(3)
    held = "not available" if snapshot.holders is None else f"{len(snapshot.holders):,}"
    figures = [
        ("GPUs", f"{kpis.total:,}"),
        (" / ".join(_CONDITION_ORDER), " / ".join(f"{health[label]:,}" for label in _CONDITION_ORDER)),
        ("mean utilization", format_optional(kpis.util_mean_pct, "{:.1f} %")),
        ("total power", format_power(kpis.power_total_w)),
        ("allocated", held),
        ("active alerts", "not available" if snapshot.alerts is None else f"{len(snapshot.alerts):,}"),
    ]
    report.table([("Fleet", 0.5), ("Now", 0.5)], [list(f) for f in figures])
    for line in (*snapshot.sample.errors, *snapshot.notes):
        report.text(f"Note: {line}", _font(8.5), _MUTED)


def _alerts(report: _Report, snapshot: Snapshot) -> None:
    report.heading("Active alerts")
    if snapshot.alerts is None:
        report.text("Alerts not available: " + _why_missing(snapshot, "alerts"), _font(10), _MUTED)
        return
    if not snapshot.alerts:
        report.text("No active alerts.", _font(10))
        return
    alerts = sorted(snapshot.alerts, key=lambda a: (-a.severity, a.started_at or a.pending_at))
    rows = [
        [
            a.severity.label, a.state.value, a.rule, a.gpu_uuid or a.node or a.key,
            local_time(a.started_at or a.pending_at, with_seconds=False), a.summary,
        ]
        for a in alerts
    ]
    columns = [("Severity", 0.09), ("State", 0.08), ("Rule", 0.17), ("Subject", 0.24), ("Since", 0.13), ("Summary", 0.29)]
    report.table(columns, rows, [_SEVERITY_INK[a.severity] for a in alerts])


def _why_missing(snapshot: Snapshot, what: str) -> str:
    for note in snapshot.notes:
        if what in note:
            return note.split(": ", 1)[-1]
    return "no history database"


def _customers(report: _Report, snapshot: Snapshot) -> None:
    report.heading("Allocations and usage by customer")
    rows = customers_now(snapshot)
    if rows is None:
        report.text("Allocations not available: " + _why_missing(snapshot, "allocations"), _font(10), _MUTED)
        return
    if not rows:
        report.text("No GPU is allocated to a customer now.", _font(10))
        return
    columns = [("Customer", 0.22), ("Contracts", 0.3), ("GPUs", 0.1), ("Busy", 0.1), ("Mean util.", 0.14), ("Power", 0.14)]
    report.table(columns, [
        [
            r.customer, ", ".join(r.contracts), f"{r.gpus:,}", f"{r.busy:,}", format_optional(r.util_mean_pct, "{:.1f} %"),
            format_power(r.power_w),
        ]
        for r in rows
    ])


def _plots(report: _Report, snapshot: Snapshot) -> None:
    report.heading("Selected GPUs")
    if not snapshot.plots:
        report.text("No history to plot (no recorded history for these GPUs).", _font(10), _MUTED)
        return
    positions = {gpu.uuid: i for i, gpu in enumerate(snapshot.sample.gpus)}
    condition = snapshot.condition
    for plot in snapshot.plots:
        i = positions.get(plot.uuid)
        if i is None:
            continue
        gpu = snapshot.sample.gpus[i]
        reason = snapshot.health.reasons[i]
        status = Condition(int(condition[i])).label + (f": {reason}" if reason else "")
        report.space(3)
        report.text(f"{gpu.node} · GPU {gpu.index} · {gpu.name}", _font(10, bold=True))
        report.text(f"{gpu.uuid} · health {status}", _font(8.5), _MUTED)
        report.space(1)
        report.charts(plot)


def _paginate(blocks: list[_Block], page_height: float) -> list[list[tuple[_Block, float]]]:
    pages: list[list[tuple[_Block, float]]] = [[]]
    y = 0.0
    for block in blocks:
        if block.page_break_before or (y + block.height > page_height and pages[-1]):
            pages.append([])
            y = 0.0
            if block.repeat_header is not None:
                pages[-1].append((block.repeat_header, y))
                y += block.repeat_header.height
        pages[-1].append((block, y))
        y += block.height
    return pages


def snapshot_pdf(snapshot: Snapshot, grid_image: QImage, checkpoint: Callable[[], None] = lambda: None) -> bytes:
    """The report as PDF bytes. `grid_image` is the fleet grid as drawn on screen."""
    utc = utc_time(snapshot.collected_at)

    def build(report: _Report) -> None:
        for section in (_header, lambda r, s: (r.heading("Fleet grid"), r.image(grid_image)), _alerts, _customers, _plots):
            checkpoint()
            section(report, snapshot)

    return write_pdf(f"gpuops fleet snapshot {utc}", f"gpuops snapshot · {utc}", build, checkpoint)


def write_pdf(
    title: str, footer: str, build: Callable[[_Report], None], checkpoint: Callable[[], None] = lambda: None
) -> bytes:
    """An A4 document of the blocks `build` adds to a report, paginated, each page with `footer`
    and "Page i of n", as PDF bytes (the snapshot report's and the RMA report's layout)."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setResolution(RESOLUTION_DPI)
    writer.setPageLayout(
        QPageLayout(
            QPageSize(QPageSize.PageSizeId.A4),
            QPageLayout.Orientation.Portrait,
            QMarginsF(14, 14, 14, 14),
            QPageLayout.Unit.Millimeter,
        )
    )
    writer.setTitle(title)
    writer.setCreator("gpuops")
    paint = writer.pageLayout().paintRectPixels(RESOLUTION_DPI)
    footer_h = 8 * _MM
    report = _Report(writer, paint.width())
    build(report)
    pages = _paginate(report.blocks, paint.height() - footer_h)

    painter = QPainter()
    if not painter.begin(writer):
        raise OSError("cannot start the PDF document")
    try:
        footer_font = _font(8)
        for number, page in enumerate(pages, start=1):
            checkpoint()
            if number > 1:
                writer.newPage()
            for block, y in page:
                block.draw(painter, y, paint.width())
            painter.setFont(footer_font)
            painter.setPen(_MUTED)
            footer_rect = QRectF(0, paint.height() - footer_h * 0.6, paint.width(), footer_h * 0.6)
            painter.drawText(footer_rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom), footer)
            painter.drawText(
                footer_rect, int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom), f"Page {number} of {len(pages)}"
            )
    finally:
        painter.end()
    data = QByteArray(buffer.data())
    buffer.close()
    return bytes(data.data())

"""The capacity planner: per GPU model, GPUs under contract over time against the healthy GPUs
of the fleet now, with the first date demand exceeds supply marked in red."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from gpuops.core.allocations.capacity import CapacitySeries
from gpuops.core.timefmt import format_ms
from gpuops.gui.customers.worker import CapacityResult

_DEMAND_PEN = pg.mkPen(QColor(0, 114, 178), width=2)
_SUPPLY_PEN = pg.mkPen(QColor(0, 158, 115), width=2, style=pg.QtCore.Qt.PenStyle.DashLine)
_SHORT_COLOR = QColor(213, 94, 0)


def shortfall_text(series: CapacitySeries) -> str:
    if series.first_shortfall_ms is None:
        return f"{series.model}: enough ({series.peak} contracted at most, {series.supply} healthy)"
    return (
        f"{series.model}: short from {format_ms(series.first_shortfall_ms)[:10]}"
        f" (peak {series.peak} contracted, {series.supply} healthy)"
    )


def step_points(ts_ms: np.ndarray, level: np.ndarray, end_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Corner points of the step function (x in seconds) drawn to `end_ms`."""
    edges = np.append(ts_ms, end_ms) / 1000.0
    return np.repeat(edges, 2)[1:-1], np.repeat(level, 2).astype(np.float64)


def shortfall_end_ms(series: CapacitySeries, end_ms: int) -> int:
    """When the first shortfall is over (demand back within supply), or `end_ms`."""
    over = series.contracted > series.supply
    first = int(np.argmax(over))
    back = np.flatnonzero(~over[first:])
    return int(series.ts_ms[first + back[0]]) if len(back) else end_ms


class CapacityView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("GPU model")
        self.summary = QLabel("No capacity plan read yet")
        self.summary.setWordWrap(True)
        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
        self.plot.setBackground(self.palette().color(self.backgroundRole()))
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("left", "GPUs")
        self.plot.addLegend(offset=(10, 10))
        self.demand = self.plot.plot(pen=_DEMAND_PEN, name="contracted")
        self.supply = self.plot.plot(pen=_SUPPLY_PEN, name="healthy in the fleet now")
        self.shortfall_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(_SHORT_COLOR, width=3))
        self.shortfall_region = pg.LinearRegionItem(brush=pg.mkBrush(213, 94, 0, 50), movable=False)
        for item in (self.shortfall_region, self.shortfall_line):
            item.setVisible(False)
            self.plot.addItem(item, ignoreBounds=True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Model"))
        top.addWidget(self.model_combo)
        top.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.plot, 1)
        self._result: CapacityResult | None = None
        self.model_combo.currentIndexChanged.connect(lambda _: self._draw())

    def show_plan(self, result: CapacityResult) -> None:
        self._result = result
        current = self.model_combo.currentText()
        models = [s.model for s in result.plan]
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItems(models)
        short = [s.model for s in result.plan if s.first_shortfall_ms is not None]
        chosen = current if current in models else (short[0] if short else (models[0] if models else ""))
        self.model_combo.setCurrentIndex(max(0, self.model_combo.findText(chosen)))
        self.model_combo.blockSignals(False)
        self.summary.setText("\n".join(shortfall_text(s) for s in result.plan) or "No contracts and no GPUs")
        self._draw()

    @property
    def series(self) -> CapacitySeries | None:
        if self._result is None:
            return None
        return next((s for s in self._result.plan if s.model == self.model_combo.currentText()), None)

    def _draw(self) -> None:
        series, result = self.series, self._result
        if series is None or result is None:
            return
        x, y = step_points(series.ts_ms, series.contracted, result.end_ms)
        self.demand.setData(x, y)
        self.supply.setData([result.start_ms / 1000, result.end_ms / 1000], [series.supply, series.supply])
        short = series.first_shortfall_ms
        for item in (self.shortfall_line, self.shortfall_region):
            item.setVisible(short is not None)
        if short is not None:
            self.shortfall_line.setPos(short / 1000)
            self.shortfall_region.setRegion((short / 1000, shortfall_end_ms(series, result.end_ms) / 1000))
            self.shortfall_line.setToolTip(f"First shortfall: {format_ms(short)}")
        self.plot.setXRange(result.start_ms / 1000, result.end_ms / 1000, padding=0.01)
        self.plot.setYRange(0, max(series.peak, series.supply, 1) * 1.15, padding=0)

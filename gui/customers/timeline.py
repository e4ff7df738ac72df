"""Each customer's contracts and allocations over time (a Gantt chart): one row per contract,
its dates as a pale bar, each group of GPUs allocated over the same dates as a solid bar in the
customer's colour, and a line at now."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from gpuops.gui.customers.worker import TimelineData
from gpuops.gui.grid.customer_colors import customer_color, customer_slots

#: Open-ended contracts and allocations are drawn this far past now.
OPEN_AHEAD_S = 365 * 86400.0
#: The view opens on this much past and future around now (pan to see more).
SHOWN_BEFORE_S = 120 * 86400.0
SHOWN_AFTER_S = 240 * 86400.0
_ROW_HEIGHT = 0.8


class AllocationTimeline(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel("No allocations read yet")
        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
        self.plot.setBackground(self.palette().color(self.backgroundRole()))
        self.plot.setMenuEnabled(False)
        self.plot.getViewBox().invertY(True)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.setToolTip(
            "Rows: contracts (pale: the contract's dates; solid: GPUs allocated, labelled with their count). Line: now."
        )
        self.now_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(QColor(176, 0, 32), width=2))
        self.plot.addItem(self.now_line, ignoreBounds=True)
        self._items: list = []
        self._labels: list[str] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.plot, 1)

    @property
    def rows(self) -> int:
        return len(self._labels)

    def show_timeline(self, data: TimelineData) -> None:
        for item in self._items:
            self.plot.removeItem(item)
        self._items = []
        now_s = data.now_ms / 1000
        far = now_s + OPEN_AHEAD_S
        names = {c.id: c.name for c in data.customers}
        contracts = sorted(data.contracts, key=lambda c: (names.get(c.customer_id, ""), c.start_ms, c.name))
        row_of = {c.id: row for row, c in enumerate(contracts)}
        customer_of = {c.id: names.get(c.customer_id, "") for c in contracts}
        held_now = Counter(customer_of[a.contract_id] for a in data.allocations if a.active_at(data.now_ms))
        slots = customer_slots(held_now.elements())
        groups = Counter((a.contract_id, a.start_ms, a.end_ms) for a in data.allocations)
        for row, c in enumerate(contracts):
            color = customer_color(slots, names.get(c.customer_id))
            pale = QColor(color)
            pale.setAlpha(70)
            end = far if c.end_ms is None else c.end_ms / 1000
            self._bar([c.start_ms / 1000], [end], [row], _ROW_HEIGHT, pale, color)
        for (contract_id, start_ms, end_ms), count in groups.items():
            row = row_of[contract_id]
            color = customer_color(slots, customer_of[contract_id])
            end = far if end_ms is None else end_ms / 1000
            self._bar([start_ms / 1000], [end], [row], _ROW_HEIGHT * 0.5, color, color)
            label = pg.TextItem(f"{count} GPU{'s' if count != 1 else ''}", color=(0, 0, 0), anchor=(0, 0.5))
            label.setPos(max(start_ms / 1000, now_s - SHOWN_BEFORE_S), row)
            self.plot.addItem(label, ignoreBounds=True)
            self._items.append(label)
        self._labels = [f"{names.get(c.customer_id, '?')} · {c.name}" for c in contracts]
        self.plot.getAxis("left").setTicks([[(row, text) for row, text in enumerate(self._labels)], []])
        self.now_line.setPos(now_s)
        self.plot.setXRange(now_s - SHOWN_BEFORE_S, now_s + SHOWN_AFTER_S, padding=0)
        self.plot.setYRange(-0.5, max(len(contracts), 1) - 0.5, padding=0.02)
        gpus = sum(groups.values())
        self.summary.setText(
            f"{len(contracts)} contracts, {len(data.customers)} customers, {gpus} allocations;"
            f" {sum(held_now.values())} GPUs held now"
        )

    def _bar(self, x0: list[float], x1: list[float], y: list[int], height: float, fill: QColor, edge: QColor) -> None:
        bars = pg.BarGraphItem(
            x0=np.array(x0), x1=np.array(x1), y=np.array(y, dtype=float), height=height, brush=fill, pen=pg.mkPen(edge)
        )
        self.plot.addItem(bars)
        self._items.append(bars)

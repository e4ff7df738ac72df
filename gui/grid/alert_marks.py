"""Alerting GPUs marked on the fleet grid: a triangle in the cell's top-right corner, in the
colour of the GPU's worst firing alert.

One path item per severity, rebuilt only when the marks or the layout change (not every poll),
and only over the alerting GPUs, so a fleet of 10,000 GPUs with a handful of alerts costs a
handful of triangles.
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtGui import QBrush, QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem

from gpuops.core.alerts.model import Severity
from gpuops.gui.alerts.model import SEVERITY_COLORS
from gpuops.gui.grid.layout import GridLayout
from gpuops.gui.live.fleet_index import FleetIndex

#: The triangle covers this fraction of the cell's width and height.
MARK_FRACTION = 0.45


class AlertMarks:
    def __init__(self, parent: QGraphicsItem) -> None:
        self.paths: dict[Severity, QGraphicsPathItem] = {}
        for z, severity in enumerate(sorted(Severity)):
            item = QGraphicsPathItem(parent)
            pen = QPen(QColor(0, 0, 0), 1)
            pen.setCosmetic(True)
            item.setPen(pen)
            item.setBrush(QBrush(SEVERITY_COLORS[severity]))
            item.setZValue(6 + z)  # above the selection veil, below the current GPU's outline
            self.paths[severity] = item
        self.marks: dict[str, Severity] = {}

    def set_marks(self, marks: Mapping[str, Severity]) -> bool:
        """True when the marks changed (the caller then places them)."""
        marks = dict(marks)
        if marks == self.marks:
            return False
        self.marks = marks
        return True

    def place(self, layout: GridLayout | None, index: FleetIndex | None) -> None:
        paths = {severity: QPainterPath() for severity in self.paths}
        if layout is not None and index is not None:
            for uuid, severity in self.marks.items():
                position = index.position(uuid)
                if position is None or layout.col[position] < 0:
                    continue  # not in this inventory, or filtered out
                x1, y = float(layout.col[position]) + 1.0, float(layout.row[position])
                path = paths[severity]
                path.moveTo(x1 - MARK_FRACTION, y)
                path.lineTo(x1, y)
                path.lineTo(x1, y + MARK_FRACTION)
                path.closeSubpath()
        for severity, item in self.paths.items():
            item.setPath(paths[severity])

    def count(self, severity: Severity) -> int:
        """How many GPUs carry a mark of this severity now (for tests and the legend)."""
        return sum(1 for s in self.marks.values() if s is severity)

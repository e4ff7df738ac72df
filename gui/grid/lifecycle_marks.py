"""GPUs out of production hatched on the fleet grid: three diagonal strokes across the cell, so a
draining, burned-in or repaired node stands out whatever the colour says (the tooltip says which
state and why).

One path item, rebuilt only when the set of GPUs or the layout changes, over those GPUs only.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem

from gpuops.gui.grid.layout import GridLayout
from gpuops.gui.live.fleet_index import FleetIndex

#: Where the strokes cross a cell's edges, as fractions of the cell (one corner to corner, two beside it).
_STROKES = ((0.0, 0.5, 0.5, 0.0), (0.0, 1.0, 1.0, 0.0), (0.5, 1.0, 1.0, 0.5))


class LifecycleHatch:
    def __init__(self, parent: QGraphicsItem) -> None:
        self.item = QGraphicsPathItem(parent)
        pen = QPen(QColor(15, 15, 15, 200), 2)
        pen.setCosmetic(True)
        self.item.setPen(pen)
        self.item.setZValue(5.5)  # over the cells and the selection veil, under the alert marks
        self.uuids: frozenset[str] = frozenset()
        self.placed = 0  # GPUs hatched in the current layout (for tests)

    def set_uuids(self, uuids: Iterable[str]) -> bool:
        """True when the hatched GPUs changed (the caller then places them)."""
        uuids = frozenset(uuids)
        if uuids == self.uuids:
            return False
        self.uuids = uuids
        return True

    def place(self, layout: GridLayout | None, index: FleetIndex | None) -> None:
        path = QPainterPath()
        self.placed = 0
        if layout is not None and index is not None:
            for uuid in self.uuids:
                position = index.position(uuid)
                if position is None or layout.col[position] < 0:
                    continue  # not in this inventory, or filtered out
                x, y = float(layout.col[position]), float(layout.row[position])
                self.placed += 1
                for x0, y0, x1, y1 in _STROKES:
                    path.moveTo(x + x0, y + y0)
                    path.lineTo(x + x1, y + y1)
        self.item.setPath(path)

"""Alerting GPUs marked on the fleet grid, in the cell's top-right corner, by the shape and colour
of the GPU's worst firing alert: critical a triangle (as the zoomed-out urgent marks), warning a
round dot, info a small square, so that severity reads without telling colours apart.

When the grid shows node cells (zoomed far out), one mark per node, of its worst GPU's severity,
at the node block's right end, instead of one per GPU. One path item per severity, rebuilt only
when the marks, the layout or the cell mode change (not every poll), and only over the alerting
GPUs, so a fleet of 10,000 GPUs with a handful of alerts costs a handful of shapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QBrush, QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem

from gpuops.core.alerts.model import Alert, AlertState, Severity
from gpuops.gui.alerts.model import SEVERITY_COLORS
from gpuops.gui.grid.layout import GridLayout
from gpuops.gui.live.fleet_index import FleetIndex

#: The critical triangle covers this fraction of the cell's width and height.
MARK_FRACTION = 0.45
#: The warning dot's diameter and the info square's side, as fractions of the cell.
DOT_FRACTION = 0.34
SQUARE_FRACTION = 0.26
_INSET = 0.04  # dot and square keep off the cell's edge
#: The shape drawn for each severity (tests and the legend read it).
SHAPES = {Severity.CRITICAL: "triangle", Severity.WARNING: "dot", Severity.INFO: "square"}


def marks_of(alerts: Iterable[Alert]) -> dict[str, Severity]:
    """GPU uuid -> worst severity among its firing alerts that want attention (not muted)."""
    marks: dict[str, Severity] = {}
    for alert in alerts:
        uuid = alert.gpu_uuid
        if uuid is not None and alert.state is AlertState.FIRING and not alert.muted:
            marks[uuid] = max(marks.get(uuid, alert.severity), alert.severity)
    return marks


def _add_shape(path: QPainterPath, severity: Severity, x1: float, y: float) -> None:
    """The severity's shape in the corner whose top-right point is (x1, y)."""
    if severity is Severity.CRITICAL:
        path.moveTo(x1 - MARK_FRACTION, y)
        path.lineTo(x1, y)
        path.lineTo(x1, y + MARK_FRACTION)
        path.closeSubpath()
    elif severity is Severity.WARNING:
        path.addEllipse(QRectF(x1 - _INSET - DOT_FRACTION, y + _INSET, DOT_FRACTION, DOT_FRACTION))
    else:
        path.addRect(QRectF(x1 - _INSET - SQUARE_FRACTION, y + _INSET, SQUARE_FRACTION, SQUARE_FRACTION))


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
        self.marks: dict[str, Severity] = {}  # what is drawn: the live marks, or a replayed instant's
        self._live: dict[str, Severity] = {}
        self._replaying = False
        self._placed_on: tuple[GridLayout | None, FleetIndex | None] = (None, None)
        self.node_cells = False
        #: How many shapes of each severity are drawn now (one per node in node cells).
        self.drawn: dict[Severity, int] = dict.fromkeys(Severity, 0)

    def set_marks(self, marks: Mapping[str, Severity]) -> bool:
        """The live marks; True when the drawn marks changed (the caller then places them). While
        a past instant is replayed they are kept for the return to live, not drawn."""
        self._live = dict(marks)
        if self._replaying or self._live == self.marks:
            return False
        self.marks = self._live
        return True

    def show_replay(self, marks: Mapping[str, Severity] | None) -> None:
        """Draw the marks as they stood at a replayed instant; None: the live ones again."""
        self._replaying = marks is not None
        self.marks = self._live if marks is None else dict(marks)
        self.place(*self._placed_on)

    def place(self, layout: GridLayout | None, index: FleetIndex | None, node_cells: bool | None = None) -> None:
        """Draw the marks on `layout`: per GPU, or per node block when `node_cells` (None: as before)."""
        if node_cells is not None:
            self.node_cells = node_cells
        self._placed_on = (layout, index)
        paths = {severity: QPainterPath() for severity in self.paths}
        drawn = dict.fromkeys(Severity, 0)
        if layout is not None and index is not None:
            worst: dict[int, Severity] = {}  # key (a GPU, or a node block) -> its worst severity
            for uuid, severity in self.marks.items():
                position = index.position(uuid)
                if position is None or layout.col[position] < 0:
                    continue  # not in this inventory, or filtered out
                key = int(layout.chunk_of[position]) if self.node_cells else position
                worst[key] = max(worst.get(key, severity), severity)
            corners = [(severity, key) for key, severity in worst.items()]
            if self.node_cells:  # a node's mark sits at its block's right end, whichever GPU alerts
                placed = layout.placed
                by_col = placed[np.argsort(layout.col[placed], kind="stable")]
                right_end = np.full(layout.arrangement.n_chunks, -1, dtype=np.int64)
                right_end[layout.chunk_of[by_col]] = by_col  # the last write, the rightmost GPU, wins
                corners = [(severity, int(right_end[key])) for severity, key in corners]
            for severity, at in corners:
                _add_shape(paths[severity], severity, float(layout.col[at]) + 1.0, float(layout.row[at]))
                drawn[severity] += 1
        for severity, item in self.paths.items():
            item.setPath(paths[severity])
        self.drawn = drawn

    def count(self, severity: Severity) -> int:
        """How many GPUs carry a mark of this severity now (for tests and the legend)."""
        return sum(1 for s in self.marks.values() if s is severity)

"""Node names on the node blocks themselves, where the grid tiles several blocks per row.

The left axis can name only the first node of each grid row; the other columns' nodes were
named by their tooltips alone. Once zoomed in far enough for a name to fit, every visible block
carries its node's name in its top-left corner, painted at screen size (not scaled with the
cells) on a veil so that it reads over any colour. Only the blocks in view are drawn, so a
10,000-GPU grid costs a handful of labels per frame.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QTransform
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from gpuops.gui.grid.layout import GridLayout

#: A block gets its name once it is this many pixels wide and its row this many pixels tall.
MIN_BLOCK_WIDTH_PX = 48.0
MIN_ROW_HEIGHT_PX = 14.0
_VEIL = QColor(0, 0, 0, 150)
_INK = QColor(255, 255, 255)


class BlockLabels(pg.GraphicsObject):
    """Child of the grid image (one unit = one cell). `set_layout` after every new layout."""

    def __init__(self, parent: QGraphicsItem) -> None:
        super().__init__(parent)
        self.setZValue(5)  # over the cells, under the marks and the selection
        self._font = QFont()
        self._font.setPointSizeF(max(6.5, self._font.pointSizeF() * 0.8))
        self._metrics = QFontMetrics(self._font)
        self._x = np.zeros(0)
        self._y = np.zeros(0)
        self._w = np.zeros(0)
        self._names: tuple[str, ...] = ()
        self._bounds = QRectF()
        self.drawn: tuple[str, ...] = ()  # the names painted last (for tests)

    def set_layout(self, layout: GridLayout | None) -> None:
        self.prepareGeometryChange()
        if layout is None or layout.blocks_per_row <= 1:  # one node per row: the axis names them all
            self._x = self._y = self._w = np.zeros(0)
            self._names = ()
            self._bounds = QRectF()
        else:
            arrangement = layout.arrangement
            self._x = (layout.chunk_col * (layout.block_width + 1)).astype(np.float64)
            self._y = layout.chunk_row.astype(np.float64)
            self._w = np.diff(arrangement.starts).astype(np.float64)
            self._names = tuple(arrangement.chunk_labels)
            self._bounds = QRectF(0, 0, layout.width, layout.height)
        self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        self.drawn = ()
        if not self._names:
            return
        to_screen = painter.transform()
        cell_w, cell_h = abs(to_screen.m11()), abs(to_screen.m22())
        if cell_h < MIN_ROW_HEIGHT_PX:
            return
        view = self.getViewBox()
        seen = self.mapRectFromView(view.viewRect()) if view is not None else self._bounds
        shown = np.flatnonzero(
            (self._w * cell_w >= MIN_BLOCK_WIDTH_PX)
            & (self._x + self._w >= seen.left()) & (self._x <= seen.right())
            & (self._y + 1 >= seen.top()) & (self._y <= seen.bottom())
        )
        painter.save()
        painter.setTransform(QTransform())
        painter.setFont(self._font)
        height = self._metrics.height()
        drawn = []
        for k in shown.tolist():
            left = max(self._x[k], seen.left())  # a block scrolled half out keeps its name in view
            visible_w = (self._x[k] + self._w[k] - left) * cell_w
            if visible_w < MIN_BLOCK_WIDTH_PX:
                continue
            corner = to_screen.map(QPointF(left, max(self._y[k], seen.top())))
            width = visible_w - 4
            text = self._metrics.elidedText(self._names[k], Qt.TextElideMode.ElideRight, int(width))
            box = QRectF(corner.x() + 1, corner.y() + 1, self._metrics.horizontalAdvance(text) + 4, height)
            painter.fillRect(box, _VEIL)
            painter.setPen(_INK)
            painter.drawText(box.adjusted(2, 0, 0, 0), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
            drawn.append(self._names[k])
        painter.restore()
        self.drawn = tuple(drawn)

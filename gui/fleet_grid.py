"""The fleet at a glance: one coloured cell per GPU, grouped by node.

The whole grid is one uint8 image drawn through a fixed 256-entry lookup table (see
`gui.palette`), so a repaint costs about the same for 8 GPUs or 10,000. Hover and click map the
mouse position to a cell index; there is no item per cell.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QComboBox, QGraphicsPathItem, QGraphicsRectItem, QHBoxLayout, QLabel, QToolTip, QVBoxLayout, QWidget

from core.telemetry import FleetSample, GpuState
from gui import palette
from gui.color_legend import ColorLegend
from gui.fleet_index import FleetIndex
from gui.gpu_text import gpu_tooltip
from gui.grid_layout import GridLayout
from gui.grid_metrics import GRID_METRICS, GridMetric, grid_metric

#: Above this many grid rows the left axis labels only every few rows (then hover tells).
_LABELLED_ROWS_MAX = 24
#: The X over a lost GPU stays this far (in cells) from the cell's edges.
_MARKER_INSET = 0.2


class _GridImage(pg.ImageItem):
    """The grid image, reporting hover and left clicks as cell coordinates."""

    def __init__(self, grid: "FleetGrid") -> None:
        super().__init__(axisOrder="row-major")
        self._grid = grid

    def hoverEvent(self, event) -> None:  # noqa: ANN001 - pyqtgraph HoverEvent
        if event.isExit():
            self._grid._hover(None, QPoint())
            return
        pos = event.pos()
        self._grid._hover((int(np.floor(pos.x())), int(np.floor(pos.y()))), event.screenPos().toPoint())

    def mouseClickEvent(self, event) -> None:  # noqa: ANN001 - pyqtgraph MouseClickEvent
        if event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.pos()
        if self._grid._click(int(np.floor(pos.x())), int(np.floor(pos.y()))):
            event.accept()


class FleetGrid(QWidget):
    """Metric chooser, colour legend and the grid view."""

    #: UUID of the GPU the user clicked.
    gpuSelected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.metric_combo = QComboBox()
        for metric in GRID_METRICS:
            self.metric_combo.addItem(metric.label, metric.key)
        self.metric_combo.setToolTip("What the cell colours show")
        self.legend = ColorLegend()
        top = QHBoxLayout()
        top.addWidget(QLabel("Colour by"))
        top.addWidget(self.metric_combo)
        top.addSpacing(12)
        top.addWidget(self.legend)
        top.addStretch(1)

        self.view = pg.PlotWidget()
        self.view.setBackground(self.palette().color(self.backgroundRole()))
        plot = self.view.getPlotItem()
        plot.hideAxis("bottom")
        plot.setMenuEnabled(False)
        plot.hideButtons()
        self._viewbox = plot.getViewBox()
        self._viewbox.setMouseEnabled(x=False, y=False)
        self._viewbox.invertY(True)
        self._viewbox.setDefaultPadding(0.0)
        self._axis = plot.getAxis("left")
        self.image = _GridImage(self)
        plot.addItem(self.image)
        self._lost_markers = QGraphicsPathItem(self.image)
        marker_pen = QPen(QColor(255, 255, 255), 3)
        marker_pen.setCosmetic(True)
        self._lost_markers.setPen(marker_pen)
        self._selection = self._selection_outline()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)

        self._fresh_lut = palette.build_lut(all_stale=False)
        self._stale_lut = palette.build_lut(all_stale=True)
        self._stale = False
        self._metric: GridMetric = GRID_METRICS[0]
        self._index: FleetIndex | None = None
        self._layout: GridLayout | None = None
        self._pixels = np.zeros((1, 1), dtype=np.uint8)
        self._sample: FleetSample | None = None
        self._lost_positions = np.zeros(0, dtype=np.int64)
        self._selected: int | None = None
        self._hovered: int | None = None
        self._tooltip_anchor = QPoint()
        self.image.setLookupTable(self._fresh_lut)
        self.legend.set_metric(self._metric)
        self.metric_combo.currentIndexChanged.connect(self._metric_chosen)

    def _selection_outline(self) -> tuple[QGraphicsRectItem, QGraphicsRectItem]:
        """A black and a white outline: visible on every colour of the map."""
        outlines = []
        for color, width in ((QColor(0, 0, 0), 4), (QColor(255, 255, 255), 2)):
            item = QGraphicsRectItem(self.image)
            pen = QPen(color, width)
            pen.setCosmetic(True)
            item.setPen(pen)
            item.setVisible(False)
            outlines.append(item)
        return outlines[0], outlines[1]

    # --- state -----------------------------------------------------------------------------

    @property
    def metric(self) -> GridMetric:
        return self._metric

    @property
    def stale(self) -> bool:
        return self._stale

    @property
    def layout_info(self) -> GridLayout | None:
        return self._layout

    def set_metric(self, key: str) -> None:
        """Colour by the metric named `key` (see `gui.grid_metrics.GRID_METRICS`)."""
        self.metric_combo.setCurrentIndex(self.metric_combo.findData(grid_metric(key).key))

    def _metric_chosen(self, combo_index: int) -> None:
        self._metric = grid_metric(self.metric_combo.itemData(combo_index))
        self.legend.set_metric(self._metric)
        if self._sample is not None:
            self._draw()

    def set_stale(self, stale: bool) -> None:
        """Grey the whole grid out (the source is not answering) or show it fresh again."""
        if stale != self._stale:
            self._stale = stale
            self.image.setLookupTable(self._stale_lut if stale else self._fresh_lut)

    def show_sample(self, sample: FleetSample, index: FleetIndex) -> None:
        """Draw a poll; `index` describes `sample.gpus` (the layout follows it when it changes)."""
        if index is not self._index:
            self._set_fleet(index)
        self._sample = sample
        self._draw()

    def _set_fleet(self, index: FleetIndex) -> None:
        selected_uuid = self.selected_uuid
        self._index = index
        self._layout = layout = GridLayout(index)
        self._pixels = np.full((layout.height, layout.width), palette.GAP, dtype=np.uint8)
        self._lost_positions = np.zeros(0, dtype=np.int64)
        self._lost_markers.setPath(QPainterPath())
        self._viewbox.setRange(QRectF(0, 0, layout.width, layout.height), padding=0)
        self._label_rows(layout)
        self._selected = None if selected_uuid is None else index.position(selected_uuid)
        self._place_selection()

    def _label_rows(self, layout: GridLayout) -> None:
        """Node names on the left axis; for tall grids every few rows always, the rest if room."""
        step = max(1, -(-layout.height // _LABELLED_ROWS_MAX))
        major = [(r + 0.5, layout.row_labels[r]) for r in range(0, layout.height, step)]
        minor = [(r + 0.5, layout.row_labels[r]) for r in range(layout.height) if r % step]
        self._axis.setTicks([major, minor])
        longest = max((self.fontMetrics().horizontalAdvance(label) for label in layout.row_labels), default=0)
        self._axis.setWidth(longest + 16)

    def _draw(self) -> None:
        sample, index, layout = self._sample, self._index, self._layout
        assert sample is not None and index is not None and layout is not None
        state = sample.state
        codes = palette.encode(
            self._metric.values(sample, index),
            self._metric.low,
            self._metric.high,
            lost=state == GpuState.LOST,
            no_data=state == GpuState.UNKNOWN,
            stale=index.stale_mask(sample.stale_nodes),
        )
        self._pixels.ravel()[layout.flat] = codes
        self.image.setImage(self._pixels, autoLevels=False, levels=(0, 255))
        self._mark_lost(np.flatnonzero(state == GpuState.LOST))
        if self._hovered is not None and QToolTip.isVisible():
            QToolTip.showText(self._tooltip_anchor, self.tooltip_text(self._hovered), self.view)

    def _mark_lost(self, positions: np.ndarray) -> None:
        """An X over each lost GPU, so "lost" never depends on seeing colour alone."""
        if np.array_equal(positions, self._lost_positions):
            return
        self._lost_positions = positions
        layout = self._layout
        assert layout is not None
        path = QPainterPath()
        for col, row in zip(layout.col[positions].tolist(), layout.row[positions].tolist()):
            for y0, y1 in ((_MARKER_INSET, 1 - _MARKER_INSET), (1 - _MARKER_INSET, _MARKER_INSET)):
                path.moveTo(col + _MARKER_INSET, row + y0)
                path.lineTo(col + 1 - _MARKER_INSET, row + y1)
        self._lost_markers.setPath(path)

    # --- hover and selection -----------------------------------------------------------------

    def gpu_at(self, col: int, row: int) -> int | None:
        """Sample position of the GPU drawn in cell (col, row), if any."""
        return None if self._layout is None else self._layout.gpu_at(col, row)

    def cell_rect(self, position: int) -> QRect:
        """Where GPU `position`'s cell is drawn, in `view.viewport()` coordinates (once the
        view has processed its layout: after the event loop ran)."""
        layout = self._layout
        assert layout is not None
        col, row = float(layout.col[position]), float(layout.row[position])
        corners = [self.view.mapFromScene(self.image.mapToScene(QPointF(col + d, row + d))) for d in (0.0, 1.0)]
        return QRect(corners[0], corners[1] - QPoint(1, 1))

    def tooltip_text(self, position: int) -> str:
        assert self._sample is not None
        return gpu_tooltip(self._sample, position, stale=self._stale)

    def _hover(self, cell: tuple[int, int] | None, screen_pos: QPoint) -> None:
        position = None if cell is None or self._sample is None else self.gpu_at(*cell)
        self._tooltip_anchor = screen_pos
        if position == self._hovered and QToolTip.isVisible():
            return
        self._hovered = position
        if position is None:
            QToolTip.hideText()
        else:
            QToolTip.showText(screen_pos, self.tooltip_text(position), self.view)

    def _click(self, col: int, row: int) -> bool:
        position = self.gpu_at(col, row)
        if position is None or self._index is None:
            return False
        self.select(self._index.uuids[position])
        self.gpuSelected.emit(self._index.uuids[position])
        return True

    @property
    def selected_uuid(self) -> str | None:
        if self._selected is None or self._index is None:
            return None
        return self._index.uuids[self._selected]

    def select(self, uuid: str | None) -> None:
        """Outline the GPU with this UUID (None clears the outline)."""
        self._selected = None if uuid is None or self._index is None else self._index.position(uuid)
        self._place_selection()

    def _place_selection(self) -> None:
        for outline in self._selection:
            if self._selected is None or self._layout is None:
                outline.setVisible(False)
                continue
            col, row = self._layout.col[self._selected], self._layout.row[self._selected]
            outline.setRect(QRectF(float(col), float(row), 1.0, 1.0))
            outline.setVisible(True)

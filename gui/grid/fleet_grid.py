"""The fleet at a glance: one coloured cell per GPU, grouped, sorted and filtered as asked.

The whole grid is one uint8 image drawn through a fixed 256-entry lookup table (see
`gui.palette`), so a repaint costs about the same for 8 GPUs or 10,000. Hover and click map the
mouse position to a cell index; there is no item per cell.

Zoom with the mouse wheel or +/- (0 fits the whole fleet); pan by dragging with the middle or
right button. When cells get smaller than a few pixels the grid draws one colour per node block
(its worst health, or its mean value), so 10,000 GPUs stay readable. Selection is a set of UUIDs:
click selects one, Ctrl+click toggles, Shift+click selects a run in drawing order, dragging with
the left button selects a rectangle (Ctrl adds to the selection); arrows move, Esc clears.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QKeyEvent, QPainterPath, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from gpuops.core.alerts.model import Severity
from gpuops.core.condition import Condition, conditions
from gpuops.core.health import FleetHealth
from gpuops.core.lifecycle.book import Transition
from gpuops.core.lifecycle.states import DEFAULT_STATE
from gpuops.core.telemetry import FleetSample, GpuState
from gpuops.core.timefmt import format_ms
from gpuops.core.units import DEFAULT_UNITS, DisplayUnits
from gpuops.gui.common import palette
from gpuops.gui.gpu.text import gpu_tooltip
from gpuops.gui.grid.alert_marks import AlertMarks
from gpuops.gui.grid.arrangement import GROUP_BY, SORT_BY, Arrangement, FilterError, FleetFacts, GridSettings, arrange
from gpuops.gui.grid.block_labels import BlockLabels
from gpuops.gui.grid.color_legend import ColorLegend
from gpuops.gui.grid.customer_colors import CUSTOMER_KEY, encode_customers, legend_swatches
from gpuops.gui.grid.layout import GridLayout
from gpuops.gui.grid.lifecycle_marks import LifecycleHatch
from gpuops.gui.grid.metrics import GRID_METRICS, GridMetric, grid_metric
from gpuops.gui.grid.row_axis import RowAxis
from gpuops.gui.live.fleet_index import FleetIndex

#: Above this many grid rows the left axis labels only every few rows (then hover tells).
_LABELLED_ROWS_MAX = 24
#: The X over a lost GPU stays this far (in cells) from the cell's edges.
_MARKER_INSET = 0.2
#: Colour-by key for health (the other keys are `grid_metrics` keys).
HEALTH_KEY = "health"
#: Cell modes: one cell per GPU, one colour per node block, or chosen by zoom.
CELL_MODES: dict[str, str] = {"auto": "Auto", "gpu": "Per GPU", "node": "Per node"}
#: In auto mode, node blocks are drawn when a GPU cell is narrower than this many pixels.
NODE_CELLS_BELOW_PX = 4.0
#: The keys the grid answers while it has the focus, as Help lists them (see `_key`).
GRID_KEYS: tuple[tuple[str, str], ...] = (
    ("Arrow keys", "move to the next GPU; with Shift, choose the GPUs on the way"),
    ("+ / -", "zoom in / out"),
    ("0 or Home", "zoom out to the whole fleet"),
)
#: Lost and critical GPUs keep a mark at least this many pixels wide when zoomed out...
MIN_URGENT_MARK_PX = 9
#: ... shown while cells are smaller than this (above it, the cell's own marks are plain to see).
URGENT_MARKS_BELOW_PX = 14.0
_LOST_MARK_BRUSH = pg.mkBrush(palette.LOST_RGB)
_CRITICAL_MARK_BRUSH = pg.mkBrush(palette.HEALTH_RGB[palette.HEALTH_CRITICAL])
_URGENT_MARK_PEN = pg.mkPen((30, 30, 30), width=1)
#: Jumping to a GPU zooms so that about this many node blocks fit across.
_JUMP_BLOCKS = 6

_ERROR_STYLE = "color: #b00020;"
_REPLAY_STYLE = "border: 3px solid #e69f00;"


class _GridImage(pg.ImageItem):
    """The grid image, reporting hover and left clicks as cell coordinates."""

    def __init__(self, grid: FleetGrid) -> None:
        super().__init__(axisOrder="row-major")
        self._grid = grid

    def hoverEvent(self, event) -> None:
        if event.isExit():
            self._grid._hover(None, QPoint())
            return
        pos = event.pos()
        self._grid._hover((int(np.floor(pos.x())), int(np.floor(pos.y()))), event.screenPos().toPoint())

    def mouseClickEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.pos()
        if self._grid._click(int(np.floor(pos.x())), int(np.floor(pos.y())), event.modifiers()):
            event.accept()


class _GridViewBox(pg.ViewBox):
    """Wheel zooms; a left drag draws a selection rectangle; other drags pan."""

    def __init__(self, grid: FleetGrid) -> None:
        super().__init__(invertY=True, defaultPadding=0.0, enableMenu=False)
        self._grid = grid
        self.band = QGraphicsRectItem()
        pen = QPen(QColor(255, 255, 255), 1.5, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.band.setPen(pen)
        self.band.setBrush(QBrush(QColor(255, 255, 255, 50)))
        self.band.setZValue(20)
        self.band.setVisible(False)
        self.addItem(self.band, ignoreBounds=True)

    def mouseDragEvent(self, ev, axis=None) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            if ev.button() == Qt.MouseButton.RightButton:  # pan, as the middle button does
                ev.accept()
                delta = self.mapSceneToView(ev.lastScenePos()) - self.mapSceneToView(ev.scenePos())
                self.translateBy(x=delta.x(), y=delta.y())
                return
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        start = self.mapSceneToView(ev.buttonDownScenePos())
        now = self.mapSceneToView(ev.scenePos())
        if ev.isFinish():
            self.band.setVisible(False)
            self._grid._band_select(start, now, ev.modifiers())
        else:
            self.band.setRect(QRectF(start, now).normalized())
            self.band.setVisible(True)


def _combo(items: Mapping[str, str], tooltip: str) -> QComboBox:
    combo = QComboBox()
    for key, label in items.items():
        combo.addItem(label, key)
    combo.setToolTip(tooltip)
    return combo


class FleetGrid(QWidget):
    """Controls (colour, palette, grouping, sorting, cells, filter, find), legend and the view."""

    #: UUID of the GPU the user chose (click, keyboard or search): the detail view shows it.
    gpuSelected = Signal(str)
    #: frozenset of the selected UUIDs, after every change.
    selectionChanged = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.metric_combo = _combo(
            {m.key: m.label for m in GRID_METRICS} | {HEALTH_KEY: "Health", CUSTOMER_KEY: "Customer"},
            "What the cell colours show",
        )
        self.palette_combo = _combo(
            {name: name for name in palette.COLOR_MAPS}, "Colour map for values: both are colour-blind safe"
        )
        self.group_combo = _combo(GROUP_BY, "Group the grid: each group starts a new row under its label")
        self.sort_combo = _combo(
            SORT_BY, "Order of nodes inside each group (sorting by value uses the values when chosen; F5 re-sorts)"
        )
        self.cells_combo = _combo(
            CELL_MODES, f"One cell per GPU, one per node, or per node when cells get smaller than {NODE_CELLS_BELOW_PX:g} px"
        )
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter: words, or key:value (health:critical site:ams -model:a100)")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setToolTip(
            "Show only matching GPUs. Bare words match node, model, site, rack, UUID, serial or customer; "
            "key:value matches one field (site, rack, node, model, uuid, serial, pci, state, health, customer); "
            "a leading - excludes."
        )
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Find UUID, serial, host, PCI id (Ctrl+F)")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setToolTip(
            "Enter jumps to the GPU: selects it and zooms the grid to it. host/PCI id narrows to one node."
        )
        self.message = QLabel()
        self.message.setToolTip("What the grid shows, or why a filter or search did not work")
        self.legend = ColorLegend()

        top = QHBoxLayout()
        self._colour_controls: list[QWidget] = []
        for label, widget in (("Colour by", self.metric_combo), ("Map", self.palette_combo)):
            self._colour_controls += [QLabel(label), widget]
            top.addWidget(self._colour_controls[-2])
            top.addWidget(widget)
        top.addSpacing(12)
        top.addWidget(self.legend)
        top.addStretch(1)
        #: Grouping, sorting, cells, filter and find: one row, hidden on a wallboard.
        self.controls = QWidget()
        second = QHBoxLayout(self.controls)
        second.setContentsMargins(0, 0, 0, 0)
        for label, widget in (("Group", self.group_combo), ("Sort", self.sort_combo), ("Cells", self.cells_combo)):
            second.addWidget(QLabel(label))
            second.addWidget(widget)
        second.addWidget(self.filter_edit, 2)
        second.addWidget(self.search_edit, 1)

        self._viewbox = _GridViewBox(self)
        self.view = pg.PlotWidget(viewBox=self._viewbox, axisItems={"left": RowAxis()})
        self.view.setBackground(self.palette().color(self.backgroundRole()))
        self.view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.view.setToolTip("")
        plot = self.view.getPlotItem()
        plot.hideAxis("bottom")
        plot.setMenuEnabled(False)
        plot.hideButtons()
        self._axis: RowAxis = plot.getAxis("left")
        self.image = _GridImage(self)
        plot.addItem(self.image)
        self._lost_markers = QGraphicsPathItem(self.image)
        marker_pen = QPen(QColor(255, 255, 255), 3)
        marker_pen.setCosmetic(True)
        self._lost_markers.setPen(marker_pen)
        self._selected_cells = self._selection_paths()
        self._selection = self._selection_outline()
        self.alert_marks = AlertMarks(self.image)
        self.block_labels = BlockLabels(self.image)
        self.lifecycle_marks = LifecycleHatch(self.image)
        #: Lost and critical GPUs, drawn at least MIN_URGENT_MARK_PX wide whatever the zoom, so
        #: that a zoomed-out 10,000-GPU grid never hides them in 2-px cells.
        self.urgent_marks = pg.ScatterPlotItem(pxMode=True, size=MIN_URGENT_MARK_PX, hoverable=False)
        self.urgent_marks.setZValue(20)
        plot.addItem(self.urgent_marks, ignoreBounds=True)
        self._urgent_key: tuple[bytes, bytes] | None = None
        self._urgent_layout: GridLayout | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.controls)
        layout.addWidget(self.message)
        layout.addWidget(self.view, 1)

        self._cmap = palette.COLOR_MAP_NAME
        self._fresh_lut = palette.build_lut(all_stale=False)
        self._stale_lut = palette.build_lut(all_stale=True)
        self._stale = False
        self._colour_key = GRID_METRICS[0].key
        self._metric: GridMetric = GRID_METRICS[0]
        self._settings = GridSettings()
        self.units = DEFAULT_UNITS  # for tooltips; see set_units
        self._cells_mode = "auto"
        self._node_cells = False
        self._index: FleetIndex | None = None
        self._layout: GridLayout | None = None
        self._fit_size = (1, 1)  # cells the view spans zoomed out (see _room_for)
        #: A filtered grid fills the view instead of keeping the usual cell size (a wallboard's sites).
        self.fill_when_filtered = False
        self._pixels = np.zeros((1, 1), dtype=np.uint8)
        self._sample: FleetSample | None = None
        self._health: FleetHealth | None = None
        self._gpu_stale: np.ndarray | None = None
        self._stale_mask: np.ndarray | None = None
        self._last_fresh_ts: np.ndarray | None = None
        self._condition = np.zeros(0, dtype=np.uint8)
        self._arranged_on: tuple[np.ndarray, np.ndarray] | None = None
        self._customer_map: Mapping[str, str] | None = None
        self._customers: tuple[str | None, ...] | None = None
        self._lifecycle_map: Mapping[str, Transition] = {}
        self._lifecycle: tuple[str, ...] | None = None
        self._busy_unallocated: Mapping[str, str] = {}
        self._replay_label: str | None = None
        self._lost_positions = np.zeros(0, dtype=np.int64)
        self._selected: int | None = None  # the current GPU (outlined, shown in the detail view)
        self._anchor: int | None = None  # where a Shift+click run starts
        self._selected_set: frozenset[str] = frozenset()
        self._hovered: int | None = None
        self._tooltip_anchor = QPoint()
        self.image.setLookupTable(self._fresh_lut)
        self.legend.set_metric(self._metric)
        self.metric_combo.currentIndexChanged.connect(self._colour_chosen)
        self.palette_combo.currentIndexChanged.connect(lambda _: self.set_colormap(self.palette_combo.currentData()))
        self.group_combo.currentIndexChanged.connect(lambda _: self._settings_changed(group_by=self.group_combo.currentData()))
        self.sort_combo.currentIndexChanged.connect(lambda _: self._settings_changed(sort_by=self.sort_combo.currentData()))
        self.cells_combo.currentIndexChanged.connect(lambda _: self.set_cells(self.cells_combo.currentData()))
        self.filter_edit.textChanged.connect(lambda text: self._settings_changed(filter_text=text))
        self.search_edit.returnPressed.connect(lambda: self.find(self.search_edit.text()))
        self._viewbox.sigRangeChanged.connect(self._range_changed)
        self._viewbox.sigResized.connect(self._range_changed)
        self.view.installEventFilter(self)

    def _selection_outline(self) -> tuple[QGraphicsRectItem, QGraphicsRectItem]:
        """A black and a white outline: visible on every colour of the map."""
        outlines = []
        for color, width in ((QColor(0, 0, 0), 4), (QColor(255, 255, 255), 2)):
            item = QGraphicsRectItem(self.image)
            pen = QPen(color, width)
            pen.setCosmetic(True)
            item.setPen(pen)
            item.setVisible(False)
            item.setZValue(10)
            outlines.append(item)
        return outlines[0], outlines[1]

    def _selection_paths(self) -> QGraphicsPathItem:
        """The other selected GPUs: a light veil and a thin outline per cell."""
        item = QGraphicsPathItem(self.image)
        pen = QPen(QColor(0, 0, 0), 1.5)
        pen.setCosmetic(True)
        item.setPen(pen)
        item.setBrush(QBrush(QColor(255, 255, 255, 110)))
        item.setZValue(5)
        return item

    # --- state -----------------------------------------------------------------------------

    @property
    def metric(self) -> GridMetric:
        return self._metric

    @property
    def colour_key(self) -> str:
        """The metric key, or "health"."""
        return self._colour_key

    @property
    def stale(self) -> bool:
        return self._stale

    @property
    def layout_info(self) -> GridLayout | None:
        return self._layout

    @property
    def settings(self) -> GridSettings:
        return self._settings

    @property
    def node_cells(self) -> bool:
        """True while the grid draws one colour per node block."""
        return self._node_cells

    def set_metric(self, key: str) -> None:
        """Colour by the metric named `key` (see `gui.grid_metrics.GRID_METRICS`), "health" or "customer"."""
        wanted = key if key in (HEALTH_KEY, CUSTOMER_KEY) else grid_metric(key).key
        self.metric_combo.setCurrentIndex(self.metric_combo.findData(wanted))

    def _colour_chosen(self, combo_index: int) -> None:
        self._colour_key = self.metric_combo.itemData(combo_index)
        if self._colour_key == HEALTH_KEY:
            self.legend.set_health()
        elif self._colour_key == CUSTOMER_KEY:
            self._customer_legend()
        else:
            self._metric = grid_metric(self._colour_key)
            self.legend.set_metric(self._metric)
        if self._settings.sort_by == "metric":
            self._rearrange()
        self._redraw()

    def set_colormap(self, name: str) -> None:
        """Use the value colour map `name` (one of palette.COLOR_MAPS)."""
        if name not in palette.COLOR_MAPS:
            raise ValueError(f"unknown colour map {name!r}; expected one of {', '.join(palette.COLOR_MAPS)}")
        self.palette_combo.setCurrentIndex(self.palette_combo.findData(name))
        if name == self._cmap:
            return
        self._cmap = name
        self._fresh_lut = palette.build_lut(all_stale=False, cmap_name=name)
        self._stale_lut = palette.build_lut(all_stale=True, cmap_name=name)
        self.image.setLookupTable(self._stale_lut if self._stale else self._fresh_lut)
        self.legend.set_colormap(name)

    def set_grouping(self, group_by: str) -> None:
        self.group_combo.setCurrentIndex(self.group_combo.findData(GridSettings(group_by=group_by).group_by))

    def set_sort(self, sort_by: str) -> None:
        self.sort_combo.setCurrentIndex(self.sort_combo.findData(GridSettings(sort_by=sort_by).sort_by))

    def set_filter(self, text: str) -> None:
        self.filter_edit.setText(text)

    def set_controls_visible(self, visible: bool) -> None:
        """Show or hide every control (the legend stays: the colours must still be readable)."""
        for widget in (*self._colour_controls, self.controls, self.message):
            widget.setVisible(visible)

    def set_cells(self, mode: str) -> None:
        """"auto", "gpu" or "node" (see CELL_MODES)."""
        if mode not in CELL_MODES:
            raise ValueError(f"unknown cell mode {mode!r}; expected one of {', '.join(CELL_MODES)}")
        self.cells_combo.setCurrentIndex(self.cells_combo.findData(mode))
        self._cells_mode = mode
        self._update_cell_mode()

    def set_customers(self, customers: Mapping[str, str] | None) -> None:
        """Who holds each GPU (UUID -> customer name), for grouping, filtering and tooltips."""
        self._customer_map = customers
        self._customers = None
        if self._index is not None:
            self._customers = self._customers_of(self._index)
            self._rearrange()
            self._redraw()
        if self._colour_key == CUSTOMER_KEY:
            self._customer_legend()

    def _customer_legend(self) -> None:
        self.legend.set_categories(
            legend_swatches(self._customers),
            "Customer holding each GPU now: the biggest holders have a colour each (colour-blind safe), "
            "the others share one; unallocated GPUs are dark grey, lost ones keep their X",
        )

    def set_lifecycle(self, out_of_production: Mapping[str, Transition]) -> None:
        """The GPUs not in production (UUID -> the transition that put them there), for the
        `lifecycle:` filter, grouping and tooltips; every other GPU is in production."""
        if dict(out_of_production) == dict(self._lifecycle_map):
            return
        self._lifecycle_map = out_of_production
        if self.lifecycle_marks.set_uuids(out_of_production):
            self.lifecycle_marks.place(self._layout, self._index)
        if self._index is not None:
            self._lifecycle = self._lifecycle_of(self._index)
            self._rearrange()
            self._redraw()

    def _lifecycle_of(self, index: FleetIndex) -> tuple[str, ...] | None:
        if not self._lifecycle_map:
            return None
        return tuple(
            record.state.value if (record := self._lifecycle_map.get(uuid)) is not None else DEFAULT_STATE.value
            for uuid in index.uuids
        )

    def set_busy_unallocated(self, busy: Mapping[str, str]) -> None:
        """GPUs doing work while no contract holds them (UUID -> why), for the tooltips."""
        self._busy_unallocated = busy

    def _customers_of(self, index: FleetIndex) -> tuple[str | None, ...] | None:
        if self._customer_map is None:
            return None
        return tuple(self._customer_map.get(uuid) for uuid in index.uuids)

    def set_alert_marks(self, marks: Mapping[str, Severity]) -> None:
        """Mark alerting GPUs (uuid -> worst firing severity) in the cell corner, a shape per severity."""
        if self.alert_marks.set_marks(marks):
            self.alert_marks.place(self._layout, self._index)

    def set_units(self, units: DisplayUnits) -> None:
        """Tooltips show temperatures and memory in these units (the colour scale stays in °C)."""
        self.units = units

    def set_stale(self, stale: bool) -> None:
        """Grey the whole grid out (the source is not answering) or show it fresh again."""
        if stale != self._stale:
            self._stale = stale
            self.image.setLookupTable(self._stale_lut if stale else self._fresh_lut)

    def set_replay(self, label: str | None) -> None:
        """Mark the grid as showing the past ("Replay: …" in tooltips, a coloured frame), or live."""
        self._replay_label = label
        self.view.setStyleSheet(_REPLAY_STYLE if label else "")

    # --- drawing ---------------------------------------------------------------------------

    def show_sample(
        self,
        sample: FleetSample,
        index: FleetIndex,
        *,
        health: FleetHealth | None = None,
        stale: np.ndarray | None = None,
        last_fresh_ts: np.ndarray | None = None,
    ) -> None:
        """Draw a poll; `index` describes `sample.gpus` (the layout follows it when it changes).
        `health` grades each GPU, `stale` marks GPUs without fresh data (drawn washed out / grey),
        `last_fresh_ts` says since when (for the tooltips)."""
        self._sample = sample
        self._health = health
        self._gpu_stale = stale
        self._last_fresh_ts = last_fresh_ts
        if stale is None:
            stale = index.stale_mask(sample.stale_nodes)
        self._stale_mask = stale
        self._condition = conditions(None if health is None else health.level, sample.state, stale)
        if index is not self._index:
            self._set_fleet(index)
        elif self._arrangement_outdated():
            self._rearrange()
        self._draw()

    def _facts(self) -> FleetFacts:
        assert self._sample is not None and self._index is not None
        metric = None
        if self._settings.sort_by == "metric" and self._colour_key != HEALTH_KEY:
            metric = self._metric.values(self._sample, self._index)
        elif self._settings.sort_by == "metric":
            metric = self._condition.astype(np.float64)
        return FleetFacts(self._sample.state, self._condition, metric, self._customers, self._lifecycle)

    def _uses_live_facts(self) -> bool:
        s = self._settings
        text = s.filter_text.lower()
        return s.group_by in ("state", "health") or s.sort_by == "health" or "state:" in text or "health:" in text

    def _arrangement_outdated(self) -> bool:
        if not self._uses_live_facts() or self._sample is None:
            return False
        if self._arranged_on is None:
            return True
        state, condition = self._arranged_on
        return not (np.array_equal(state, self._sample.state) and np.array_equal(condition, self._condition))

    def _set_fleet(self, index: FleetIndex) -> None:
        selected_uuid = self.selected_uuid
        self._index = index
        self._customers = self._customers_of(index)
        self._lifecycle = self._lifecycle_of(index)
        self._selected = None if selected_uuid is None else index.position(selected_uuid)
        self._selected_set = frozenset(u for u in self._selected_set if index.position(u) is not None)
        self._anchor = self._selected
        self._rearrange(fit=True)

    def _settings_changed(self, **change: str) -> None:
        settings = GridSettings(**{**self._settings.__dict__, **change})
        if settings == self._settings:
            return
        self._settings = settings
        if self._sample is not None and self._index is not None:
            self._rearrange(fit=True)
            self._redraw()

    def rearrange(self) -> None:
        """Arrange again with the current values (re-sorts a sort by value)."""
        if self._sample is not None and self._index is not None:
            self._rearrange()
            self._redraw()

    def _rearrange(self, fit: bool = False) -> None:
        """Filter, group and sort into a new layout; a bad filter keeps the last good layout."""
        if self._index is None or self._sample is None:
            return
        try:
            arrangement = arrange(self._index, self._facts(), self._settings)
        except FilterError as exc:
            self.filter_edit.setStyleSheet(_ERROR_STYLE)
            self.filter_edit.setToolTip(str(exc))
            self.message.setText(f"Filter not applied: {exc}")
            self.message.setStyleSheet(_ERROR_STYLE)
            if self._layout is not None and self._layout.arrangement.shown.shape == (len(self._index),):
                return
            arrangement = arrange(self._index, self._facts(), GridSettings(self._settings.group_by, self._settings.sort_by))
        else:
            self.filter_edit.setStyleSheet("")
            shown = len(arrangement.order)
            total = len(self._index)
            self.message.setStyleSheet("")
            self.message.setText(f"Showing {shown:,} of {total:,} GPUs" if shown != total else f"{total:,} GPUs")
        self._arranged_on = (self._sample.state.copy(), self._condition.copy())
        previous = self._layout
        self._layout = layout = GridLayout(self._index, arrangement=arrangement)
        if previous is None or (previous.width, previous.height) != (layout.width, layout.height):
            self._pixels = np.full((layout.height, layout.width), palette.GAP, dtype=np.uint8)
            fit = True
        else:
            self._pixels.fill(palette.GAP)
        self._lost_positions = np.zeros(0, dtype=np.int64)
        self._lost_markers.setPath(QPainterPath())
        self._fit_size = self._room_for(layout, arrangement)
        width, height = self._fit_size
        self._viewbox.setLimits(xMin=-0.5, xMax=width + 0.5, yMin=-0.5, yMax=height + 0.5, minXRange=2, minYRange=1)
        if fit:
            self.fit_all()
        self._label_rows(layout)
        self.block_labels.set_layout(layout)
        self._place_selection()
        self.alert_marks.place(layout, self._index)
        self.lifecycle_marks.place(layout, self._index)

    def _room_for(self, layout: GridLayout, arrangement: Arrangement) -> tuple[int, int]:
        """The cells the view spans when zoomed out: the layout's own, or under a filter those
        of the whole fleet, so that the GPUs found keep their usual cell size, from the top-left,
        instead of a few giant cells."""
        if self._index is None or len(arrangement.order) == len(self._index) or self.fill_when_filtered:
            return layout.width, layout.height
        unfiltered = arrange(self._index, self._facts(), GridSettings(self._settings.group_by, self._settings.sort_by))
        whole = GridLayout(self._index, arrangement=unfiltered)
        return max(layout.width, whole.width), max(layout.height, whole.height)

    def fit_all(self) -> None:
        """Zoom out to the whole fleet (or, under a filter, to where the whole fleet would be)."""
        if self._layout is not None:
            width, height = self._fit_size
            self._viewbox.setRange(QRectF(0, 0, width, height), padding=0)

    def _label_rows(self, layout: GridLayout) -> None:
        """Node names (or group names, when grouped) on the left axis; for tall grids every few
        rows always, the rest if room."""
        if layout.group_rows:
            major = [(row + 0.5, f"{label} ({count:,})") for row, label, count in layout.group_rows]
            group_starts = {row for row, _, _ in layout.group_rows}
            minor = [(r + 0.5, text) for r, text in enumerate(layout.row_labels) if text and r not in group_starts]
            labels = [text for _, text in major]
        else:
            step = max(1, -(-layout.height // _LABELLED_ROWS_MAX))
            major = [(r + 0.5, layout.row_labels[r]) for r in range(0, layout.height, step)]
            minor = [(r + 0.5, layout.row_labels[r]) for r in range(layout.height) if r % step]
            labels = list(layout.row_labels)
        self._axis.setTicks([major, minor])
        groups = {row: f"{label} — {count:,} GPUs" for row, label, count in layout.group_rows}
        self._axis.set_row_texts({**{r: text for r, text in enumerate(layout.row_labels) if text}, **groups})
        longest = max((self.fontMetrics().horizontalAdvance(label) for label in labels), default=0)
        self._axis.setWidth(min(longest + 16, 260))

    def _redraw(self) -> None:
        if self._sample is not None and self._layout is not None:
            self._draw()

    def _draw(self) -> None:
        sample, index, layout = self._sample, self._index, self._layout
        assert sample is not None and index is not None and layout is not None
        state = sample.state
        placed = layout.placed
        if self._colour_key == HEALTH_KEY:
            codes = palette.encode_conditions(self._condition)
            if self._node_cells:
                codes = self._node_codes_by_condition(layout)
        elif self._colour_key == CUSTOMER_KEY:
            codes = encode_customers(self._customers, state == GpuState.LOST)
            if self._node_cells:
                codes = self._node_codes_by_majority(layout, codes)
        else:
            stale = self._stale_mask
            values = self._metric.values(sample, index)
            if self._node_cells:
                codes = self._node_codes_by_value(layout, values, state, stale)
            else:
                codes = palette.encode(
                    values, self._metric.low, self._metric.high,
                    lost=state == GpuState.LOST, no_data=state == GpuState.UNKNOWN, stale=stale,
                )
        self._pixels.ravel()[layout.flat] = codes[placed]
        self.image.setImage(self._pixels, autoLevels=False, levels=(0, 255))
        lost = np.flatnonzero(state == GpuState.LOST)
        self._mark_lost(np.zeros(0, dtype=np.int64) if self._node_cells else lost[layout.col[lost] >= 0])
        self._mark_urgent(layout)
        if self._hovered is not None and QToolTip.isVisible():
            QToolTip.showText(self._tooltip_anchor, self.tooltip_text(self._hovered), self.view)

    def _node_codes_by_condition(self, layout: GridLayout) -> np.ndarray:
        """Every GPU of a node block takes the block's worst condition."""
        n_chunks = layout.arrangement.n_chunks
        worst = np.zeros(n_chunks, dtype=np.uint8)
        placed = layout.placed
        np.maximum.at(worst, layout.chunk_of[placed], self._condition[placed])
        codes = np.full(len(self._condition), palette.GAP, dtype=np.uint8)
        codes[placed] = palette.CONDITION_CODES[worst[layout.chunk_of[placed]]]
        return codes

    def _node_codes_by_majority(self, layout: GridLayout, codes: np.ndarray) -> np.ndarray:
        """Every GPU of a node block takes the block's most common code (e.g. its main customer)."""
        n_chunks = layout.arrangement.n_chunks
        placed = layout.placed
        votes = np.bincount(layout.chunk_of[placed].astype(np.int64) * 256 + codes[placed], minlength=n_chunks * 256)
        winner = votes.reshape(n_chunks, 256).argmax(axis=1).astype(np.uint8)
        out = np.full(len(codes), palette.GAP, dtype=np.uint8)
        out[placed] = winner[layout.chunk_of[placed]]
        return out

    def _node_codes_by_value(self, layout: GridLayout, values: np.ndarray, state: np.ndarray, stale: np.ndarray) -> np.ndarray:
        """Every GPU of a node block takes the block's mean value (lost / stale when all are)."""
        n_chunks = layout.arrangement.n_chunks
        placed = layout.placed
        chunk = layout.chunk_of[placed]
        v = values[placed]
        valid = np.isfinite(v)
        total = np.bincount(chunk[valid], weights=v[valid], minlength=n_chunks)
        count = np.bincount(chunk[valid], minlength=n_chunks)
        size = np.bincount(chunk, minlength=n_chunks)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        all_lost = np.bincount(chunk, weights=(state[placed] == GpuState.LOST), minlength=n_chunks) == size
        all_stale = np.bincount(chunk, weights=stale[placed], minlength=n_chunks) == size
        chunk_codes = palette.encode(mean, self._metric.low, self._metric.high, all_lost, np.zeros(n_chunks, bool), all_stale)
        codes = np.full(len(values), palette.GAP, dtype=np.uint8)
        codes[placed] = chunk_codes[chunk]
        return codes

    def _mark_lost(self, positions: np.ndarray) -> None:
        """An X over each lost GPU, so "lost" never depends on seeing colour alone."""
        if np.array_equal(positions, self._lost_positions):
            return
        self._lost_positions = positions
        layout = self._layout
        assert layout is not None
        path = QPainterPath()
        for col, row in zip(layout.col[positions].tolist(), layout.row[positions].tolist(), strict=True):
            for y0, y1 in ((_MARKER_INSET, 1 - _MARKER_INSET), (1 - _MARKER_INSET, _MARKER_INSET)):
                path.moveTo(col + _MARKER_INSET, row + y0)
                path.lineTo(col + 1 - _MARKER_INSET, row + y1)
        self._lost_markers.setPath(path)

    def _mark_urgent(self, layout: GridLayout) -> None:
        """Place the lost / critical marks (rebuilt only when those GPUs or the layout change)."""
        urgent = np.flatnonzero((self._condition == Condition.LOST) | (self._condition == Condition.CRITICAL))
        urgent = urgent[layout.col[urgent] >= 0]
        key = (urgent.tobytes(), self._condition[urgent].tobytes())
        if key != self._urgent_key or layout is not self._urgent_layout:
            self._urgent_key, self._urgent_layout = key, layout
            lost = self._condition[urgent] == Condition.LOST
            self.urgent_marks.setData(
                x=layout.col[urgent] + 0.5, y=layout.row[urgent] + 0.5,
                symbol=np.where(lost, "x", "t1").tolist(),
                brush=[_LOST_MARK_BRUSH if is_lost else _CRITICAL_MARK_BRUSH for is_lost in lost.tolist()],
                pen=_URGENT_MARK_PEN,
            )
        self._show_urgent_marks()

    def _show_urgent_marks(self) -> None:
        """Only while cells are too small for the cell's own X and alert triangle to be seen."""
        self.urgent_marks.setVisible(self.cell_size_px() < URGENT_MARKS_BELOW_PX)

    # --- zoom -------------------------------------------------------------------------------

    def cell_size_px(self) -> float:
        """How many screen pixels one cell takes now (the smaller of width and height)."""
        px_x, px_y = self._viewbox.viewPixelSize()
        return 1.0 / max(px_x, px_y, 1e-9)

    def _range_changed(self, *_: object) -> None:
        self._update_cell_mode()
        self._show_urgent_marks()

    def _update_cell_mode(self) -> None:
        node_cells = self._cells_mode == "node" or (self._cells_mode == "auto" and self.cell_size_px() < NODE_CELLS_BELOW_PX)
        if node_cells != self._node_cells:
            self._node_cells = node_cells
            self._redraw()
            self.alert_marks.place(self._layout, self._index, node_cells)  # one mark per node, or per GPU

    def zoom_by(self, factor: float) -> None:
        """Zoom in (factor > 1) or out around the current GPU, or the middle of the view."""
        center = None
        if self._selected is not None and self._layout is not None and self._layout.col[self._selected] >= 0:
            center = QPointF(self._layout.col[self._selected] + 0.5, self._layout.row[self._selected] + 0.5)
        self._viewbox.scaleBy((1 / factor, 1 / factor), center=center)

    def ensure_visible(self, position: int) -> None:
        """Scroll (and zoom in, if cells are too small to see) so GPU `position` is in view."""
        layout = self._layout
        if layout is None or layout.col[position] < 0:
            return
        col, row = float(layout.col[position]), float(layout.row[position])
        (x0, x1), (y0, y1) = self._viewbox.viewRange()
        inside = x0 <= col and col + 1 <= x1 and y0 <= row and row + 1 <= y1
        if inside and self.cell_size_px() >= 2 * NODE_CELLS_BELOW_PX:
            return
        span_x = min(float(layout.width), max(x1 - x0, 1.0), float(_JUMP_BLOCKS * (layout.block_width + 1)))
        if self.cell_size_px() < 2 * NODE_CELLS_BELOW_PX:
            span_x = min(float(layout.width), float(_JUMP_BLOCKS * (layout.block_width + 1)))
        ratio = self._viewbox.height() / max(self._viewbox.width(), 1.0)
        span_y = min(float(layout.height), max(1.0, span_x * ratio))
        self._viewbox.setRange(
            QRectF(col + 0.5 - span_x / 2, row + 0.5 - span_y / 2, span_x, span_y), padding=0
        )

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
        sample = self._sample
        assert sample is not None
        stale = self._stale or bool(self._gpu_stale is not None and self._gpu_stale[position])
        last_fresh = None
        if self._last_fresh_ts is not None and position < len(self._last_fresh_ts):
            last_fresh = float(self._last_fresh_ts[position])
        elif self._stale:
            last_fresh = sample.ts
        text = gpu_tooltip(
            sample, position, stale=stale, last_fresh_ts=last_fresh, now=time.time(),
            reason=self._health.reasons[position] if self._health is not None else "",
            customer=self._customers[position] if self._customers else None, units=self.units,
        )
        busy = self._busy_unallocated.get(sample.gpus[position].uuid)
        if busy:
            text += f"\nbusy but unallocated: {busy}"
        out = self._lifecycle_map.get(sample.gpus[position].uuid)
        if out is not None:
            ticket = f", ticket {out.ticket}" if out.ticket else ""
            text += f"\nlifecycle: {out.state.value} since {format_ms(out.ts_ms)} ({out.reason}{ticket})"
        if self._node_cells and self._layout is not None:
            chunk = self._layout.arrangement.chunk(int(self._layout.chunk_of[position]))
            worst = Condition(int(self._condition[chunk].max())).label
            text = f"{sample.gpus[position].node}: {len(chunk)} GPUs here, worst {worst} (zoom in for single GPUs)\n{text}"
        if self._replay_label:
            text = f"{self._replay_label}\n{text}"
        return text

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

    def _click(self, col: int, row: int, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> bool:
        position = self.gpu_at(col, row)
        if position is None or self._index is None:
            return False
        self.view.setFocus()
        uuid = self._index.uuids[position]
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            chosen = self._selected_set ^ {uuid}
            self._set_selection(chosen, position if uuid in chosen else self._selected, anchor=position)
            if uuid in chosen:
                self.gpuSelected.emit(uuid)
            return True
        if modifiers & Qt.KeyboardModifier.ShiftModifier and self._anchor is not None and self._layout is not None:
            self._set_selection(self._run(self._anchor, position), position, anchor=self._anchor)
        else:
            self._set_selection({uuid}, position, anchor=position)
        self.gpuSelected.emit(uuid)
        return True

    def _run(self, start: int, end: int) -> set[str]:
        """UUIDs from GPU `start` to GPU `end` in drawing order."""
        assert self._layout is not None and self._index is not None
        order = self._layout.placed
        a_hits, b_hits = np.flatnonzero(order == start), np.flatnonzero(order == end)
        if not len(a_hits) or not len(b_hits):
            return {self._index.uuids[end]}
        lo, hi = sorted((int(a_hits[0]), int(b_hits[0])))
        return {self._index.uuids[p] for p in order[lo : hi + 1].tolist()}

    def _band_select(self, start: QPointF, end: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        if self._layout is None or self._index is None:
            return
        positions = self._layout.gpus_in(
            int(np.floor(start.x())), int(np.floor(start.y())), int(np.floor(end.x())), int(np.floor(end.y()))
        )
        chosen = {self._index.uuids[p] for p in positions.tolist()}
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            chosen |= self._selected_set
        current = int(positions[0]) if len(positions) else None
        self._set_selection(chosen, current, anchor=current)
        if current is not None:
            self.gpuSelected.emit(self._index.uuids[current])

    @property
    def selected_uuid(self) -> str | None:
        """The current GPU: the one outlined and shown in the detail view."""
        if self._selected is None or self._index is None:
            return None
        return self._index.uuids[self._selected]

    def selected_uuids(self) -> frozenset[str]:
        """Every selected GPU (for actions on several GPUs, such as allocating them)."""
        return self._selected_set

    def select(self, uuid: str | None) -> None:
        """Make the GPU with this UUID the only selected one (None clears the selection)."""
        position = None if uuid is None or self._index is None else self._index.position(uuid)
        if uuid is None or position is None:
            self._set_selection(set(), None, anchor=None)
        else:
            self._set_selection({uuid}, position, anchor=position)

    def set_selection(self, uuids: Iterable[str], current: str | None = None) -> None:
        """Select these GPUs (unknown UUIDs are ignored); `current` is outlined."""
        if self._index is None:
            return
        known = {u for u in uuids if self._index.position(u) is not None}
        position = None if current is None else self._index.position(current)
        self._set_selection(known, position, anchor=position)

    def clear_selection(self) -> None:
        self._set_selection(set(), None, anchor=None)

    def _set_selection(self, uuids: set[str] | frozenset[str], current: int | None, *, anchor: int | None) -> None:
        chosen = frozenset(uuids)
        changed = chosen != self._selected_set
        self._selected_set = chosen
        self._selected = current
        self._anchor = anchor
        self._place_selection()
        if changed:
            self.selectionChanged.emit(chosen)

    def _place_selection(self) -> None:
        layout = self._layout
        visible = bool(self._selected is not None and layout is not None and layout.col[self._selected] >= 0)
        for outline in self._selection:
            if visible:
                assert layout is not None and self._selected is not None
                outline.setRect(QRectF(float(layout.col[self._selected]), float(layout.row[self._selected]), 1.0, 1.0))
            outline.setVisible(visible)
        path = QPainterPath()
        if layout is not None and self._index is not None and len(self._selected_set) > 1:
            for uuid in self._selected_set:
                p = self._index.position(uuid)
                if p is not None and layout.col[p] >= 0:
                    path.addRect(QRectF(float(layout.col[p]), float(layout.row[p]), 1.0, 1.0))
        self._selected_cells.setPath(path)

    # --- search and keyboard -----------------------------------------------------------------

    def find(self, text: str) -> int:
        """Jump to the GPUs named by `text` (UUID, serial, hostname or PCI id): select them,
        show the first, zoom to it. Returns how many matched (0: says so in the message line)."""
        if self._index is None or not text.strip():
            return 0
        positions = self._index.find(text)
        if not positions:
            self.message.setText(f"No GPU matches {text.strip()!r} (UUID, serial, hostname or PCI id)")
            self.message.setStyleSheet(_ERROR_STYLE)
            return 0
        layout = self._layout
        if layout is not None and any(layout.col[p] < 0 for p in positions):
            self.filter_edit.clear()  # the GPU was filtered out: show everything again
        first = positions[0]
        uuids = {self._index.uuids[p] for p in positions}
        self._set_selection(uuids, first, anchor=first)
        self.ensure_visible(first)
        self.message.setStyleSheet("")
        self.message.setText(f"Found {len(positions)} GPU{'s' if len(positions) != 1 else ''} for {text.strip()!r}")
        self.gpuSelected.emit(self._index.uuids[first])
        return len(positions)

    def focus_search(self) -> None:
        self.search_edit.setFocus()
        self.search_edit.selectAll()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.view and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            return self._key(event)
        return False

    def _key(self, event: QKeyEvent) -> bool:
        """The grid's keys (GRID_KEYS says them for Help → Keyboard shortcuts)."""
        key = event.key()
        moves = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0), Qt.Key.Key_Up: (0, -1), Qt.Key.Key_Down: (0, 1)}
        if key in moves:
            self.move_selection(*moves[key], extend=bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier))
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(1.5)
        elif key == Qt.Key.Key_Minus:
            self.zoom_by(1 / 1.5)
        elif key in (Qt.Key.Key_0, Qt.Key.Key_Home):
            self.fit_all()
        else:
            return False
        return True

    def move_selection(self, dx: int, dy: int, *, extend: bool = False) -> None:
        """Move the current GPU: left/right through the drawing order, up/down to the nearest
        GPU in the row above/below. With `extend`, the GPUs passed stay selected."""
        layout, index = self._layout, self._index
        if layout is None or index is None or not len(layout.placed):
            return
        current = self._selected
        if current is None or layout.col[current] < 0:
            target = int(layout.placed[0])
        elif dx:
            k = int(np.flatnonzero(layout.placed == current)[0]) + dx
            target = int(layout.placed[min(max(k, 0), len(layout.placed) - 1)])
        else:
            target = self._vertical_neighbour(int(layout.col[current]), int(layout.row[current]), dy) or current
        uuid = index.uuids[target]
        chosen = (self._selected_set | {uuid}) if extend else {uuid}
        self._set_selection(chosen, target, anchor=self._anchor if extend else target)
        self.ensure_visible(target)
        self.gpuSelected.emit(uuid)

    def _vertical_neighbour(self, col: int, row: int, dy: int) -> int | None:
        assert self._layout is not None
        r = row + dy
        while 0 <= r < self._layout.height:
            for distance in range(self._layout.width):
                for c in (col - distance, col + distance):
                    found = self._layout.gpu_at(c, r)
                    if found is not None:
                        return found
            r += dy
        return None

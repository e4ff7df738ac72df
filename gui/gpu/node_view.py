"""All GPUs of one node side by side: small multiples of utilization, power and temperature.

Fed from the in-memory history. Plot items are costly to create (tens of ms each), so they are
built only when the view is first shown, and reused: switching nodes only retitles them and
sets their data. While hidden the view just remembers which node to show.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from gpuops.core.telemetry import FleetSample
from gpuops.gui.live.fleet_index import FleetIndex
from gpuops.gui.live.recent_history import FleetHistory

#: Rows of the small multiples: series, title, fixed y range (None: automatic).
NODE_ROWS: tuple[tuple[str, str, tuple[float, float] | None], ...] = (
    ("util_gpu_pct", "Utilization %", (0.0, 100.0)),
    ("power_w", "Power W", None),
    ("temp_c", "Temperature °C", None),
)
_PEN = pg.mkPen((33, 110, 180), width=1)
_PROMPT = "Select a GPU to see every GPU of its node side by side."


class NodeView(QWidget):
    """One column per GPU of the node, one row per series; x axes linked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(_PROMPT)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground(self.palette().color(self.backgroundRole()))
        self.plots.setToolTip("The last minutes of every GPU on this node (in memory)")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.plots, 1)
        self.node: str | None = None
        self._positions: tuple[int, ...] = ()
        self._titles: tuple[str, ...] = ()
        self._history: FleetHistory | None = None
        self._curves: list[dict[str, pg.PlotDataItem]] = []
        self._plots: list[tuple[pg.PlotItem, ...]] = []

    @property
    def gpu_count(self) -> int:
        """GPUs of the node shown."""
        return len(self._positions)

    def curve(self, column: int, series: str) -> pg.PlotDataItem:
        return self._curves[column][series]

    def show_node(self, sample: FleetSample, index: FleetIndex, history: FleetHistory, node: str) -> None:
        """Show `node`'s GPUs (drawn now if visible, else when shown)."""
        group = next((g for g in index.nodes if g.name == node), None)
        if group is None:
            return
        self.node = node
        self._positions = group.gpu_positions
        self._titles = tuple(f"GPU {sample.gpus[p].index}" for p in group.gpu_positions)
        self._history = history
        self.title.setText(f"Node {node}: {len(group.gpu_positions)} GPUs")
        self.refresh(history)

    def _ensure_columns(self, count: int) -> None:
        """At least `count` columns of plots; extra columns are hidden, not deleted."""
        while len(self._curves) < count:
            column = len(self._curves)
            curves, plots = {}, []
            for row, (series, _, y_range) in enumerate(NODE_ROWS):
                axis = {"bottom": pg.DateAxisItem()} if row == len(NODE_ROWS) - 1 else {}
                plot = self.plots.addPlot(row=row, col=column, axisItems=axis)
                plot.setMenuEnabled(False)
                plot.setMouseEnabled(x=False, y=False)
                plot.hideButtons()
                plot.getAxis("left").setWidth(36)
                if row != len(NODE_ROWS) - 1:
                    plot.hideAxis("bottom")
                if y_range is not None:
                    plot.setYRange(*y_range, padding=0.02)
                if self._plots:
                    plot.setXLink(self._plots[0][0])
                curves[series] = plot.plot(pen=_PEN)
                plots.append(plot)
            self._plots.append(tuple(plots))
            self._curves.append(curves)

    def refresh(self, history: FleetHistory | None = None) -> None:
        """Redraw from the in-memory history (skipped while hidden: it is cheap to catch up)."""
        history = history or self._history
        if not self.isVisible() or history is None or not self._positions:
            return
        self._ensure_columns(len(self._positions))
        for column, plots in enumerate(self._plots):
            used = column < len(self._positions)
            for row, plot in enumerate(plots):
                plot.setVisible(used)
                if used:
                    title = NODE_ROWS[row][1]
                    plot.setTitle(f"{self._titles[column]} · {title}" if row == 0 else title, size="8pt")
        for curves, position in zip(self._curves, self._positions, strict=False):
            ts, series = history.gpu(position)
            for name, curve in curves.items():
                curve.setData(ts, series[name])

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()

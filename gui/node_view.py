"""All GPUs of one node side by side: small multiples of utilization, power and temperature.

Fed from the in-memory history, so switching nodes is instant; it only redraws while visible.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from core.telemetry import FleetSample
from gui.fleet_index import FleetIndex
from gui.history import FleetHistory

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
        self._curves: list[dict[str, pg.PlotDataItem]] = []

    @property
    def gpu_count(self) -> int:
        return len(self._curves)

    def curve(self, column: int, series: str) -> pg.PlotDataItem:
        return self._curves[column][series]

    def show_node(self, sample: FleetSample, index: FleetIndex, history: FleetHistory, node: str) -> None:
        """Show `node`'s GPUs (rebuilding the plots when the node or its GPUs change)."""
        group = next((g for g in index.nodes if g.name == node), None)
        if group is None:
            return
        if node != self.node or group.gpu_positions != self._positions:
            self._build(sample, group.gpu_positions)
            self.node = node
            self._positions = group.gpu_positions
        self.refresh(history)

    def _build(self, sample: FleetSample, positions: tuple[int, ...]) -> None:
        self.plots.clear()
        self._curves = []
        first_plot = None
        for column, position in enumerate(positions):
            gpu = sample.gpus[position]
            curves = {}
            for row, (series, title, y_range) in enumerate(NODE_ROWS):
                axis = {"bottom": pg.DateAxisItem()} if row == len(NODE_ROWS) - 1 else {}
                plot = self.plots.addPlot(row=row, col=column, axisItems=axis)
                plot.setTitle(f"GPU {gpu.index} · {title}" if row == 0 else title, size="8pt")
                plot.setMenuEnabled(False)
                plot.setMouseEnabled(x=False, y=False)
                plot.hideButtons()
                plot.getAxis("left").setWidth(36)
                if row != len(NODE_ROWS) - 1:
                    plot.hideAxis("bottom")
                if y_range is not None:
                    plot.setYRange(*y_range, padding=0.02)
                if first_plot is None:
                    first_plot = plot
                else:
                    plot.setXLink(first_plot)
                curves[series] = plot.plot(pen=_PEN)
            self._curves.append(curves)
        self.title.setText(f"Node {sample.gpus[positions[0]].node}: {len(positions)} GPUs")

    def refresh(self, history: FleetHistory) -> None:
        """Redraw from the in-memory history (skipped while hidden: it is cheap to catch up)."""
        if not self.isVisible():
            return
        for curves, position in zip(self._curves, self._positions):
            ts, series = history.gpu(position)
            for name, curve in curves.items():
                curve.setData(ts, series[name])

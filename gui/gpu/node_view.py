"""All GPUs of one node side by side: small multiples of utilization, power and temperature.

Fed from the in-memory history; in replay, from the history database (through the history
loader, off the GUI thread): the hour around the replayed instant, marked by a line. Plot items
are costly to create (tens of ms each), so they are built only when the view is first shown, and
reused: switching nodes only retitles them and sets their data. While hidden the view just
remembers which node to show.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from gpuops.core.telemetry import FleetSample
from gpuops.core.timefmt import utc_time
from gpuops.gui.gpu.history_queries import GpuHistory, gpu_history
from gpuops.gui.live.fleet_index import FleetIndex
from gpuops.gui.live.recent_history import FleetHistory
from gpuops.gui.workers.history_loader import HistoryLoader

#: Rows of the small multiples: series, title, fixed y range (None: automatic).
NODE_ROWS: tuple[tuple[str, str, tuple[float, float] | None], ...] = (
    ("util_gpu_pct", "Utilization %", (0.0, 100.0)),
    ("power_w", "Power W", None),
    ("temp_c", "Temperature °C", None),
)
_PEN = pg.mkPen((33, 110, 180), width=1)
_PROMPT = "Select a GPU to see every GPU of its node side by side."
_INSTANT_PEN = pg.mkPen((200, 140, 0), width=2)
#: The resource name of this view's history requests; in replay it shows this much around the instant.
NODE_RESOURCE = "node"
REPLAY_SPAN_S = 3600.0
#: Points per GPU series read for a replay (small multiples are a few hundred pixels wide).
_REPLAY_POINTS = 300


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
        self._instants: list[pg.InfiniteLine] = []
        self._uuids: tuple[str, ...] = ()
        self._loader: HistoryLoader | None = None
        self._replay_ts: float | None = None
        self.replayed: tuple[GpuHistory, ...] | None = None  # what a replay drew, by column

    def set_loader(self, loader: HistoryLoader | None) -> None:
        """Read replayed ranges through `loader` (None: no history, so no replay either)."""
        self._loader = loader
        if loader is not None:
            loader.loaded.connect(self._loaded)
            loader.failed.connect(self._failed)

    def follow_replay(self, ts: float | None) -> None:
        """In replay, the node's GPUs over the hour around `ts`; None: the live minutes again."""
        self._replay_ts = ts
        self.replayed = None
        for line in self._instants:
            line.setVisible(ts is not None)
            if ts is not None:
                line.setValue(ts)
        if ts is None:
            if self.node is not None:
                self.title.setText(f"Node {self.node}: {len(self._positions)} GPUs")
            self.refresh()
        else:
            self._request_replay()

    def _request_replay(self) -> None:
        ts, loader, uuids = self._replay_ts, self._loader, self._uuids
        if ts is None or loader is None or not uuids:
            return
        start, end = ts - REPLAY_SPAN_S / 2, ts + REPLAY_SPAN_S / 2
        self.title.setText(f"Node {self.node}: {len(uuids)} GPUs · reading the hour around {utc_time(ts)}…")
        loader.request(
            NODE_RESOURCE, lambda reader: tuple(gpu_history(reader, u, start, end, _REPLAY_POINTS) for u in uuids)
        )

    def _loaded(self, resource: str, result: object) -> None:
        if resource != NODE_RESOURCE or self._replay_ts is None or not isinstance(result, tuple):
            return
        if tuple(h.uuid for h in result) != self._uuids:
            return  # another node was chosen meanwhile
        self.replayed = result
        self.title.setText(f"Node {self.node}: {len(result)} GPUs · the hour around {utc_time(self._replay_ts)} (replay)")
        self._draw_replay()

    def _failed(self, resource: str, message: str) -> None:
        if resource == NODE_RESOURCE and self._replay_ts is not None:
            self.title.setText(f"Node {self.node}: history unavailable: {message}")

    def _draw_replay(self) -> None:
        if self.replayed is None or not self.isVisible():
            return
        self._ensure_columns(len(self._positions))
        self._show_columns()
        for curves, history in zip(self._curves, self.replayed, strict=False):
            for name, curve in curves.items():
                curve.setData(history.ts[name], history.values[name])
        if self._plots and self.replayed:
            self._plots[0][0].setXRange(self.replayed[0].start, self.replayed[0].end, padding=0)

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
        self._uuids = tuple(sample.gpus[p].uuid for p in group.gpu_positions)
        self._titles = tuple(f"GPU {sample.gpus[p].index}" for p in group.gpu_positions)
        self._history = history
        self.title.setText(f"Node {node}: {len(group.gpu_positions)} GPUs")
        if self._replay_ts is not None:
            if self.replayed is None or tuple(h.uuid for h in self.replayed) != self._uuids:
                self.replayed = None
                self._request_replay()
            return
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
                instant = pg.InfiniteLine(angle=90, movable=False, pen=_INSTANT_PEN)
                instant.setVisible(self._replay_ts is not None)
                if self._replay_ts is not None:
                    instant.setValue(self._replay_ts)
                plot.addItem(instant, ignoreBounds=True)
                self._instants.append(instant)
                plots.append(plot)
            self._plots.append(tuple(plots))
            self._curves.append(curves)

    def refresh(self, history: FleetHistory | None = None) -> None:
        """Redraw from the in-memory history (skipped while hidden: it is cheap to catch up; and
        in replay, which shows the replayed hour instead)."""
        history = history or self._history
        if self._replay_ts is not None:
            self._draw_replay()
            return
        if not self.isVisible() or history is None or not self._positions:
            return
        self._ensure_columns(len(self._positions))
        self._show_columns()
        for plot in self._plots[0][:1]:
            plot.enableAutoRange(x=True)
        for curves, position in zip(self._curves, self._positions, strict=False):
            ts, series = history.gpu(position)
            for name, curve in curves.items():
                curve.setData(ts, series[name])

    def _show_columns(self) -> None:
        for column, plots in enumerate(self._plots):
            used = column < len(self._positions)
            for row, plot in enumerate(plots):
                plot.setVisible(used)
                if used:
                    title = NODE_ROWS[row][1]
                    plot.setTitle(f"{self._titles[column]} · {title}" if row == 0 else title, size="8pt")

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()

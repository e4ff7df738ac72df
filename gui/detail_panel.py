"""The selected GPU up close: who it is, its last minutes as plots, and its processes."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QLabel, QTableView, QVBoxLayout, QWidget

from core.telemetry import FleetSample
from gui.gpu_text import gpu_location, gpu_readings
from gui.history import HISTORY_SERIES, TraceRing
from gui.process_model import ProcessTableModel

_PLOTS: dict[str, tuple[str, str]] = {
    "util_gpu_pct": ("Utilization", "%"),
    "mem_used_gib": ("Memory used", "GiB"),
    "temp_c": ("Temperature", "°C"),
    "power_w": ("Power", "W"),
}
_LIVE_PEN = pg.mkPen((33, 110, 180), width=1)
_STALE_PEN = pg.mkPen((160, 160, 160), width=1)
_PROMPT = "Click a GPU in the grid to see its history and processes."


class DetailPanel(QWidget):
    """Shows one GPU; the owner feeds it history on selection and each new poll after that."""

    def __init__(self, history_capacity: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = QLabel(_PROMPT)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.header.setWordWrap(True)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground(self.palette().color(self.backgroundRole()))
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._plot_items: dict[str, pg.PlotItem] = {}
        for row, name in enumerate(HISTORY_SERIES):
            title, unit = _PLOTS[name]
            axis = {"bottom": pg.DateAxisItem()} if row == len(HISTORY_SERIES) - 1 else {}
            plot: pg.PlotItem = self.plots.addPlot(row=row, col=0, axisItems=axis)
            plot.setTitle(f"{title} ({unit})", size="9pt")
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.getAxis("left").setWidth(48)
            if row != len(HISTORY_SERIES) - 1:
                plot.hideAxis("bottom")
            self._plot_items[name] = plot
            self._curves[name] = plot.plot(pen=_LIVE_PEN)
        last = self._plot_items[HISTORY_SERIES[-1]]
        for name in HISTORY_SERIES[:-1]:
            self._plot_items[name].setXLink(last)
        self._plot_items["util_gpu_pct"].setYRange(0, 100, padding=0.02)

        self.process_model = ProcessTableModel()
        self.process_table = QTableView()
        self.process_table.setModel(self.process_model)
        self.process_table.verticalHeader().setVisible(False)
        self.process_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.process_table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.header)
        layout.addWidget(self.plots, 3)
        layout.addWidget(QLabel("Processes"))
        layout.addWidget(self.process_table, 1)
        self._ring = TraceRing(history_capacity)
        self._uuid: str | None = None
        self._shown: tuple[FleetSample, int] | None = None
        self._stale = False

    @property
    def uuid(self) -> str | None:
        return self._uuid

    def show_gpu(self, sample: FleetSample, position: int, ts: np.ndarray, series: dict[str, np.ndarray]) -> None:
        """Switch to GPU `position` of `sample`, starting from the history recorded for it."""
        self._uuid = sample.gpus[position].uuid
        self._ring.load(ts, series)
        self._redraw_curves()
        self._show_facts(sample, position)

    def clear(self) -> None:
        self._uuid = None
        self._shown = None
        self.header.setText(_PROMPT)
        self.process_model.set_processes(())
        for curve in self._curves.values():
            curve.setData([], [])

    def show_poll(self, sample: FleetSample, position: int, values: dict[str, float]) -> None:
        """This poll of the shown GPU: header, processes, and one more point on each plot."""
        self._ring.append(sample.ts, values)
        self._redraw_curves()
        self._show_facts(sample, position)

    def _show_facts(self, sample: FleetSample, position: int) -> None:
        self._shown = (sample, position)
        gpu = sample.gpus[position]
        state = sample.gpu_state(position).label
        if self._stale or gpu.node in sample.stale_nodes:
            state += " (stale data)"
        self.header.setText(
            f"<b>{gpu_location(sample, position)}</b><br>{gpu.uuid}<br>"
            f"state: {state} · {gpu_readings(sample, position)}"
        )
        self.process_model.set_processes(sample.processes[position])
        mem_total = sample.metrics["mem_total_bytes"][position]
        if not np.isfinite(mem_total) and gpu.mem_total_bytes:
            mem_total = gpu.mem_total_bytes
        if np.isfinite(mem_total):
            self._plot_items["mem_used_gib"].setYRange(0, mem_total / float(1 << 30), padding=0.02)

    def _redraw_curves(self) -> None:
        ts, series = self._ring.window()
        for name, curve in self._curves.items():
            curve.setData(ts, series[name])

    def set_stale(self, stale: bool) -> None:
        """Grey the curves while the source is not answering; the last data stays."""
        if stale == self._stale:
            return
        self._stale = stale
        for curve in self._curves.values():
            curve.setPen(_STALE_PEN if stale else _LIVE_PEN)
        if self._shown is not None:
            self._show_facts(*self._shown)

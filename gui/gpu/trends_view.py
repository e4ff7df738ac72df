"""Fleet trends: mean utilization, total power and GPUs by state over the chosen range.

Live uses the figures of the polls kept in memory; other ranges come from the history
database's fleet aggregates, read by the history loader.

The plots are built when the tab is first shown (three plot items cost ~70 ms, a good part of
the console's start-up); until then the view only keeps the live figures.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from gpuops.core.timefmt import local_time
from gpuops.gui.gpu.history_queries import FleetTrends, fleet_trends
from gpuops.gui.gpu.time_range import TimeRange, TimeRangePicker
from gpuops.gui.window.kpi_strip import FleetKpis
from gpuops.gui.workers.history_loader import HistoryLoader

TRENDS_RESOURCE = "trends"
_LIVE_SERIES = {"util_gpu_mean_pct": (33, 110, 180), "power_total_kw": (213, 94, 0)}
_STATE_PENS = {"n_ok": (0, 114, 178), "n_lost": (230, 20, 120), "n_unknown": (150, 150, 150)}


class TrendsView(QWidget):
    def __init__(self, capacity: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.picker = TimeRangePicker()
        self.status = QLabel()
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(self.picker)
        self._layout.addWidget(self.status)
        self._capacity = capacity
        self._count = 0
        self._ts = np.zeros(capacity)
        self._values = {name: np.full(capacity, np.nan) for name in (*_LIVE_SERIES, *_STATE_PENS)}
        self._loader: HistoryLoader | None = None
        self._range: TimeRange = self.picker.current
        self._curves: dict[str, pg.PlotDataItem] | None = None
        self._pending: FleetTrends | None = None  # a history answer that came before the plots
        self.picker.rangeChanged.connect(self.set_range)

    @property
    def curves(self) -> dict[str, pg.PlotDataItem]:
        """The plotted curves by series name (building the plots if not shown yet)."""
        if self._curves is None:
            self._curves = self._build_plots()
        return self._curves

    def _build_plots(self) -> dict[str, pg.PlotDataItem]:
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground(self.palette().color(self.backgroundRole()))
        util = self.plots.addPlot(row=0, col=0)
        util.setTitle("Fleet utilization (%)", size="9pt")
        util.setYRange(0, 100, padding=0.02)
        power = self.plots.addPlot(row=1, col=0)
        power.setTitle("Power (kW)", size="9pt")
        states = self.plots.addPlot(row=2, col=0, axisItems={"bottom": pg.DateAxisItem()})
        states.setTitle("GPUs by state", size="9pt")
        states.addLegend(offset=(5, 5))
        for plot in (util, power, states):
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.getAxis("left").setWidth(48)
            plot.setMouseEnabled(x=False, y=False)
        for plot in (util, power):
            plot.hideAxis("bottom")
            plot.setXLink(states)
        curves = {
            "util_gpu_mean_pct": util.plot(pen=pg.mkPen(_LIVE_SERIES["util_gpu_mean_pct"], width=1)),
            "power_total_kw": power.plot(pen=pg.mkPen(_LIVE_SERIES["power_total_kw"], width=1)),
        }
        for name, rgb in _STATE_PENS.items():
            curves[name] = states.plot(pen=pg.mkPen(rgb, width=1), name=name.removeprefix("n_"))
        self._layout.addWidget(self.plots, 1)
        return curves

    def set_loader(self, loader: HistoryLoader | None) -> None:
        self._loader = loader
        if loader is not None:
            loader.loaded.connect(self._loaded)
            loader.failed.connect(self._failed)

    def append(self, ts: float, kpis: FleetKpis) -> None:
        """One poll's fleet figures into the in-memory ring (drawn in Live while visible)."""
        if self._count == self._capacity:
            self._ts[:-1] = self._ts[1:]
            for values in self._values.values():
                values[:-1] = values[1:]
            self._count -= 1
        k = self._count
        self._ts[k] = ts
        row = {
            "util_gpu_mean_pct": kpis.util_mean_pct,
            "power_total_kw": None if kpis.power_total_w is None else kpis.power_total_w / 1000,
            "n_ok": kpis.answering, "n_lost": kpis.lost, "n_unknown": kpis.unknown,
        }
        for name, value in row.items():
            self._values[name][k] = np.nan if value is None else value
        self._count += 1
        if self._range.live and self.isVisible():
            self._draw_live()

    def _draw_live(self) -> None:
        if self._curves is None:
            return  # drawn when first shown
        n = self._count
        for name, curve in self._curves.items():
            curve.setData(self._ts[:n], self._values[name][:n])

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._curves is None:
            self._curves = self._build_plots()
        if self._range.live:
            self._draw_live()
        elif self._pending is not None:
            self._draw_history(self._pending)

    def set_range(self, chosen: TimeRange) -> None:
        self._range = chosen
        if chosen.live:
            self.status.setText("Live: the polls kept in memory")
            self._draw_live()
        else:
            self.refresh_history()

    def refresh_history(self) -> None:
        if self._range.live:
            return
        if self._loader is None:
            self.status.setText("History is off (started with --no-history): only Live is available.")
            return
        start, end = self._range.resolved()
        self.status.setText(f"Loading {local_time(start)} – {local_time(end)}…")
        self._loader.request(TRENDS_RESOURCE, lambda reader: fleet_trends(reader, start, end))

    def _failed(self, resource: str, message: str) -> None:
        if resource == TRENDS_RESOURCE:
            self.status.setText(f"History unavailable: {message}")

    def _loaded(self, resource: str, result: object) -> None:
        if resource != TRENDS_RESOURCE or not isinstance(result, FleetTrends) or self._range.live:
            return
        if self._curves is None:
            self._pending = result
        else:
            self._draw_history(result)
        self.status.setText(
            f"{local_time(result.start)} – {local_time(result.end)}: {len(result.ts):,} points ({result.resolution})"
        )

    def _draw_history(self, result: FleetTrends) -> None:
        assert self._curves is not None
        self._pending = None
        for name, curve in self._curves.items():
            curve.setData(result.ts, result.values[name])

"""The GPU detail's four plots (utilization, memory, temperature, power) on one time axis.

Sized to stay readable on a 1366×768 laptop (80 px of data each, titles inside the plots), with
the GPU's limits drawn where it has them (memory total, power limit, slowdown temperature) and
a crosshair that reads every plot at the time under the mouse.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QWidget

from gpuops.core.timefmt import local_time
from gpuops.gui.live.recent_history import HISTORY_SERIES

#: Title and unit of each plot, by series.
PLOTS: dict[str, tuple[str, str]] = {
    "util_gpu_pct": ("Utilization", "%"),
    "mem_used_gib": ("Memory used", "GiB"),
    "temp_c": ("Temperature", "°C"),
    "power_w": ("Power", "W"),
}
#: The limit drawn on a plot, by series: its name on the line.
LIMITS: dict[str, str] = {"mem_used_gib": "total", "temp_c": "slowdown", "power_w": "limit"}

#: Each plot keeps this much room for its data, even on a 1366×768 laptop (the processes and
#: health tabs below give way first); titles sit inside the plots so they cost no height.
MIN_PLOT_HEIGHT_PX = 80
PLOT_FRAME_PX = 2  # a plot's own margins around its data
TIME_AXIS_HEIGHT_PX = 28

_LIMIT_PEN = pg.mkPen((200, 60, 40), width=1, style=Qt.PenStyle.DashLine)
_CROSSHAIR_PEN = pg.mkPen((128, 128, 128), width=1)
_UNSEEN_PEN = pg.mkPen((0, 0, 0, 0))
_INSTANT_PEN = pg.mkPen((200, 140, 0), width=2)


class DetailPlots(pg.GraphicsLayoutWidget):
    """`curves` and `plots` by series name; the owner sets the curves' data and pens."""

    def __init__(self, pen: object, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        palette = self.palette()
        self.setBackground(palette.color(QPalette.ColorRole.Window))
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.plots: dict[str, pg.PlotItem] = {}
        self.limits: dict[str, pg.InfiniteLine] = {}
        self._reach: dict[str, pg.PlotDataItem] = {}
        self._titles: dict[str, pg.TextItem] = {}
        self._crosshairs: list[pg.InfiniteLine] = []
        self._instants: list[pg.InfiniteLine] = []
        last_row = len(HISTORY_SERIES) - 1
        for row, name in enumerate(HISTORY_SERIES):
            axis = {"bottom": pg.DateAxisItem()} if row == last_row else {}
            plot: pg.PlotItem = self.addPlot(row=row, col=0, axisItems=axis)
            self.ci.layout.setRowMinimumHeight(
                row, MIN_PLOT_HEIGHT_PX + PLOT_FRAME_PX + (TIME_AXIS_HEIGHT_PX if row == last_row else 0)
            )
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.getAxis("left").setWidth(48)
            if row != last_row:
                plot.hideAxis("bottom")
            self._titles[name] = _inner_title(plot, palette)
            if name in LIMITS:
                limit = pg.InfiniteLine(angle=0, movable=False, pen=_LIMIT_PEN, label=LIMITS[name],
                                        labelOpts={"position": 0.97, "color": (200, 60, 40), "anchors": [(1, 0), (1, 0)]})
                limit.setVisible(False)
                plot.addItem(limit, ignoreBounds=True)
                self.limits[name] = limit
                self._reach[name] = plot.plot(pen=_UNSEEN_PEN)  # keeps the limit in the y range
            instant = pg.InfiniteLine(angle=90, movable=False, pen=_INSTANT_PEN)
            instant.setVisible(False)
            plot.addItem(instant, ignoreBounds=True)
            self._instants.append(instant)
            crosshair = pg.InfiniteLine(angle=90, movable=False, pen=_CROSSHAIR_PEN)
            crosshair.setVisible(False)
            plot.addItem(crosshair, ignoreBounds=True)
            self._crosshairs.append(crosshair)
            self.plots[name] = plot
            self.curves[name] = plot.plot(pen=pen)
            self.curves[name].sigPlotChanged.connect(lambda _curve, name=name: self._extend_reach(name))
        self.time_plot = self.plots[HISTORY_SERIES[last_row]]
        for name in HISTORY_SERIES[:-1]:
            self.plots[name].setXLink(self.time_plot)
        self.plots["util_gpu_pct"].setYRange(0, 100, padding=0.02)
        self.ci.setContentsMargins(0, 2, 2, 0)
        self.ci.layout.setVerticalSpacing(2)
        self.setMinimumHeight(round(self.ci.effectiveSizeHint(Qt.SizeHint.MinimumSize).height()))
        self.hover_ts: float | None = None
        self.show_titles()
        self.scene().sigMouseMoved.connect(self.hover)

    def set_limits(self, limits: dict[str, float | None]) -> None:
        """Draw each series' limit where the GPU reports one (None or NaN: no line). Memory's
        range is 0 to its total, so that a full GPU reads as full."""
        for name, line in self.limits.items():
            value = limits.get(name)
            known = value is not None and math.isfinite(value) and value > 0
            line.setVisible(known)
            if known:
                line.setValue(value)
            self._extend_reach(name)
        total = limits.get("mem_used_gib")
        if total is not None and math.isfinite(total) and total > 0:
            self.plots["mem_used_gib"].setYRange(0, total, padding=0.02)
        else:
            self.plots["mem_used_gib"].enableAutoRange(axis="y")

    def mark_instant(self, ts: float | None) -> None:
        """A vertical line at the replayed instant on every plot (None: no line)."""
        for line in self._instants:
            line.setVisible(ts is not None)
            if ts is not None:
                line.setValue(ts)

    @property
    def instant(self) -> float | None:
        line = self._instants[0]
        return float(line.value()) if line.isVisible() else None

    def reset_axes(self) -> None:
        """Forget the last GPU's ranges and readings: its curves and limits go, the value axes
        auto-range again (utilization stays 0-100 %), so a new GPU never shows on an old scale."""
        for name, plot in self.plots.items():
            self.curves[name].setData([], [])
            if name != "util_gpu_pct":
                plot.enableAutoRange(axis="y")
        for line in self.limits.values():
            line.setVisible(False)
        for reach in self._reach.values():
            reach.setData([], [])
        self.read_at(None)

    def _extend_reach(self, name: str) -> None:
        """Span the limit's invisible twin over the curve's times, so that auto-range shows both
        the readings and the limit they run up against."""
        reach = self._reach.get(name)
        if reach is None:
            return
        xs, _ = self.curves[name].getOriginalDataset()
        line = self.limits[name]
        if not line.isVisible() or xs is None or len(xs) == 0:
            reach.setData([], [])
            return
        reach.setData([xs[0], xs[-1]], [line.value(), line.value()])

    def hover(self, scene_pos: QPointF) -> None:
        """Put the crosshair at the time under the mouse and read each plot there; off the
        plots, the titles come back."""
        inside = any(p.getViewBox().sceneBoundingRect().contains(scene_pos) for p in self.plots.values())
        ts = float(self.time_plot.getViewBox().mapSceneToView(scene_pos).x()) if inside else None
        self.read_at(ts)

    def read_at(self, ts: float | None) -> None:
        """Crosshair and readings at `ts` (None: hide them)."""
        self.hover_ts = ts
        for crosshair in self._crosshairs:
            crosshair.setVisible(ts is not None)
            if ts is not None:
                crosshair.setValue(ts)
        if ts is None:
            self.show_titles()
            return
        for name, curve in self.curves.items():
            title, unit = PLOTS[name]
            value, at = _value_at(curve, ts)
            reading = "no data" if value is None else f"{value:,.1f} {unit} at {local_time(at, with_date=False)}"
            self._titles[name].setText(f"{title}: {reading}")

    def show_titles(self) -> None:
        for name, (title, unit) in PLOTS.items():
            self._titles[name].setText(f"{title} ({unit})")

    def title(self, name: str) -> str:
        return self._titles[name].toPlainText()

    def leaveEvent(self, event: object) -> None:
        self.read_at(None)
        super().leaveEvent(event)


def _value_at(curve: pg.PlotDataItem, ts: float) -> tuple[float | None, float]:
    """The curve's reading nearest `ts` (None where it has no finite value there)."""
    xs, ys = curve.getOriginalDataset()
    if xs is None or len(xs) == 0:
        return None, ts
    i = int(np.clip(np.searchsorted(xs, ts), 1, len(xs) - 1)) if len(xs) > 1 else 0
    if i > 0 and abs(xs[i - 1] - ts) <= abs(xs[i] - ts):
        i -= 1
    value = float(ys[i])
    return (value if math.isfinite(value) else None), float(xs[i])


def _inner_title(plot: pg.PlotItem, palette: QPalette) -> pg.TextItem:
    """A title at the top of `plot`'s data area, fixed there whatever the view shows, on a veil
    of the background so that a curve passing under it does not hide it."""
    veil = QColor(palette.color(QPalette.ColorRole.Window))
    veil.setAlpha(200)
    title = pg.TextItem(color=palette.color(QPalette.ColorRole.PlaceholderText), anchor=(0.5, 0.0), fill=veil)
    view = plot.getViewBox()
    title.setParentItem(view)
    view.sigResized.connect(lambda box: title.setPos(box.width() / 2, 0))
    return title

"""Wallboard mode: the console on a screen across the room. Full screen; a large KPI strip, the
grid (with its legend) and the alert list only; every other control, tab, toolbar and the status
bar hidden; the grid cycles through the sites, one every few seconds. `gpuops window --wallboard`
starts a read-only console in it; View → Wallboard (F11) enters and leaves it in any console.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, QRect, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QTabWidget, QToolBar, QWidget

from gpuops.commands.window import DEFAULT_CYCLE_S
from gpuops.gui.grid.fleet_grid import FleetGrid
from gpuops.gui.window.kpi_strip import KpiStrip

#: How much larger the KPI strip's text is there.
KPI_SCALE = 2.2


@dataclass
class _Before:
    full_screen: bool
    geometry: QRect
    filter_text: str
    tab: int
    alert_view: int


class Wallboard(QObject):
    """Enters and leaves wallboard mode on `window`, whose parts are given; `action` is the
    checkable View → Wallboard entry (F11)."""

    def __init__(
        self, window: QMainWindow, *, kpi_strip: KpiStrip, grid: FleetGrid, tabs: QTabWidget, alerts: QWidget,
        alert_views: QTabWidget, hidden: tuple[QWidget, ...],
    ) -> None:
        super().__init__(window)
        self._window, self._kpi, self._grid, self._tabs, self._alerts = window, kpi_strip, grid, tabs, alerts
        self._alert_views = alert_views
        self._hidden = hidden
        self._before: _Before | None = None
        self._sites: list[str] = []
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.next_site)
        self.action = QAction("&Wallboard", window, checkable=True)
        self.action.setShortcut(QKeySequence("F11"))
        self.action.setToolTip("Full screen for a wall: large numbers, the grid and the alerts only, cycling through sites")
        self.action.toggled.connect(lambda on: self.enter() if on else self.leave())
        window.addAction(self.action)  # F11 works while the menu bar is hidden

    @property
    def active(self) -> bool:
        return self._before is not None

    @property
    def site(self) -> str | None:
        """The site on show now (None: all of them)."""
        return self._sites[0] if self.active and self._sites else None

    def enter(self, cycle_s: float = DEFAULT_CYCLE_S) -> None:
        if self.active:
            return
        window = self._window
        self._before = _Before(
            window.isFullScreen(), window.geometry(), self._grid.filter_edit.text(),
            self._tabs.currentIndex(), self._alert_views.currentIndex(),
        )
        for widget in self._chrome():
            widget.hide()
        self._grid.set_controls_visible(False)
        self._tabs.setCurrentWidget(self._alerts)
        self._tabs.tabBar().hide()
        self._alert_views.setCurrentIndex(0)  # the active alerts, not history, timeline or rules
        self._alert_views.tabBar().hide()
        self._kpi.set_scale(KPI_SCALE)
        self._grid.fill_when_filtered = True  # each site fills the wall
        window.showFullScreen()
        screen = window.screen()
        if screen is not None:  # without a window manager full screen is only a wish: take the screen
            window.setGeometry(screen.geometry())
        self._sites = []
        self._timer.start(max(1, round(cycle_s * 1000)))
        self.next_site()
        if not self.action.isChecked():
            self.action.setChecked(True)

    def leave(self) -> None:
        before, self._before = self._before, None
        if before is None:
            return
        self._timer.stop()
        for widget in self._chrome():
            widget.show()
        self._grid.set_controls_visible(True)
        self._tabs.tabBar().show()
        self._tabs.setCurrentIndex(before.tab)
        self._alert_views.tabBar().show()
        self._alert_views.setCurrentIndex(before.alert_view)
        self._kpi.set_scale(1.0)
        self._kpi.set_caption("")
        self._grid.fill_when_filtered = False
        self._grid.set_filter(before.filter_text)
        if not before.full_screen:
            self._window.showNormal()
            self._window.setGeometry(before.geometry)
        if self.action.isChecked():
            self.action.setChecked(False)

    def next_site(self) -> None:
        """Show the next site (every site in turn; a fleet of one site stays whole)."""
        sample = getattr(self._window, "last_sample", None)
        sites = sorted({gpu.site for gpu in sample.gpus if gpu.site}) if sample is not None else []
        if len(sites) < 2:
            self._sites = []
            self._grid.set_filter("")
            self._kpi.set_caption("")
            return
        current = self._sites[0] if self._sites else None
        following = [s for s in sites if current is None or s > current] or sites
        self._sites = [following[0]]
        self._grid.set_filter(f"site:{following[0]}")
        place = f"{sites.index(following[0]) + 1} of {len(sites)}"
        self._kpi.set_caption(f"Grid: site {following[0]} ({place}) · counts: whole fleet")

    def _chrome(self) -> list[QWidget]:
        window = self._window
        return [window.menuBar(), window.statusBar(), *window.findChildren(QToolBar), *self._hidden]

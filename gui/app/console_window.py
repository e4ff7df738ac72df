"""The composition root: the console window with its alerts and customers consoles.

`MainWindow` shows the fleet and knows nothing of alerts or customers; this builds the window,
then each console on the window's narrow `ConsoleHost`, and hands them to the window so that
they stop when it closes. `gpuops window` and the tests open this.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QMenu, QWidget

from gpuops.core.snapshot import holders_at
from gpuops.core.sources.base import TelemetrySource
from gpuops.gui.alerts.console import AlertConsole
from gpuops.gui.customers.console import AllocationConsole
from gpuops.gui.snapshot.export import ConsoleState
from gpuops.gui.window.main_window import APP_TITLE, MainWindow
from gpuops.gui.window.wallboard import Wallboard


class ConsoleWindow(MainWindow):
    """`MainWindow` plus `alerts` and `allocations`; the options are MainWindow's, but
    `alertmanager_url` (the Alerts tab also shows that Alertmanager's alerts and silences)."""

    def __init__(
        self,
        open_source: Callable[[], TelemetrySource],
        interval_s: float,
        *,
        history_db: Path | None = None,
        read_only: bool = False,
        demo_seed: int | None = None,
        alertmanager_url: str | None = None,
        parent: QWidget | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            open_source, interval_s, history_db=history_db, read_only=read_only, demo_seed=demo_seed, parent=parent, **options
        )
        host, recorder = self.console_host(), self.ops.recorder
        self.alerts = AlertConsole(
            host, history_db, app_title=APP_TITLE, read_only=read_only, recorder=recorder, alertmanager_url=alertmanager_url
        )
        self.allocations = AllocationConsole(host, history_db, read_only=read_only, recorder=recorder)
        self.add_console(self.alerts)
        self.add_console(self.allocations)
        self.wallboard = Wallboard(
            self, kpi_strip=self.kpi_strip, grid=self.grid, tabs=self.ops.tabs, alerts=self.alerts.tab,
            alert_views=self.alerts.tab.views, hidden=(self.ops.replay_bar,),
        )
        menus = self.menuBar()
        menus.insertMenu(menus.actions()[-1], QMenu("&View", self)).menu().addAction(self.wallboard.action)
        self.window_actions.exporter.console_state = self.console_state

    def console_state(self) -> ConsoleState:
        """What File → Export snapshot adds to the sample: the alerts the Alerts tab shows, the
        holders by the book the Customers tab shows, the health the grid shows."""
        alerts, book, sample, graded = self.alerts.tab.snapshot, self.allocations.book, self.last_sample, self.ops.assessment
        return ConsoleState(
            alerts=None if alerts is None else tuple(alerts.active),
            holders=None if book is None or sample is None else holders_at(book.index, sample.uuids, time.time()),
            health=None if graded is None else graded.health,
        )

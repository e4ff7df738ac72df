"""Alerts in the console window: the worker, the Alerts tab, grid marks, titles and the tray,
wired together so that the main window needs two lines (create, stop).

Whoever records the history evaluates the rules: the console's `HistoryRecorder` (through the
same poll pipeline as `gpuops collect`) when no collector runs, else the collector; this console
reads what they stored, again after each poll the recorder stores. Without a history database there are
no alerts, and the tab says why.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject

from gpuops.core.alerts.model import Severity
from gpuops.gui.alerts.alertmanager_view import AlertmanagerWorker
from gpuops.gui.alerts.tab import AlertsTab, WindowTitleBadge
from gpuops.gui.alerts.worker import AlertSnapshot, AlertWorker
from gpuops.gui.app.tray import Notifier, TrayNotifier
from gpuops.gui.grid.alert_marks import marks_of
from gpuops.gui.window.host import ConsoleHost
from gpuops.gui.workers.history_recorder import HistoryRecorder

log = logging.getLogger("gpuops.gui.alerts")

STATUS_MESSAGE_MS = 15_000


def alert_marks(snapshot: AlertSnapshot) -> dict[str, Severity]:
    """GPU uuid -> worst severity among its firing alerts that want attention (not muted)."""
    return marks_of(snapshot.active)


class AlertConsole(QObject):
    """The Alerts tab and everything around it, on `host` (see the module docstring);
    `recorder`: the console's own history recorder, if it has one; `alertmanager_url`: the
    Alertmanager whose alerts and silences the tab shows too."""

    def __init__(
        self,
        host: ConsoleHost,
        history_db: Path | None,
        *,
        app_title: str,
        read_only: bool = False,
        recorder: HistoryRecorder | None = None,
        notifier: Notifier | None = None,
        worker: AlertWorker | None = None,
        alertmanager_url: str | None = None,
    ) -> None:
        super().__init__(host.widget)
        self._host = host
        if worker is None and history_db is not None:
            worker = AlertWorker(history_db, self, read_only=read_only)
        self.worker = worker
        self.alertmanager = None if alertmanager_url is None else AlertmanagerWorker(alertmanager_url, self)
        self.tab = AlertsTab(worker, read_only=read_only, alertmanager=self.alertmanager)
        tabs = host.tabs
        self._tab_index = tabs.addTab(self.tab, self.tab.title)
        tabs.setTabToolTip(self._tab_index, "Active alerts, history, a GPU's alerts over time, silences, rules")
        self.badge = WindowTitleBadge(host.widget, app_title)
        self.notifier: Notifier = notifier or TrayNotifier(self._raise_window, self._status_message, self)
        self.tab.titleChanged.connect(lambda title: tabs.setTabText(tabs.indexOf(self.tab), title))
        self.tab.countsChanged.connect(self.badge.set_counts)
        self.tab.gpuChosen.connect(host.select_gpu)
        host.grid.gpuSelected.connect(self.tab.set_gpu)
        host.replay_alerts.connect(self.tab.show_replay)
        if worker is not None:
            worker.snapshotReady.connect(self._snapshot)
            worker.notificationDue.connect(self.notifier.notify)
            if recorder is not None:
                recorder.outcomeReady.connect(lambda _outcome: worker.refresh())

    def _snapshot(self, snapshot: AlertSnapshot) -> None:
        self._host.grid.set_alert_marks(alert_marks(snapshot))
        self.notifier.show_worst(snapshot.worst())

    def _raise_window(self) -> None:
        self._host.bring_to_front()
        self._host.tabs.setCurrentWidget(self.tab)

    def _status_message(self, text: str) -> None:
        self._host.show_status(f"⚠ {text}", STATUS_MESSAGE_MS)

    def stop(self) -> None:
        if self.worker is not None and not self.worker.stop():
            log.warning("the alerts worker did not finish in time; the last alert writes may be lost")
        if self.alertmanager is not None and not self.alertmanager.stop():
            log.warning("the Alertmanager worker did not finish in time")

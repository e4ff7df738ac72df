"""The Alerts tab's Alertmanager view (`--alertmanager URL`): the alerts Alertmanager holds (those
Prometheus fires, and gpuops' own when a collector forwards them) and its silences, shared with
on-call; silences made in the console go there too.

`AlertmanagerWorker` does every HTTP call on its own thread (`core.alerts.alertmanager_api`, with
a deadline) and answers through a `Bridge`, so a slow or dead Alertmanager never blocks the GUI
thread; when it cannot answer the view shows nothing and says why.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from gpuops.core.alerts.alertmanager_api import AlertmanagerClient, AlertmanagerError, AmAlert, AmSilence
from gpuops.core.alerts.silences import Matcher
from gpuops.gui.alerts.model import when
from gpuops.gui.workers.bridge import Bridge

log = logging.getLogger("gpuops.gui.alerts")

#: Alertmanager is read again this often (and after each silence made or expired here).
REFRESH_S = 10.0
STOP_WAIT_S = 1.0
STOP_POLL_S = 0.05
VIEW_TITLE = "Alertmanager"


@dataclass(frozen=True)
class AmState:
    """What Alertmanager held at `read_at`; `problem` says why it is empty when it could not answer."""

    url: str
    alerts: tuple[AmAlert, ...]
    silences: tuple[AmSilence, ...]
    read_at: float
    problem: str | None = None

    def active(self) -> int:
        """Alerts neither silenced nor inhibited, whatever their severity label."""
        return sum(1 for alert in self.alerts if alert.state == "active")


@dataclass(frozen=True)
class AmActionResult:
    ok: bool
    message: str


class AlertmanagerWorker(QObject):
    """Reads and writes Alertmanager off the GUI thread; create and use on the GUI thread."""

    stateReady = Signal(object)  # AmState
    actionDone = Signal(object)  # AmActionResult

    def __init__(self, url: str, parent: QObject | None = None, *, timeout_s: float | None = None,
                 refresh_s: float = REFRESH_S) -> None:
        super().__init__(parent)
        self.url = url
        self.client = AlertmanagerClient(url) if timeout_s is None else AlertmanagerClient(url, timeout_s=timeout_s)
        self._state_bridge: Bridge[AmState] = Bridge(self.stateReady.emit)
        self._action_bridge: Bridge[AmActionResult] = Bridge(self.actionDone.emit)
        self._jobs: queue.Queue[tuple | None] = queue.Queue()
        self._refresh_queued = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpuops-alertmanager-view", daemon=True)
        self._thread.start()
        self._timer = QTimer(self)
        self._timer.setInterval(round(refresh_s * 1000))
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    def refresh(self) -> None:
        """Read alerts and silences again (a read already queued is not repeated)."""
        if not self._refresh_queued.is_set():
            self._refresh_queued.set()
            self._jobs.put(("refresh",))

    def create_silence(self, matchers: Sequence[str], starts_at: float, ends_at: float, comment: str) -> None:
        self._jobs.put(("silence", tuple(matchers), starts_at, ends_at, comment))

    def expire_silence(self, silence_id: str) -> None:
        self._jobs.put(("expire", silence_id))

    def stop(self) -> bool:
        """End the thread, aborting a request in progress; False if it did not end in time."""
        self._timer.stop()
        self._state_bridge.close()
        self._action_bridge.close()
        self._jobs.put(None)
        deadline = time.monotonic() + STOP_WAIT_S
        while True:  # again and again: a request that began just as it closed is aborted by the next
            self.client.close()
            self._thread.join(STOP_POLL_S)
            if not self._thread.is_alive() or time.monotonic() >= deadline:
                return not self._thread.is_alive()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if job[0] == "refresh":
                self._refresh_queued.clear()
                self._state_bridge.send(self._read())
                continue
            try:
                message = self._act(job)
            except AlertmanagerError as exc:
                self._action_bridge.send(AmActionResult(False, str(exc)))
                continue
            self._action_bridge.send(AmActionResult(True, message))
            self.refresh()

    def _read(self) -> AmState:
        try:
            alerts, silences = self.client.alerts(), self.client.silences()
        except AlertmanagerError as exc:
            return AmState(self.url, (), (), time.time(), problem=str(exc))
        return AmState(self.url, tuple(alerts), tuple(silences), time.time())

    def _act(self, job: tuple) -> str:
        if job[0] == "silence":
            _, texts, starts_at, ends_at, comment = job
            silence_id = self.client.create_silence([Matcher.parse(t) for t in texts], starts_at, ends_at, comment)
            return f"Alertmanager silence {silence_id} made"
        self.client.expire_silence(job[1])
        return f"Alertmanager silence {job[1]} expired"


_ALERT_ROLE = Qt.ItemDataRole.UserRole
_COLUMNS = ("Severity", "State", "Since", "Rule", "Node", "GPU", "Summary")
_WIDTHS = (80, 150, 150, 180, 110, 150)


class AlertmanagerView(QWidget):
    """Alertmanager's alerts, with a line saying where they come from or why there are none."""

    titleChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state: AmState | None = None
        self.title = VIEW_TITLE
        self.status = QLabel("Reading Alertmanager…")
        self.status.setWordWrap(True)
        self.alerts = QTreeWidget()
        self.alerts.setHeaderLabels(list(_COLUMNS))
        self.alerts.setRootIsDecorated(False)
        for column, width in enumerate(_WIDTHS):
            self.alerts.header().resizeSection(column, width)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.alerts, 1)

    def selected(self) -> AmAlert | None:
        item = self.alerts.currentItem()
        return None if item is None else item.data(0, _ALERT_ROLE)

    def show_state(self, state: AmState) -> None:
        self.state = state
        kept = self.selected()
        self.alerts.clear()
        for alert in state.alerts:
            muted = alert.silenced_by or alert.inhibited_by
            state_text = alert.state + (f" by {', '.join(muted)}" if muted else "")
            item = QTreeWidgetItem([
                alert.severity or "-", state_text, when(alert.started_at) if alert.started_at else "-", alert.rule,
                alert.node or "-", alert.gpu_uuid or alert.gpu_index or "-", alert.summary,
            ])
            item.setData(0, _ALERT_ROLE, alert)
            self.alerts.addTopLevelItem(item)
            if kept is not None and alert.fingerprint == kept.fingerprint:
                self.alerts.setCurrentItem(item)
        if state.problem is not None:
            self.status.setStyleSheet("color: #b00020;")
            self.status.setText(f"No alerts shown: {state.problem}")
        else:
            self.status.setStyleSheet("")
            self.status.setText(f"{len(state.alerts)} alerts in Alertmanager {state.url}, read {when(state.read_at)}")
        active = state.active()
        title = f"{VIEW_TITLE} ({active})" if active else VIEW_TITLE if state.problem is None else f"{VIEW_TITLE} (!)"
        if title != self.title:
            self.title = title
            self.titleChanged.emit(title)

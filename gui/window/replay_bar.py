"""Fleet replay: a slider over the recorded history; the grid and the KPI strip show the fleet as
it was then, under a banner "Replay: 2026-12-02 06:22:00 UTC — Live" (Live goes back).

The bar asks the history loader for the recorded time span when opened, and for the fleet at
the slider's instant when it settles; `replaySample` carries that FleetSample to the window,
`liveRequested` asks to go back to live data.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

from gpuops.core.alerts.model import Alert, AlertState
from gpuops.core.alerts.persistence import AlertStore
from gpuops.core.store import StoreError
from gpuops.core.store.connection import open_read_only
from gpuops.core.telemetry import FleetSample
from gpuops.core.timefmt import local_time, utc_time
from gpuops.gui.workers.history_loader import HistoryLoader

REPLAY_RESOURCE = "replay"
SPAN_RESOURCE = "replay-span"
_STEPS = 1000
_SETTLE_MS = 150
REPLAY_STYLE = "background: #fff0cc; color: #4a3b00; font-weight: bold; padding: 2px 6px;"


def replay_label(ts: float) -> str:
    return f"Replay: {utc_time(ts)}"


def replay_banner(ts: float) -> str:
    """"Replay: 2026-12-02 06:22:00 UTC — Live", where Live is one click back."""
    return f"{replay_label(ts)} — <a href='live'>Live</a>"


def alerts_at(db_path: Path, t: float) -> tuple[Alert, ...] | None:
    """The alerts active at `t` as they stood then (pending or firing, not yet ended; muted as they
    are now), from the history's alert table; None where that table cannot be read (no local
    history, as for a Prometheus history without one). Runs on the loader's worker."""
    try:
        conn, _ = open_read_only(db_path)
    except (StoreError, sqlite3.Error, OSError):
        return None
    try:
        alerts = AlertStore(conn, read_only=True).history(since=t, until=t, limit=None)
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    then = []
    for alert in alerts:
        if alert.pending_at > t or (alert.ended_at is not None and alert.ended_at <= t):
            continue
        firing = alert.started_at is not None and alert.started_at <= t
        then.append(replace(
            alert, state=AlertState.FIRING if firing else AlertState.PENDING, started_at=alert.started_at if firing else None,
            ended_at=None,
        ))
    return tuple(then)


class ReplayBar(QWidget):
    replaySample = Signal(object)  # FleetSample
    #: (instant, the alerts active then or None where they cannot be read), emitted before
    #: replaySample; None when back to live.
    replayAlerts = Signal(object)
    liveRequested = Signal()

    def __init__(self, loader: HistoryLoader | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.open_button = QPushButton("Replay…")
        self.open_button.setToolTip("Show the whole fleet as it was at a past instant (from the history)")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, _STEPS)
        self.slider.setToolTip("Drag to choose the instant; the grid shows the fleet as recorded then")
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.AutoText)
        self.label.linkActivated.connect(lambda _link: self.back_to_live())
        self.live_button = QPushButton("Back to live")
        self.live_button.setToolTip("Show live data again (Esc)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.open_button)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)
        layout.addWidget(self.live_button)
        self._loader = loader
        self._span: tuple[float, float] | None = None
        self._active = False
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(_SETTLE_MS)
        self._settle.timeout.connect(self._request_instant)
        self.slider.valueChanged.connect(lambda _: self._settle.start())
        self.open_button.clicked.connect(self.open)
        self.live_button.clicked.connect(self.back_to_live)
        if loader is None:
            self.open_button.setEnabled(False)
            self.open_button.setToolTip("Replay needs the history (the console was started with --no-history)")
        else:
            loader.loaded.connect(self._loaded)
            loader.failed.connect(self._failed)
        self._show_controls(False)

    @property
    def active(self) -> bool:
        """True while the grid shows the past."""
        return self._active

    def _show_controls(self, visible: bool) -> None:
        self.slider.setVisible(visible)
        self.live_button.setVisible(visible)
        self.label.setStyleSheet(REPLAY_STYLE if visible and self._active else "")

    def open(self) -> None:
        """Ask for the recorded span; the slider appears when it is known."""
        if self._loader is None:
            return
        self.label.setText("Reading the recorded span…")
        self._loader.request(SPAN_RESOURCE, lambda reader: reader.time_range())

    def instant(self) -> float | None:
        if self._span is None:
            return None
        first, last = self._span
        return first + (last - first) * self.slider.value() / _STEPS

    def show_instant(self, ts: float) -> None:
        """Move the slider to `ts` (within the recorded span) and replay it."""
        if self._span is None:
            return
        first, last = self._span
        t = min(max(ts, first), last)
        fraction = 0.0 if last <= first else (t - first) / (last - first)
        self.slider.blockSignals(True)
        self.slider.setValue(round(fraction * _STEPS))
        self.slider.blockSignals(False)
        self._request(t)  # exactly `ts`, not the slider's nearest step

    def _request_instant(self) -> None:
        t = self.instant()
        if t is not None:
            self._request(t)

    def _request(self, t: float) -> None:
        if self._loader is None:
            return
        db_path = self._loader.db_path
        self._loader.request(REPLAY_RESOURCE, lambda reader: (t, reader.fleet_at(t), alerts_at(db_path, t)))

    def back_to_live(self) -> None:
        was_active = self._active
        self._active = False
        self._settle.stop()
        self.label.setText("")
        self._show_controls(False)
        if was_active:
            self.replayAlerts.emit(None)
            self.liveRequested.emit()

    def _failed(self, resource: str, message: str) -> None:
        if resource in (SPAN_RESOURCE, REPLAY_RESOURCE):
            self.label.setText(f"Replay unavailable: {message}")

    def _loaded(self, resource: str, result: object) -> None:
        if resource == SPAN_RESOURCE:
            if result is None:
                self.label.setText("Nothing recorded yet")
                return
            assert isinstance(result, tuple)
            self._span = (float(result[0]), float(result[1]))
            self._show_controls(True)
            self.slider.blockSignals(True)
            self.slider.setValue(_STEPS)
            self.slider.blockSignals(False)
            self.label.setText(f"{local_time(self._span[0])} – {local_time(self._span[1])}")
            self.label.setToolTip(f"{utc_time(self._span[0])} – {utc_time(self._span[1])}")
        elif resource == REPLAY_RESOURCE:
            assert isinstance(result, tuple)
            t, sample, alerts = result
            if sample is None:
                self.label.setText(f"Nothing recorded near {local_time(t)}")
                return
            assert isinstance(sample, FleetSample)
            self._active = True
            self._show_controls(True)
            self.label.setText(replay_banner(sample.ts))
            self.label.setToolTip(f"The fleet as recorded at {local_time(sample.ts)} (local time); click Live to go back")
            self.replayAlerts.emit((sample.ts, alerts))
            self.replaySample.emit(sample)

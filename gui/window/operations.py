"""The operations views around the grid, and the history they read and (maybe) write.

`Operations` belongs to the main window. It takes each graded poll (health, per-GPU staleness:
see `gui.poll_grading`), holds the view tabs (GPU detail, node, fleet trends), the replay bar,
the keyboard shortcuts, and the history: a loader reading it off the GUI thread and, when no
`gpuops collect` writes the database, a recorder writing every poll on its own thread. Nothing
here blocks the GUI thread on SQLite: the per-poll work is a few numpy operations and a queue put.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal, SignalInstance
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QLabel, QMainWindow, QTabWidget

from gpuops.core.alerts.model import Alert
from gpuops.core.condition import conditions
from gpuops.core.health import HealthModel
from gpuops.core.sources.base import SourceError
from gpuops.core.sources.prometheus import PrometheusSpec
from gpuops.core.store import StoreError, WriterStatus, collector_running
from gpuops.core.telemetry import FleetSample, XidEvent
from gpuops.core.timefmt import local_time
from gpuops.gui.app.theme import follow_system_theme
from gpuops.gui.gpu.detail_panel import DetailPanel
from gpuops.gui.gpu.node_view import NodeView
from gpuops.gui.gpu.trends_view import TrendsView
from gpuops.gui.grid.alert_marks import marks_of
from gpuops.gui.grid.fleet_grid import FleetGrid
from gpuops.gui.live.fleet_index import FleetIndex
from gpuops.gui.live.poll_grading import GradedPoll
from gpuops.gui.live.recent_history import FleetHistory
from gpuops.gui.window.kpi_strip import FleetKpis, fleet_kpis
from gpuops.gui.window.replay_bar import ReplayBar, replay_label
from gpuops.gui.workers.history_loader import HistoryLoader
from gpuops.gui.workers.history_recorder import HistoryRecorder

log = logging.getLogger("gpuops.gui")

#: XID events remembered per GPU for the detail view's Live table.
XIDS_KEPT_PER_GPU = 100


@dataclass(frozen=True)
class Recording:
    """How the console records the history itself when no collector does: the poll interval (for
    the alert rules' durations) and the seed of a simulated fleet (its demo book is seeded)."""

    poll_interval_s: float
    demo_seed: int | None = None


@dataclass(frozen=True)
class LivePolls:
    """The window's live polls, for the recorder: each PollResult once drawn, each failed poll."""

    shown: SignalInstance
    failed: SignalInstance


class Operations(QObject):
    """See the module docstring. `history_db` None runs without history (Live only); `recording`
    None never writes it (--read-only: no recorder, so nothing is created, recorded or seeded).
    `history_prometheus`: the `prometheus:` source spec, whose server the plots, trends and replay
    read instead of `history_db` (which the console still records into)."""

    #: The KPIs to show (FleetKpis): the replayed instant's, and the last live poll's on the way back.
    replayKpis = Signal(object)

    def __init__(
        self, window: QMainWindow, grid: FleetGrid, detail: DetailPanel, history_points: int, history_db: Path | None, *,
        live: Callable[[], tuple[FleetSample, FleetIndex] | None], polls: LivePolls, recording: Recording | None,
        history_prometheus: str | None = None,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._live = live
        self._polls = polls
        self._recording = recording
        self.grid = grid
        self.detail = detail
        self.node_view = NodeView()
        self.trends = TrendsView(history_points)
        self.tabs = QTabWidget()
        self.tabs.addTab(detail, "GPU")
        self.tabs.addTab(self.node_view, "Node")
        self.tabs.addTab(self.trends, "Fleet trends")
        for i, tip in enumerate(
            (
                "The selected GPU (Ctrl+1)",
                "Every GPU of its node side by side (Ctrl+2)",
                "Fleet utilization, power and GPUs by state (Ctrl+3)",
            )
        ):
            self.tabs.setTabToolTip(i, tip)
        self.history_status = QLabel()
        self.history_db = history_db
        self.loader: HistoryLoader | None = None
        self.recorder: HistoryRecorder | None = None
        prometheus = _prometheus_spec(history_prometheus)
        if history_db is not None or prometheus is not None:
            self.loader = HistoryLoader(
                history_db or Path(), self, read_only=recording is None, prometheus=prometheus
            )
        if history_db is not None:
            self._start_recorder(history_db)
        self.detail.set_loader(self.loader)
        self._xids: dict[str, deque[XidEvent]] = {}
        self.detail.set_xid_memory(lambda uuid: tuple(self._xids.get(uuid, ())))
        self.trends.set_loader(self.loader)
        self.node_view.set_loader(self.loader)
        self.replay_bar = ReplayBar(self.loader)
        self.replay_bar.replayAlerts.connect(self._replay_marks)
        self.replay_bar.replaySample.connect(self._show_replay)
        self.replay_bar.liveRequested.connect(self._back_to_live)
        self._replay_index: FleetIndex | None = None
        self.assessment: GradedPoll | None = None
        self._shortcuts()
        follow_system_theme(window)

    # --- history ----------------------------------------------------------------------------

    def _start_recorder(self, db_path: Path) -> None:
        """Collect into the history ourselves unless a collector already does (or read-only)."""
        recording = self._recording
        if recording is None:
            self.history_status.setText("history: read-only")
            self.history_status.setToolTip(f"--read-only: this console reads {db_path} and never writes it")
            return
        try:
            running = collector_running(db_path)
        except StoreError as exc:
            self.history_status.setText(f"history: {exc}")
            return
        if running:
            self.history_status.setText("history: written by gpuops collect")
            self.history_status.setToolTip(f"A collector writes {db_path}; this console reads it")
            return
        recorder = HistoryRecorder(db_path, self, poll_interval_s=recording.poll_interval_s, demo_seed=recording.demo_seed)
        self.recorder = recorder
        # Live polls only, once the window has drawn them (see MainWindow.pollShown).
        self._polls.shown.connect(lambda result: recorder.record(result.sample))
        self._polls.failed.connect(recorder.source_failed)
        self.recorder.statusChanged.connect(self._writer_status)
        self.recorder.notice.connect(self._notice)
        self.history_status.setText("history: recording")
        self.history_status.setToolTip(f"This console writes every poll to {db_path}")

    def _writer_status(self, status: WriterStatus) -> None:
        if status.last_error:
            self.history_status.setText(f"⚠ history: {status.last_error}")
            self.history_status.setToolTip(f"{status.backlog_polls} polls wait in memory; {status.dropped_polls} dropped")
        else:
            last = "" if status.last_written_ts is None else f", last {local_time(status.last_written_ts, with_date=False)}"
            self.history_status.setText(f"history: recording{last}")

    def _notice(self, message: str) -> None:
        self.history_status.setText(message)
        self.history_status.setToolTip(message)

    def stop(self) -> None:
        if self.recorder is not None and not self.recorder.stop():
            log.warning("the history writer did not finish in time; the last polls may be lost")
        if self.loader is not None:
            self.loader.stop()

    # --- per poll ---------------------------------------------------------------------------

    def accept(self, sample: FleetSample, graded: GradedPoll) -> None:
        """Take in a poll, graded: remember its XIDs."""
        for event in sample.xid_events:
            self._xids.setdefault(event.uuid, deque(maxlen=XIDS_KEPT_PER_GPU)).append(event)
        self.assessment = graded

    def after_poll(self, sample: FleetSample, kpis: FleetKpis, history: FleetHistory) -> None:
        self.trends.append(sample.ts, kpis)
        self.node_view.refresh(history)

    @property
    def replaying(self) -> bool:
        return self.replay_bar.active

    def gpu_context(self, position: int) -> dict:
        """Health reason and staleness of GPU `position` for the detail panel."""
        a = self.assessment
        if a is None or position >= len(a.stale):
            return {}
        return {
            "reason": a.health.reasons[position],
            "stale": bool(a.stale[position]),
            "last_fresh_ts": float(a.last_fresh_ts[position]),
        }

    def show_node_of(self, sample: FleetSample, index: FleetIndex, history: FleetHistory, position: int) -> None:
        self.node_view.show_node(sample, index, history, sample.gpus[position].node)

    # --- replay -----------------------------------------------------------------------------

    def _show_replay(self, sample: FleetSample) -> None:
        if self._replay_index is None or not self._replay_index.matches(sample.gpus):
            self._replay_index = FleetIndex(sample.gpus)
        health = HealthModel().assess(sample)
        self.grid.set_replay(replay_label(sample.ts))
        self.grid.show_sample(sample, self._replay_index, health=health)
        self.replayKpis.emit(fleet_kpis(sample, conditions(health.level, sample.state, None)))
        self.detail.follow_replay(sample.ts)
        self.node_view.follow_replay(sample.ts)

    def _replay_marks(self, replayed: tuple[float, tuple[Alert, ...] | None] | None) -> None:
        """The grid's alert marks at the replayed instant (none where its alerts cannot be read)."""
        if replayed is not None:
            self.grid.alert_marks.show_replay(marks_of(replayed[1] or ()))

    def _back_to_live(self) -> None:
        if self.assessment is not None:
            self.replayKpis.emit(self.assessment.kpis)
        self.grid.alert_marks.show_replay(None)
        self.detail.follow_replay(None)
        self.node_view.follow_replay(None)
        self.grid.set_replay(None)
        shown = self._live()
        if shown is not None:
            live, index = shown
            a = self.assessment
            self.grid.show_sample(
                live, index, **({} if a is None else {"health": a.health, "stale": a.stale, "last_fresh_ts": a.last_fresh_ts})
            )

    # --- keyboard ---------------------------------------------------------------------------

    def _shortcuts(self) -> None:
        window = self._window

        def bind(keys: QKeySequence | str, action, what: str) -> None:
            shortcut = QShortcut(QKeySequence(keys), window)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(action)
            shortcut.setWhatsThis(what)

        bind(QKeySequence.StandardKey.Find, self.grid.focus_search, "Find a GPU")
        for i in range(self.tabs.count()):
            bind(f"Ctrl+{i + 1}", lambda i=i: self.tabs.setCurrentIndex(i), f"Show tab {i + 1}")
        bind("F5", self.refresh, "Read the history again and re-sort the grid")
        bind("Esc", self.escape, "Clear the selection, or leave replay")

    def refresh(self) -> None:
        self.detail.refresh_history()
        self.trends.refresh_history()
        self.grid.rearrange()

    def escape(self) -> None:
        if self.replay_bar.active:
            self.replay_bar.back_to_live()
        else:
            self.grid.clear_selection()


def _prometheus_spec(spec: str | None) -> PrometheusSpec | None:
    """The history's Prometheus; None when there is none, or the spec is bad (the source, which
    opens the same spec, says what is wrong with it)."""
    if spec is None:
        return None
    try:
        return PrometheusSpec.parse(spec)
    except SourceError:
        return None

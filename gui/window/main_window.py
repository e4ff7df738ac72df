"""The console window: KPIs on top, the fleet grid and the selected GPU side by side.

The window never talks to the source: a `Poller` does, on its own thread, and hands over
frozen samples. When the source fails or stops answering, the window says so plainly and keeps
showing the last data, greyed out, until fresh data arrives.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMainWindow, QSplitter, QVBoxLayout, QWidget

from gpuops.core.sources.base import TelemetrySource
from gpuops.core.telemetry import FleetSample
from gpuops.core.timefmt import local_time, utc_time
from gpuops.gui.gpu.detail_panel import DetailPanel
from gpuops.gui.grid.fleet_grid import FleetGrid
from gpuops.gui.live.fleet_index import FleetIndex
from gpuops.gui.live.poll_grading import PollGrader
from gpuops.gui.live.poller import Poller, PollResult, SourceInfo
from gpuops.gui.live.recent_history import FleetHistory
from gpuops.gui.window.actions import install_window_actions
from gpuops.gui.window.host import WindowHost
from gpuops.gui.window.kpi_strip import KpiStrip
from gpuops.gui.window.operations import LivePolls, Operations, Recording

log = logging.getLogger("gpuops.gui")

APP_TITLE = "gpuops"
SIMULATED_TITLE = "Simulated fleet"
SIMULATED_TEXT = "Simulated fleet: these GPUs and their readings are generated, not read from hardware."
#: How much history every GPU keeps in memory for the plots.
HISTORY_S = 600.0
#: Upper bound on points kept per GPU, whatever the poll interval.
HISTORY_POINTS_MAX = 3600

_SIMULATED_STYLE = "background: #fff3c4; color: #4a3b00; padding: 4px 8px; border: 1px solid #e0c060;"
_ERROR_STYLE = "background: #fde0e0; color: #6b0000; padding: 4px 8px; border: 1px solid #d08080;"


class Stoppable(Protocol):
    """A part built around the window (a console) that ends its work when the window closes."""

    def stop(self) -> None: ...


def _banner(style: str) -> QLabel:
    label = QLabel()
    label.setStyleSheet(style)
    label.setWordWrap(True)
    label.setVisible(False)
    return label


class MainWindow(QMainWindow):
    """Create with a callable that opens the source (it runs on the worker), then `start()`.
    `read_only`: never write the history; `demo_seed`: the seed of a simulated fleet, whose demo
    customers are seeded into an empty book while the console records the history itself.
    The window knows nothing of alerts or customers: the composition root
    (`gui.app.console_window`) builds those consoles on `console_host()` and hands them to
    `add_console` so they stop with the window."""

    #: A live poll (PollResult from the poller), queued behind the window's own handling and
    #: repaint of it. The consumers that work on their own threads (history writer, alerts,
    #: allocations) start on it then: their Python work holds the GIL, and started alongside the
    #: repaint it stalled the event loop for 100 ms and more at 10,000 GPUs.
    pollShown = Signal(object)

    def __init__(
        self,
        open_source: Callable[[], TelemetrySource],
        interval_s: float,
        *,
        stall_after_s: float | None = None,
        history_s: float = HISTORY_S,
        history_db: Path | None = None,
        read_only: bool = False,
        demo_seed: int | None = None,
        history_prometheus: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{APP_TITLE} — opening the telemetry source…")
        self.grader = PollGrader(interval_s)
        self.poller = Poller(open_source, interval_s, self, stall_after_s=stall_after_s, grade=self.grader.grade)
        self._history_points = max(2, min(HISTORY_POINTS_MAX, math.ceil(history_s / interval_s)))

        self.simulated_banner = _banner(_SIMULATED_STYLE)
        self.error_banner = _banner(_ERROR_STYLE)
        self.kpi_strip = KpiStrip()
        self.grid = FleetGrid()
        self.detail = DetailPanel(self._history_points)
        self.ops = Operations(
            self, self.grid, self.detail, self._history_points, history_db, live=self._live_view,
            polls=LivePolls(self.pollShown, self.poller.sourceFailed),
            recording=None if read_only else Recording(interval_s, demo_seed), history_prometheus=history_prometheus,
        )
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.grid)
        splitter.addWidget(self.ops.tabs)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.simulated_banner)
        layout.addWidget(self.error_banner)
        figures = QHBoxLayout()  # one row: on a 768-px screen the GPU plots need the height
        figures.addWidget(self.kpi_strip)
        figures.addWidget(self.ops.replay_bar, 1)
        layout.addLayout(figures)
        layout.addWidget(splitter, 1)
        self.setCentralWidget(central)

        self.status_problem = QLabel()
        self.status_source = QLabel("source: opening…")
        self.status_interval = QLabel(f"every {interval_s:g} s")
        self.status_poll = QLabel("poll —")
        self.status_updated = QLabel("no data yet")
        status = self.statusBar()
        status.addWidget(self.status_problem, 1)
        for label in (self.ops.history_status, self.status_source, self.status_interval, self.status_poll, self.status_updated):
            status.addPermanentWidget(label)

        self._index: FleetIndex | None = None
        self._history: FleetHistory | None = None
        self._sample: FleetSample | None = None
        self._stale = False
        self._source_name = ""
        self._source_info: SourceInfo | None = None

        self.poller.sourceOpened.connect(self.show_source)
        self.poller.sampleReady.connect(self._live_poll)
        self.poller.sourceFailed.connect(self.show_problem)
        self.poller.stalled.connect(self.show_problem)
        self.grid.gpuSelected.connect(self.select_gpu)
        self.detail.gpuChosen.connect(self.select_gpu)
        self.kpi_strip.filterRequested.connect(self._filter_from_kpi)
        self.ops.replayKpis.connect(self.kpi_strip.show_kpis)  # the replayed instant's, then live again
        self.window_actions = install_window_actions(self, self, history_db)
        self._consoles: list[Stoppable] = []

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self.poller.start()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.poller.stop():
            log.warning("the telemetry source did not finish its last call; leaving it behind")
        self.ops.stop()
        for console in self._consoles:
            console.stop()
        super().closeEvent(event)

    # --- what the parts around the window get ----------------------------------------------

    def console_host(self) -> WindowHost:
        """The narrow interface a console works through (see `gui.window.host`)."""
        return WindowHost(
            widget=self, tabs=self.ops.tabs, grid=self.grid, detail=self.detail, poll_shown=self.pollShown,
            replay_alerts=self.ops.replay_bar.replayAlerts,
            last_sample=lambda: self._sample,
            show_status=lambda text, ms: self.statusBar().showMessage(text, ms), select_gpu=self.select_gpu,
            bring_to_front=self.bring_to_front,
        )

    def add_console(self, console: Stoppable) -> None:
        """Stop `console` when the window closes (after the poller and the history)."""
        self._consoles.append(console)

    def bring_to_front(self) -> None:
        """Show this window in front (another launch asked for the console, or a notification was clicked)."""
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()

    # --- what tests and the first-frame probe may read -------------------------------------

    def _live_view(self) -> tuple[FleetSample, FleetIndex] | None:
        """The live poll on show and its index (None before the first), for leaving replay."""
        return None if self._sample is None or self._index is None else (self._sample, self._index)

    @property
    def last_sample(self) -> FleetSample | None:
        return self._sample

    @property
    def source_info(self) -> SourceInfo | None:
        """What the open source said about itself (None until it opened)."""
        return self._source_info

    def gpu_history(self, uuid: str) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        """The recent history kept in memory for one GPU: (ts, one array per HISTORY_SERIES)."""
        if self._index is None or self._history is None:
            return None
        position = self._index.position(uuid)
        return None if position is None else self._history.gpu(position)

    @property
    def replay_available(self) -> bool:
        """Replay reads the history: not with --no-history."""
        return self.ops.replay_bar.open_button.isEnabled()

    def open_replay(self) -> None:
        if self.replay_available:
            self.ops.replay_bar.open()

    @property
    def stale(self) -> bool:
        """True while the data shown is not from the latest poll (failure or no answer)."""
        return self._stale

    # --- slots ---------------------------------------------------------------------------

    @Slot(object)
    def show_source(self, info: SourceInfo) -> None:
        self._source_name = info.name
        self._source_info = info
        self.status_source.setText(f"source: {info.name}")
        if info.simulated:
            self.setWindowTitle(f"{APP_TITLE} — {SIMULATED_TITLE} ({info.name})")
            self.simulated_banner.setText(info.notice or SIMULATED_TEXT)
            self.simulated_banner.setVisible(True)
        else:
            self.setWindowTitle(f"{APP_TITLE} — {info.name}")
            self.simulated_banner.setVisible(False)

    @Slot(object)
    def apply_result(self, result: PollResult) -> None:
        """Show one poll everywhere: the sample-handling path the soak test drives. The poller
        grades polls on its thread; a result handed over ungraded is graded here."""
        sample = result.sample
        graded = result.graded if result.graded is not None else self.grader.grade(sample)
        if graded.index is not self._index:
            index = graded.index
            self._history = (
                FleetHistory(index, self._history_points) if self._history is None else self._history.carried_to(index)
            )
            self._index = index
        assert self._history is not None
        self._history.append(sample, graded.series)
        self._sample = sample
        self.ops.accept(sample, graded)
        self._set_stale(False)
        self.error_banner.setVisible(False)
        if not self.ops.replaying:
            self.kpi_strip.show_kpis(graded.kpis)
            self.grid.show_sample(
                sample, graded.index, health=graded.health, stale=graded.stale, last_fresh_ts=graded.last_fresh_ts
            )
        self._show_selected(sample, graded.series)
        self.detail.show_least_healthy(sample, graded.health)
        self.ops.after_poll(sample, graded.kpis, self._history)
        self._show_poll_status(sample, result.duration_s)

    @Slot(object)
    def _live_poll(self, result: PollResult) -> None:
        self.apply_result(result)
        QTimer.singleShot(0, self, lambda: self.pollShown.emit(result))

    def _show_selected(self, sample: FleetSample, series: dict[str, np.ndarray]) -> None:
        uuid = self.detail.uuid
        if uuid is None:
            return
        assert self._index is not None
        position = self._index.position(uuid)
        if position is None:  # the GPU left the inventory
            self.detail.clear()
            self.grid.select(None)
            return
        self.detail.show_poll(
            sample, position, {name: float(column[position]) for name, column in series.items()}, **self.ops.gpu_context(position)
        )

    def _show_poll_status(self, sample: FleetSample, duration_s: float) -> None:
        local, utc = local_time(sample.ts, with_date=False), utc_time(sample.ts)
        self.status_updated.setText(f"updated {local}")
        self.status_updated.setToolTip(f"last poll at {utc}")
        self.status_poll.setText(f"poll {duration_s * 1000:.0f} ms")
        if sample.errors:
            more = f" (+{len(sample.errors) - 1} more)" if len(sample.errors) > 1 else ""
            self.status_problem.setText(f"⚠ {sample.errors[0]}{more}")
            self.status_problem.setToolTip("\n".join(sample.errors))
        else:
            self.status_problem.setText("")
            self.status_problem.setToolTip("")

    @Slot(str)
    def show_problem(self, message: str) -> None:
        """The source failed or is not answering: say so, keep the last data, greyed."""
        if self._sample is None:
            text = f"No data: {message}"
        else:
            local = local_time(self._sample.ts, with_date=False)
            text = f"No fresh data: {message}. Showing the last data, from {local}, greyed out."
        self.error_banner.setText(text)
        self.error_banner.setVisible(True)
        self.status_problem.setText(f"⚠ {message}")
        self.status_problem.setToolTip(message)
        self._set_stale(True)

    def _set_stale(self, stale: bool) -> None:
        self._stale = stale
        self.grid.set_stale(stale)
        self.kpi_strip.set_stale(stale)
        self.detail.set_stale(stale)

    @Slot(str)
    def _filter_from_kpi(self, text: str) -> None:
        """A KPI count clicked: show those GPUs; the same count again shows every GPU."""
        self.grid.set_filter("" if self.grid.filter_edit.text().strip() == text else text)

    @Slot(str)
    def select_gpu(self, uuid: str) -> None:
        """Show this GPU in the detail panel, with the history already kept for it."""
        if self._index is None or self._history is None or self._sample is None:
            return
        position = self._index.position(uuid)
        if position is None:
            return
        if self.grid.selected_uuid != uuid:
            self.grid.select(uuid)
        ts, series = self._history.gpu(position)
        self.detail.show_gpu(self._sample, position, ts, series, **self.ops.gpu_context(position))
        self.ops.show_node_of(self._sample, self._index, self._history, position)

"""The selected GPU up close: who it is, how healthy, its plots over a chosen range, its
processes, inventory, health counters, throttle reasons and XID events.

Live shows the minutes kept in memory, one more point per poll. Any other range is read from the
history database by the history loader (off the GUI thread); zooming or panning a history plot
asks for the visible range again, and only the newest answer is drawn.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable, Iterable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gpuops.core.health import FleetHealth, Health
from gpuops.core.telemetry import FleetSample, GpuState, XidEvent
from gpuops.core.timefmt import local_time, utc_time
from gpuops.core.units import DEFAULT_UNITS, DisplayUnits
from gpuops.core.xid_catalog import describe_xid
from gpuops.gui.gpu.detail_plots import PLOTS, DetailPlots
from gpuops.gui.gpu.facts import HEALTH_COUNTERS, counter_text, inventory_rows, throttle_lines
from gpuops.gui.gpu.history_queries import GpuHistory, GpuLoss, gpu_history, gpu_loss
from gpuops.gui.gpu.process_model import ProcessTableModel
from gpuops.gui.gpu.text import gpu_location, gpu_readings, staleness_text
from gpuops.gui.gpu.time_range import CUSTOM, TimeRange, TimeRangePicker
from gpuops.gui.live.recent_history import HISTORY_SERIES, TraceRing
from gpuops.gui.workers.history_loader import HistoryLoader

_LIVE_PEN = pg.mkPen((33, 110, 180), width=1)
_HISTORY_PEN = pg.mkPen((0, 150, 110), width=1)
_STALE_PEN = pg.mkPen((160, 160, 160), width=1)
_PROMPT = "Click a GPU in the grid to see its history and processes."
#: How many GPUs the empty state lists.
LEAST_HEALTHY_SHOWN = 8
#: The processes and health tabs give way to the plots down to this (their tables scroll).
MIN_TABLES_HEIGHT_PX = 64
#: The resource name of this panel's history requests.
DETAIL_RESOURCE = "detail"
#: ... of a lost GPU's loss, and of the history's span (for the custom range).
LOSS_RESOURCE = "detail-loss"
SPAN_RESOURCE = "detail-span"
#: After a zoom or pan settles this long, the visible range is read again.
_RELOAD_AFTER_MS = 250
_XID_HEADERS = ("Time", "XID", "Meaning", "Recommended action")
#: In replay the plots show this much around the replayed instant.
REPLAY_SPAN_S = 3600.0


def least_healthy_text(sample: FleetSample, health: FleetHealth, limit: int = LEAST_HEALTHY_SHOWN) -> str:
    """The `limit` least healthy GPUs of `sample` as rich text with a link (its uuid) for each."""
    unhealthy = np.flatnonzero(health.level > Health.OK)
    if not len(unhealthy):
        return f"All {len(sample):,} GPUs are healthy. Click one in the grid to see its history and processes."
    worst = sorted(unhealthy.tolist(), key=lambda i: (-int(health.level[i]), sample.gpus[i].node, sample.gpus[i].index))
    rows = [
        f"<li><a href='{html.escape(sample.gpus[i].uuid)}'>{html.escape(gpu_location(sample, i))}</a> — "
        f"{health.of(i).label}: {html.escape(health.reasons[i])}</li>"
        for i in worst[:limit]
    ]
    more = f"<p>… and {len(worst) - limit:,} more: filter the grid with <i>health:warning</i>.</p>" if len(worst) > limit else ""
    return (
        f"<p><b>{len(worst):,} of {len(sample):,} GPUs need attention</b> (least healthy first). "
        f"Choose one, or click any GPU in the grid.</p><ul>{''.join(rows)}</ul>{more}"
    )


def _reported(sample: FleetSample, metric: str, position: int, inventory: float | None) -> float:
    """This poll's `metric` for the GPU, else what its inventory says (NaN: neither knows)."""
    value = float(sample.metrics[metric][position])
    if math.isfinite(value):
        return value
    return float(inventory) if inventory else math.nan


def _table(headers: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(len(headers) - 1, QHeaderView.ResizeMode.Stretch)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    return table


def _fill(table: QTableWidget, rows: list[tuple[str, ...]], tooltips: list[tuple[str, ...]] | None = None) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            if tooltips is not None and tooltips[r][c]:
                item.setToolTip(tooltips[r][c])
            table.setItem(r, c, item)


class DetailPanel(QWidget):
    """Shows one GPU; the owner feeds it history on selection and each new poll after that.
    With no GPU chosen it lists the least healthy GPUs, as links, instead of empty plots."""

    #: A GPU's uuid, chosen from the list of least healthy GPUs.
    gpuChosen = Signal(str)

    def __init__(self, history_capacity: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = QLabel(_PROMPT)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.header.setWordWrap(True)
        self.loss_text = QLabel()
        self.loss_text.setWordWrap(True)
        self.loss_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.loss_text.hide()  # only for a lost GPU
        self.picker = TimeRangePicker()
        self.history_status = QLabel()
        self.history_status.setWordWrap(True)
        self.history_status.hide()  # shown while it has something to say: its line is plot room
        self.plots = DetailPlots(_LIVE_PEN)
        self.plots.setToolTip("Live: the last minutes in memory. Other ranges: drag to pan, wheel to zoom; the history reloads.")

        self.process_model = ProcessTableModel()
        self.process_table = QTableView()
        self.process_table.setModel(self.process_model)
        self.process_table.verticalHeader().setVisible(False)
        self.process_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.process_table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.inventory_table = _table(("Fact", "Value"))
        self.health_text = QLabel()
        self.health_text.setWordWrap(True)
        self.health_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.counter_table = _table(("Counter", "Now", "Change over range"))
        self.xid_table = _table(_XID_HEADERS)
        health = QWidget()
        health_layout = QVBoxLayout(health)
        health_layout.setContentsMargins(0, 0, 0, 0)
        health_layout.addWidget(self.health_text)
        health_layout.addWidget(self.counter_table, 1)
        health_layout.addWidget(QLabel("XID events and GPU losses"))
        health_layout.addWidget(self.xid_table, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.process_table, "Processes")
        self.tabs.addTab(health, "Health")
        self.tabs.addTab(self.inventory_table, "Inventory")
        self.tabs.setTabToolTip(1, "Health findings, clock throttle reasons, error counters and XID events")
        self.tabs.setMinimumHeight(MIN_TABLES_HEIGHT_PX)  # its tables scroll; the plots keep their room

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.picker)
        top_layout.addWidget(self.history_status)
        top_layout.addWidget(self.plots, 1)
        self._split = QSplitter(Qt.Orientation.Vertical)
        self._split.addWidget(top)
        self._split.addWidget(self.tabs)
        self._split.setStretchFactor(0, 3)
        self._split.setStretchFactor(1, 2)
        self.least_healthy = QLabel("Waiting for the first poll…")
        self.least_healthy.setTextFormat(Qt.TextFormat.RichText)
        self.least_healthy.setWordWrap(True)
        self.least_healthy.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.least_healthy.linkActivated.connect(self.gpuChosen)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.header)
        layout.addWidget(self.loss_text)
        layout.addWidget(self._split, 1)
        layout.addWidget(self.least_healthy, 1)
        self._split.hide()

        self._ring = TraceRing(history_capacity)
        self._uuid: str | None = None
        self._shown: tuple[FleetSample, int] | None = None
        self._stale = False
        self._gpu_stale = False
        self._reason = ""
        self._allocation = ""
        self.units = DEFAULT_UNITS
        self._last_fresh_ts: float | None = None
        self._live_xids: list[XidEvent] = []
        self._recent_xids: Callable[[str], Iterable[XidEvent]] = lambda uuid: ()
        self._loader: HistoryLoader | None = None
        self._history: GpuHistory | None = None
        self._loss: GpuLoss | None = None
        self._loss_asked: str | None = None  # the uuid whose loss was asked for
        self._range_before_replay: TimeRange | None = None
        self._range: TimeRange = self.picker.current
        self._reload = QTimer(self)
        self._reload.setSingleShot(True)
        self._reload.setInterval(_RELOAD_AFTER_MS)
        self._reload.timeout.connect(self._reload_visible)
        self._ignore_range_change = False
        self.picker.rangeChanged.connect(self.set_range)
        self.picker.customOpened.connect(self._ask_span)
        self.plots.time_plot.sigXRangeChanged.connect(self._x_range_changed)

    @property
    def uuid(self) -> str | None:
        return self._uuid

    @property
    def history(self) -> GpuHistory | None:
        """The history shown now (None in Live)."""
        return self._history

    def set_allocation(self, text: str) -> None:
        """Who holds the shown GPU ("customer: … · contract: …", or why it is busy unallocated)."""
        if text != self._allocation:
            self._allocation = text
            if self._shown is not None:
                self._show_facts(*self._shown)

    @property
    def allocation_text(self) -> str:
        return self._allocation

    def set_xid_memory(self, recent_xids: Callable[[str], Iterable[XidEvent]]) -> None:
        """Where to find the XID events seen before a GPU was selected (by UUID)."""
        self._recent_xids = recent_xids

    def set_loader(self, loader: HistoryLoader | None) -> None:
        """Read non-live ranges through `loader` (None: the console runs without history)."""
        if self._loader is not None:
            self._loader.loaded.disconnect(self._loaded)
            self._loader.failed.disconnect(self._failed)
        self._loader = loader
        if loader is not None:
            loader.loaded.connect(self._loaded)
            loader.failed.connect(self._failed)

    # --- feeding ----------------------------------------------------------------------------

    def show_gpu(
        self,
        sample: FleetSample,
        position: int,
        ts: np.ndarray,
        series: dict[str, np.ndarray],
        *,
        reason: str = "",
        stale: bool = False,
        last_fresh_ts: float | None = None,
    ) -> None:
        """Switch to GPU `position` of `sample`, starting from the history recorded for it."""
        uuid = sample.gpus[position].uuid
        if uuid != self._uuid:
            self._history = None
            self._loss = None
            self._loss_asked = None
            self.plots.reset_axes()
        self.least_healthy.hide()
        self._split.show()
        self._live_xids = list(self._recent_xids(uuid))
        self._uuid = uuid
        self._ring.load(ts, series)
        self._set_health(reason, stale, last_fresh_ts)
        if self._range.live:
            self._redraw_curves()
        else:
            self.refresh_history()
        self._show_facts(sample, position)
        self._show_loss(sample, position)

    def clear(self) -> None:
        self._uuid = None
        self._shown = None
        self._history = None
        self._loss = None
        self._loss_asked = None
        self.loss_text.hide()
        self.header.setText(_PROMPT)
        self._split.hide()
        self.least_healthy.show()
        self.process_model.set_processes(())
        for table in (self.inventory_table, self.counter_table, self.xid_table):
            table.setRowCount(0)
        self.health_text.setText("")
        for curve in self.plots.curves.values():
            curve.setData([], [])

    def show_least_healthy(self, sample: FleetSample, health: FleetHealth) -> None:
        """While no GPU is chosen: the worst GPUs of this poll, critical first, each a link."""
        if self._uuid is not None:
            return
        self.least_healthy.setText(least_healthy_text(sample, health))

    def show_poll(
        self,
        sample: FleetSample,
        position: int,
        values: dict[str, float],
        *,
        reason: str = "",
        stale: bool = False,
        last_fresh_ts: float | None = None,
    ) -> None:
        """This poll of the shown GPU: header, processes, and (in Live) one more point."""
        self._ring.append(sample.ts, values)
        self._set_health(reason, stale, last_fresh_ts)
        self._collect_xids(sample)
        if self._range.live:
            self._redraw_curves()
        self._show_facts(sample, position)
        self._show_loss(sample, position)

    def _set_health(self, reason: str, stale: bool, last_fresh_ts: float | None) -> None:
        self._reason, self._gpu_stale, self._last_fresh_ts = reason, stale, last_fresh_ts

    def _collect_xids(self, sample: FleetSample) -> None:
        self._live_xids.extend(e for e in sample.xid_events if e.uuid == self._uuid)

    def _show_facts(self, sample: FleetSample, position: int) -> None:
        self._shown = (sample, position)
        gpu = sample.gpus[position]
        state = sample.gpu_state(position).label
        stale = self._stale or self._gpu_stale or gpu.node in sample.stale_nodes
        if stale:
            last = self._last_fresh_ts if self._last_fresh_ts is not None else sample.ts
            state += f" — <span style='color:#b00020'>{staleness_text(last, time.time())}: numbers below are old</span>"
        health = self._reason or "ok"
        self.header.setText(
            f"<b>{gpu_location(sample, position)}</b><br>{gpu.uuid}<br>"
            + (f"<i>Live now; the plots show the hour around the replayed {utc_time(self.plots.instant)}</i><br>"
               if self.plots.instant is not None else "")
            + f"state: {state} · health: {health}<br>"
            + (f"{html.escape(self._allocation)}<br>" if self._allocation else "")
            + gpu_readings(sample, position, self.units)
        )
        self.process_model.set_processes(sample.processes[position])
        if self.tabs.currentIndex() != 0 or self.inventory_table.rowCount() == 0:
            self._show_details(sample, position)
        self.plots.set_limits({
            "mem_used_gib": _reported(sample, "mem_total_bytes", position, gpu.mem_total_bytes) / float(1 << 30),
            "power_w": _reported(sample, "power_limit_w", position, gpu.power_limit_w),
            "temp_c": gpu.slowdown_temp_c if gpu.slowdown_temp_c is not None else math.nan,
        })

    def follow_replay(self, ts: float | None) -> None:
        """In replay, plot the hour around the replayed instant `ts`, marked by a line; None
        (back to live): the range chosen before the replay again."""
        self.plots.mark_instant(ts)
        if self._shown is not None:
            self._show_facts(*self._shown)  # the header says it reads now, the plots then
        if ts is not None:
            if self._range_before_replay is None:
                self._range_before_replay = self._range
            self.picker.set_custom(ts - REPLAY_SPAN_S / 2, ts + REPLAY_SPAN_S / 2)
            return
        before, self._range_before_replay = self._range_before_replay, None
        if before is None:
            return
        if before.label == CUSTOM and before.start is not None and before.end is not None:
            self.picker.set_custom(before.start, before.end)
        else:
            self.picker.choose(before.label)

    # --- a lost GPU -------------------------------------------------------------------------

    @property
    def loss(self) -> GpuLoss | None:
        """The shown GPU's loss as the history records it (None: not lost, or not read yet)."""
        return self._loss

    def _show_loss(self, sample: FleetSample, position: int) -> None:
        """For a lost GPU, when it was lost, its last values and the XIDs before: asked of the
        history once per loss (off the GUI thread); without history, from the minutes in memory."""
        if sample.state[position] != GpuState.LOST:
            self._loss = None
            self._loss_asked = None
            self.loss_text.hide()
            return
        self.loss_text.show()
        uuid = sample.gpus[position].uuid
        if self._loader is None:
            self.loss_text.setText(self._loss_from_memory())
            return
        if self._loss_asked != uuid:
            self._loss_asked = uuid
            now = sample.ts
            self.loss_text.setText("<b>GPU lost.</b> Reading when it was lost from the history…")
            self._loader.request(LOSS_RESOURCE, lambda reader: gpu_loss(reader, uuid, now))

    def _loss_from_memory(self) -> str:
        ts, series = self._ring.window()
        answered = np.flatnonzero(np.any([np.isfinite(v) for v in series.values()], axis=0)) if len(ts) else []
        if not len(answered):
            return "<b>GPU lost.</b> History is off and no reading of it is in memory."
        row = int(answered[-1])
        values = {name: (float(v[row]) if math.isfinite(float(v[row])) else None) for name, v in series.items()}
        return (
            f"<b>GPU lost</b> after {local_time(float(ts[row]))} (history is off: the time of the loss is not recorded)."
            f"<br>Last reading: {_readings_text(values)}"
        )

    def _show_loaded_loss(self, loss: GpuLoss) -> None:
        self._loss = loss
        if loss.lost_ts is None:
            self.loss_text.setText(
                "<b>GPU lost.</b> The history records no loss of it: it was lost before recording began, "
                "or the history (Prometheus) keeps no events."
            )
            return
        last = (
            f"Last reading at {local_time(loss.last_ts, with_date=False)}: {_readings_text(loss.last_values)}"
            if loss.last_ts is not None else "No reading in the hour before."
        )
        if loss.xids:
            xids = ", ".join(
                f"XID {e.code} ({html.escape(describe_xid(e.code).mnemonic)}) at {local_time(e.ts, with_date=False)}"
                for e in loss.xids if e.code is not None
            )
            xid_text = f"XIDs in the day before: {xids}"
        else:
            xid_text = "No XID in the day before."
        self.loss_text.setText(f"<b>GPU lost at {local_time(loss.lost_ts)}</b><br>{last}<br>{xid_text}")
        self.loss_text.setToolTip(f"Lost at {utc_time(loss.lost_ts)}")

    def _ask_span(self) -> None:
        """Custom chosen: offer its fields the last recorded hour (the history may end before now)."""
        if self._loader is not None:
            self._loader.request(SPAN_RESOURCE, lambda reader: reader.time_range())

    def _show_details(self, sample: FleetSample, position: int) -> None:
        """Inventory, health findings and counters, throttle reasons, events."""
        _fill(self.inventory_table, inventory_rows(sample, position, self.units))
        throttle = throttle_lines(float(sample.metrics["throttle_reasons_mask"][position]))
        findings = self._reason or "no findings: healthy"
        self.health_text.setText(
            f"<b>Health:</b> {findings}<br><b>Clocks:</b> " + "<br>".join(throttle)
        )
        history = self._history
        rows = []
        for metric, label in HEALTH_COUNTERS.items():
            now = float(sample.metrics[metric][position])
            change = "— (choose a range)" if history is None else "— (not recorded)"
            if history is not None:
                first, last = history.counters.get(metric, (None, None))
                if first is not None and last is not None:
                    change = f"{last - first:+,.0f}"
            rows.append((label, counter_text(None if math.isnan(now) else now), change))
        _fill(self.counter_table, rows)
        self._show_events()

    def _show_events(self) -> None:
        rows, tips = [], []
        if self._history is not None:
            events = [(e.ts, e.kind, e.code) for e in self._history.events]
        else:
            events = [(e.ts, "xid", e.code) for e in self._live_xids]
        for ts, kind, code in sorted(events, reverse=True):
            if kind == "xid" and code is not None:
                info = describe_xid(code)
                rows.append((local_time(ts), str(code), info.description, info.immediate_action_text or "none needed"))
                tips.append((utc_time(ts), info.mnemonic, info.description, info.investigatory_action))
            else:
                words = "GPU lost (fell off the bus or stopped answering)" if kind == "gpu_lost" else "GPU answering again"
                rows.append((local_time(ts), "—", words, "check the node if it keeps happening" if kind == "gpu_lost" else ""))
                tips.append((utc_time(ts), "", "", ""))
        _fill(self.xid_table, rows, tips)

    # --- plots ------------------------------------------------------------------------------

    def _redraw_curves(self) -> None:
        ts, series = self._ring.window()
        for name, curve in self.plots.curves.items():
            curve.setData(ts, series[name])
        self._settle_ranges()

    def _settle_ranges(self) -> None:
        """Auto-range now, not while painting: pyqtgraph otherwise re-ranges in the paint and
        so asks for a second paint of every plot, every poll."""
        for plot in self.plots.plots.values():
            plot.getViewBox().updateAutoRange()

    def set_units(self, units: DisplayUnits) -> None:
        """Show temperatures and memory in these units from now on (the plots stay in °C and GiB)."""
        self.units = units
        self.process_model.set_units(units)
        if self._shown is not None:
            self._show_facts(*self._shown)
            self._show_details(*self._shown)

    def set_stale(self, stale: bool) -> None:
        """Grey the curves while the source is not answering; the last data stays."""
        if stale == self._stale:
            return
        self._stale = stale
        if self._range.live:
            for curve in self.plots.curves.values():
                curve.setPen(_STALE_PEN if stale else _LIVE_PEN)
        if self._shown is not None:
            self._show_facts(*self._shown)

    def set_range(self, chosen: TimeRange) -> None:
        """Live, or a range read from the history database."""
        self._range = chosen
        live = chosen.live
        for plot in self.plots.plots.values():
            plot.setMouseEnabled(x=not live, y=False)
        for curve in self.plots.curves.values():
            curve.setPen((_STALE_PEN if self._stale else _LIVE_PEN) if live else _HISTORY_PEN)
        if live:
            self._history = None
            self._say_history("")
            for plot in self.plots.plots.values():
                plot.enableAutoRange(x=True)
            self._redraw_curves()
            if self._shown is not None:
                self._show_details(*self._shown)
        else:
            for plot in self.plots.plots.values():
                plot.disableAutoRange(axis="x")  # the range is ours: auto-ranging would reload
            self.refresh_history()

    def _say_history(self, text: str) -> None:
        self.history_status.setText(text)
        self.history_status.setVisible(bool(text))

    def refresh_history(self) -> None:
        """Read the chosen range again (F5)."""
        if not self._range.live:
            start, end = self._range.resolved()
            self._show_x_range(start, end)
            self._request_history(start, end)

    def _show_x_range(self, start: float, end: float) -> None:
        """Set the plots' time axis without it counting as a zoom by the user."""
        self._ignore_range_change = True
        try:
            self.plots.time_plot.setXRange(start, end, padding=0)
        finally:
            self._ignore_range_change = False

    def _request_history(self, start: float, end: float) -> None:
        if self._uuid is None:
            return
        if self._loader is None:
            self._say_history("History is off (started with --no-history): only Live is available.")
            return
        uuid = self._uuid
        points = max(200, int(self.plots.width()))
        self._say_history(f"Loading {local_time(start)} – {local_time(end)}…")
        self.history_status.setToolTip(f"{utc_time(start)} – {utc_time(end)}")
        self._loader.request(DETAIL_RESOURCE, lambda reader: gpu_history(reader, uuid, start, end, points))

    def _loaded(self, resource: str, result: object) -> None:
        if resource == LOSS_RESOURCE:
            if isinstance(result, GpuLoss) and result.uuid == self._uuid and self._loss_asked == result.uuid:
                self._show_loaded_loss(result)
            return
        if resource == SPAN_RESOURCE:
            if isinstance(result, tuple):
                end = math.ceil((result[1] + 1.0) / 60.0) * 60.0  # the fields show minutes
                self.picker.offer_custom(max(result[0], end - 3600.0), end)
            return
        if resource != DETAIL_RESOURCE or not isinstance(result, GpuHistory) or result.uuid != self._uuid or self._range.live:
            return
        self._history = result
        for name, curve in self.plots.curves.items():
            curve.setData(result.ts[name], result.values[name])
        self._show_x_range(result.start, result.end)
        points = len(result.ts[HISTORY_SERIES[0]])
        self._say_history(
            f"{local_time(result.start)} – {local_time(result.end)}: {points:,} points ({result.resolution})"
            if points else f"No history for this GPU between {local_time(result.start)} and {local_time(result.end)}"
        )
        if self._shown is not None:
            self._show_details(*self._shown)

    def _failed(self, resource: str, message: str) -> None:
        if resource == DETAIL_RESOURCE:
            self._say_history(f"History unavailable: {message}")
        elif resource == LOSS_RESOURCE and self._loss_asked == self._uuid:
            self.loss_text.setText(f"<b>GPU lost.</b> When is unknown: history unavailable: {html.escape(message)}")

    def _x_range_changed(self, *_: object) -> None:
        if not self._range.live and not self._ignore_range_change:
            self._reload.start()

    def _reload_visible(self) -> None:
        (start, end), _ = self.plots.time_plot.viewRange()
        if end > start:
            self._request_history(float(start), float(end))


def _readings_text(values: dict[str, float | None]) -> str:
    """"Utilization 95.0 %, Memory used 40.0 GiB, …", "no value" where the GPU gave none."""
    return ", ".join(
        f"{title} {'no value' if values.get(name) is None else f'{values[name]:,.1f} {unit}'}"
        for name, (title, unit) in PLOTS.items()
    )

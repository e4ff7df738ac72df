"""The Alerts tab: active alerts grouped by node or rule, history with filters, one GPU's alerts
over time, silences, and the rules; acknowledge, silence and maintenance actions, and rule edits
(new, edit, duplicate, enable/disable, delete, import and export of a rules file).

Nothing here touches SQLite: requests go to the `AlertWorker` and its answers arrive as signals.
With an `AlertmanagerWorker` (`--alertmanager URL`) an "Alertmanager" view shows its alerts, its
silences join the Silences view (ID "AM …", expired there), and a silence made here is made in
Alertmanager too. The tab title counts this console's alerts only: gpuops' own alerts may be in
Alertmanager as well (forwarded), so adding its count would count them twice; the Alertmanager
view's title carries its own count.
Counts of firing alerts by severity go on the tab title and, through `WindowTitleBadge`, on the
window title ("gpuops — 2 critical, 5 warning — …"). Choosing an alert about a GPU emits
`gpuChosen` (the window selects it in the grid and the detail view).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QModelIndex, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QTableView,
    QTabWidget,
    QToolBar,
    QTreeView,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gpuops.core.alerts.builtin_rules import rule_origin
from gpuops.core.alerts.model import Alert, AlertState, Severity
from gpuops.core.alerts.rules import Rule
from gpuops.core.timefmt import utc_time
from gpuops.gui.alerts.alertmanager_view import AlertmanagerView, AlertmanagerWorker, AmActionResult, AmState
from gpuops.gui.alerts.dialogs import AcknowledgeDialog, SilenceDialog
from gpuops.gui.alerts.model import GROUP_BY, SEVERITY_COLORS, ActiveAlertsModel, HistoryModel, when
from gpuops.gui.alerts.rule_dialog import RuleDialog, free_name
from gpuops.gui.alerts.rules_model import RulesModel
from gpuops.gui.alerts.worker import ActionResult, AlertSnapshot, AlertWorker, HistoryQuery, RuleSet, Timeline
from gpuops.gui.window.replay_bar import REPLAY_STYLE

TAB_TITLE = "Alerts"
#: History and timeline ranges: label -> seconds back from now (None: everything).
RANGES: dict[str, float | None] = {
    "1 h": 3600.0, "6 h": 6 * 3600.0, "24 h": 86400.0, "7 d": 7 * 86400.0, "30 d": 30 * 86400.0, "All": None,
}
DEFAULT_RANGE = "24 h"
#: Filters typed into the history form are applied this long after the last keystroke.
FILTER_DELAY_MS = 300
#: "Since" ("3 min ago") is redrawn this often as time passes.
AGE_REFRESH_MS = 30_000
READ_ONLY_TIP = "This console is read-only (--read-only)"
NO_HISTORY_TEXT = "Alerts live in the history database; this console runs without history (--no-history)."
_ACTIVE_WIDTHS = (90, 170, 220, 420, 150, 160)
_HISTORY_WIDTHS = (60, 80, 150, 160, 100, 50, 150, 150, 380, 150)
_RULES_WIDTHS = (190, 70, 80, 170, 330, 70, 280, 110)
RULES_FILE_FILTER = "gpuops alert rules (*.json);;All files (*)"
DEFAULT_RULES_FILE = "gpuops-alert-rules.json"
_Dialog = TypeVar("_Dialog", bound=QDialog)
#: Silences view: the ID column of an Alertmanager silence starts so (its full id is the item's data).
AM_SILENCE_PREFIX = "AM "
_AM_ID_ROLE = Qt.ItemDataRole.UserRole
BUILTIN_DELETE_TIP = "Built-in rules are disabled rather than deleted (a deleted one would not come back by itself)"


def counts_text(counts: dict[Severity, int], severities: tuple[Severity, ...] = (Severity.CRITICAL, Severity.WARNING)) -> str:
    """"2 critical, 5 warning" (severities with none are left out; "" when all are 0)."""
    return ", ".join(f"{counts[s]} {s.label}" for s in severities if counts.get(s))


def _fixed_columns(header: QHeaderView, widths: tuple[int, ...]) -> None:
    """Interactive widths set once: resizing to contents would measure every row on each refresh."""
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(True)
    for column, width in enumerate(widths[:-1]):
        header.resizeSection(column, width)


class AlertTimeline(pg.PlotWidget):
    """One bar per alert of a GPU over time, one row per rule, coloured by severity."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, axisItems={"bottom": pg.DateAxisItem()})
        self.setBackground(self.palette().color(self.backgroundRole()))
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setMouseEnabled(x=True, y=False)
        plot.getAxis("left").setWidth(160)
        # One shared "no pen" for every bar: a per-bar `pens` list crashes pyqtgraph 0.14 when it
        # is empty (BarGraphItem._updateColors reads its loop variable after an empty loop).
        self.bars = pg.BarGraphItem(x0=[], x1=[], y0=[], y1=[], pen=pg.mkPen(None))
        plot.addItem(self.bars)
        self.rules: list[str] = []

    def show_timeline(self, timeline: Timeline, now: float) -> None:
        alerts = timeline.alerts
        self.rules = sorted({a.rule for a in alerts})
        row = {rule: i for i, rule in enumerate(self.rules)}
        x0 = np.array([max(a.pending_at, timeline.since) for a in alerts], dtype=np.float64)
        x1 = np.array([min(a.ended_at if a.ended_at is not None else now, timeline.until) for a in alerts], dtype=np.float64)
        y0 = np.array([row[a.rule] + 0.1 for a in alerts], dtype=np.float64)
        brushes = [
            pg.mkBrush(SEVERITY_COLORS[a.severity].lighter(140) if a.state is AlertState.PENDING else SEVERITY_COLORS[a.severity])
            for a in alerts
        ]
        self.bars.setOpts(x0=x0, x1=np.maximum(x1, x0 + 1.0), y0=y0, y1=y0 + 0.8, brushes=brushes)
        self.getPlotItem().getAxis("left").setTicks([[(i + 0.5, rule) for i, rule in enumerate(self.rules)]])
        self.setXRange(timeline.since, timeline.until, padding=0.01)
        self.setYRange(0, max(1, len(self.rules)), padding=0.05)


class AlertsTab(QWidget):
    """See the module docstring. `worker` None: the console runs without history."""

    #: UUID of the GPU an alert chosen in the tab is about.
    gpuChosen = Signal(str)
    #: The tab title changed (counts by severity).
    titleChanged = Signal(str)
    #: Counts of firing alerts that want attention, per Severity.
    countsChanged = Signal(object)

    def __init__(
        self, worker: AlertWorker | None, *, read_only: bool = False, alertmanager: AlertmanagerWorker | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.worker = worker
        self.alertmanager = alertmanager
        self.am_state: AmState | None = None
        self.read_only = read_only
        self.snapshot: AlertSnapshot | None = None
        self.dialog: QDialog | None = None
        self.rules_revision: int | None = None  # of the rules shown; None until first read
        self._select_rule_after_read: str | None = None
        self._gpu: str | None = None
        self._title = TAB_TITLE
        self._restoring = False

        self.group_combo = QComboBox()
        for key, label in GROUP_BY.items():
            self.group_combo.addItem(label, key)
        self.group_combo.setToolTip(
            "Group the active alerts by node, by rule, or by both (as Alertmanager's group_by); "
            "each group counts its alerts by severity, and groups with criticals come first"
        )
        self.ack_button = QPushButton("Acknowledge…")
        self.silence_button = QPushButton("Silence…")
        self.maintenance_button = QPushButton("Node in maintenance")
        self.maintenance_button.setCheckable(True)
        self.maintenance_button.setToolTip("Mute every alert of the selected alert's node while it is being worked on")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.replay_banner = QLabel()
        self.replay_banner.setStyleSheet(REPLAY_STYLE)
        self.replay_banner.hide()  # only in replay
        self._replayed: tuple[float, tuple[Alert, ...] | None] | None = None

        self.model = ActiveAlertsModel(self)
        self.tree = QTreeView()
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        _fixed_columns(self.tree.header(), _ACTIVE_WIDTHS)

        self.history_model = HistoryModel(self)
        self.history_table = QTableView()
        self.history_table.setModel(self.history_model)
        self.history_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.history_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.history_table.verticalHeader().setVisible(False)
        self.history_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        _fixed_columns(self.history_table.horizontalHeader(), _HISTORY_WIDTHS)
        self.state_filter = QComboBox()
        self.state_filter.addItem("Any state", None)
        for state in AlertState:
            self.state_filter.addItem(state.value, state)
        self.severity_filter = QComboBox()
        self.severity_filter.addItem("Any severity", None)
        for severity in Severity:
            self.severity_filter.addItem(f"{severity.label} or worse", severity)
        self.node_filter = QLineEdit()
        self.node_filter.setPlaceholderText("Node")
        self.gpu_filter = QLineEdit()
        self.gpu_filter.setPlaceholderText("GPU UUID")
        self.rule_filter = QLineEdit()
        self.rule_filter.setPlaceholderText("Rule")
        self.range_combo = QComboBox()
        for label in RANGES:
            self.range_combo.addItem(label)
        self.range_combo.setCurrentText(DEFAULT_RANGE)
        self.range_combo.setToolTip("History and timeline: alerts active at any time in this range")
        self.history_status = QLabel()

        self.timeline = AlertTimeline()
        self.timeline_label = QLabel("Choose a GPU (in the grid, or an alert about it) to see its alerts over time.")
        self.timeline_label.setWordWrap(True)

        self.silences = QTreeWidget()
        self.silences.setHeaderLabels(["ID", "Matchers", "Starts", "Ends", "Author", "Comment"])
        self.silences.setRootIsDecorated(False)
        _fixed_columns(self.silences.header(), (50, 260, 140, 140, 90, 200))
        self.expire_button = QPushButton("Expire silence")

        self.rules_model = RulesModel(self)
        self.rules_model.editable = worker is not None and not read_only
        self.rules_table = QTableView()
        self.rules_table.setModel(self.rules_model)
        self.rules_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.rules_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.rules_table.verticalHeader().setVisible(False)
        self.rules_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        _fixed_columns(self.rules_table.horizontalHeader(), _RULES_WIDTHS)
        self.new_rule_button = QPushButton("New rule…")
        self.edit_rule_button = QPushButton("Edit…")
        self.duplicate_rule_button = QPushButton("Duplicate…")
        self.toggle_rule_button = QPushButton("Disable")
        self.delete_rule_button = QPushButton("Delete…")
        self.import_rules_button = QPushButton("Import…")
        self.import_rules_button.setToolTip("Replace every rule with a rules file's (checked first: a bad file changes nothing)")
        self.export_rules_button = QPushButton("Export…")
        self.export_rules_button.setToolTip(
            "Write every rule to a rules file (JSON), e.g. to review it or copy it to another console"
        )
        self.rules_problems = QPlainTextEdit()
        self.rules_problems.setReadOnly(True)
        self.rules_problems.setFixedHeight(self.fontMetrics().lineSpacing() * 6)
        self.rules_problems.setToolTip("Why the last rules file was not imported")
        self.rules_problems.hide()

        self.views = QTabWidget()
        self.views.addTab(self.tree, "Active")
        self.views.addTab(self._history_page(), "History")
        self.views.addTab(self._page(self.timeline_label, self.timeline), "GPU timeline")
        self.views.addTab(self._page(self.silences, self.expire_button), "Silences")
        self.views.addTab(self._rules_page(), "Rules")
        self.am_view: AlertmanagerView | None = None
        if alertmanager is not None:
            self.am_view = AlertmanagerView()
            am_index = self.views.addTab(self.am_view, self.am_view.title)
            self.views.setTabToolTip(am_index, f"Alerts and silences in Alertmanager {alertmanager.url}, shared with on-call")
            self.am_view.titleChanged.connect(lambda title: self.views.setTabText(self.views.indexOf(self.am_view), title))
            alertmanager.stateReady.connect(self._show_am_state)
            alertmanager.actionDone.connect(self._am_action_done)

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Group by"))
        bar.addWidget(self.group_combo)
        bar.addStretch(1)
        for button in (self.ack_button, self.silence_button, self.maintenance_button):
            bar.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.status)
        layout.addWidget(self.replay_banner)
        layout.addWidget(self.views, 1)

        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(FILTER_DELAY_MS)
        self._filter_timer.timeout.connect(self.query_history)
        self._age_timer = QTimer(self)
        self._age_timer.setInterval(AGE_REFRESH_MS)
        self._age_timer.timeout.connect(self.model.refresh_ages)
        self._age_timer.start()
        self.group_combo.currentIndexChanged.connect(lambda _: self.model.set_group_by(self.group_combo.currentData()))
        self.model.modelReset.connect(self._span_groups)
        self.model.modelReset.connect(self.tree.expandAll)
        self.tree.selectionModel().currentChanged.connect(lambda current, _: self._chosen(self.model.alert_at(current)))
        self.history_table.clicked.connect(lambda index: self._chosen(self.history_model.alerts()[index.row()]))
        for combo in (self.state_filter, self.severity_filter):
            combo.currentIndexChanged.connect(lambda _: self._filter_timer.start())
        for edit in (self.node_filter, self.gpu_filter, self.rule_filter):
            edit.textChanged.connect(lambda _: self._filter_timer.start())
        self.range_combo.currentIndexChanged.connect(lambda _: self._range_changed())
        self.views.currentChanged.connect(lambda _: self._view_shown())
        self.ack_button.clicked.connect(self.open_acknowledge)
        self.silence_button.clicked.connect(self.open_silence)
        self.maintenance_button.clicked.connect(self._toggle_maintenance)
        self.expire_button.clicked.connect(self._expire_silence)
        self.silences.currentItemChanged.connect(lambda *_: self._update_actions())
        self.rules_table.selectionModel().currentChanged.connect(lambda *_: self._update_actions())
        self.rules_table.doubleClicked.connect(lambda _: self.open_edit_rule())
        self.new_rule_button.clicked.connect(self.open_new_rule)
        self.edit_rule_button.clicked.connect(self.open_edit_rule)
        self.duplicate_rule_button.clicked.connect(self.open_duplicate_rule)
        self.toggle_rule_button.clicked.connect(self.toggle_selected_rule)
        self.delete_rule_button.clicked.connect(self.delete_selected_rule)
        self.import_rules_button.clicked.connect(self.open_import_rules)
        self.export_rules_button.clicked.connect(self.open_export_rules)
        self.rules_model.enabledToggled.connect(self._set_rule_enabled)
        if worker is None:
            self.status.setText(NO_HISTORY_TEXT + (" Alertmanager's alerts are in its view." if alertmanager else ""))
        else:
            worker.snapshotReady.connect(self.show_snapshot)
            worker.historyReady.connect(self.history_model.set_alerts)
            worker.historyReady.connect(lambda alerts: self.history_status.setText(f"{len(alerts):,} alerts"))
            worker.timelineReady.connect(self._show_timeline)
            worker.actionDone.connect(self._action_done)
            worker.problem.connect(self._problem)
            worker.rulesReady.connect(self.show_rules)
            worker.query_rules()
        self._update_actions()

    def _history_page(self) -> QWidget:
        filters = QHBoxLayout()
        for widget in (
            self.state_filter, self.severity_filter, self.node_filter, self.gpu_filter, self.rule_filter, self.range_combo,
            self.history_status,
        ):
            filters.addWidget(widget)
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(filters)
        layout.addWidget(self.history_table, 1)
        return page

    def _rules_page(self) -> QWidget:
        # A toolbar, not a row of buttons: in a narrow window the last buttons move to its »
        # menu instead of widening the window.
        buttons = QToolBar()
        for button in (self.new_rule_button, self.edit_rule_button, self.duplicate_rule_button, self.toggle_rule_button,
                       self.delete_rule_button):
            buttons.addWidget(button)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        buttons.addWidget(spacer)
        buttons.addWidget(self.import_rules_button)
        buttons.addWidget(self.export_rules_button)
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(buttons)
        layout.addWidget(self.rules_problems)
        layout.addWidget(self.rules_table, 1)
        return page

    @staticmethod
    def _page(top: QWidget, main: QWidget) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(top)
        layout.addWidget(main, 1)
        return page

    # --- what the window and tests read ------------------------------------------------------

    @property
    def title(self) -> str:
        return self._title

    def selected_alert(self) -> Alert | None:
        return self.model.alert_at(self.tree.currentIndex())

    def select_alert(self, alert_id: int) -> bool:
        """Make this active alert the current one (as a click would); False if it is not shown."""
        index = self.model.index_of(alert_id)
        if not index.isValid():
            return False
        self.views.setCurrentWidget(self.tree)
        self.tree.setCurrentIndex(index)
        return True

    def history_query(self) -> HistoryQuery:
        since, until = self._range()
        return HistoryQuery(
            states=None if self.state_filter.currentData() is None else (self.state_filter.currentData(),),
            min_severity=self.severity_filter.currentData(),
            node=self.node_filter.text().strip() or None,
            gpu_uuid=self.gpu_filter.text().strip() or None,
            rule=self.rule_filter.text().strip() or None,
            since=since,
            until=until,
        )

    # --- snapshots and answers -----------------------------------------------------------------

    def show_snapshot(self, snapshot: AlertSnapshot) -> None:
        first = self.snapshot is None
        self.snapshot = snapshot
        kept = self.selected_alert()
        if self._replayed is None:  # in replay the instant's alerts stay on show
            self.model.set_alerts(snapshot.active)
        if first:
            self.tree.expandAll()
        if kept is not None and not self.tree.currentIndex().isValid():
            self._restore_selection(kept.id)
        self._show_silences()
        counts = snapshot.counts()
        text = counts_text(counts, tuple(Severity)[::-1])
        title = f"{TAB_TITLE} ({text})" if text else TAB_TITLE
        if title != self._title:
            self._title = title
            self.titleChanged.emit(title)
        self.countsChanged.emit(counts)
        if self.rules_revision is not None and snapshot.rules_revision != self.rules_revision and self.worker is not None:
            self.worker.query_rules()  # edited elsewhere (another console, `gpuops alerts --import-rules`)
        self._update_actions()

    def show_rules(self, rule_set: RuleSet) -> None:
        """The rules as the worker read them; the chosen rule stays chosen (by name)."""
        current = self.selected_rule()
        self.rules_revision = rule_set.revision
        self.rules_model.set_rules(rule_set.rules)
        # A rule just saved becomes the chosen one once a read has it (an earlier read may come first).
        if self._select_rule_after_read is not None and self.select_rule(self._select_rule_after_read):
            self._select_rule_after_read = None
        elif current is not None:
            self.select_rule(current.name)
        self._update_actions()

    def show_replay(self, replayed: tuple[float, tuple[Alert, ...] | None] | None) -> None:
        """In replay, the active alerts as they stood at the instant (None in the pair: they cannot
        be read), under a banner; live snapshots wait. None: the live alerts again."""
        self._replayed = replayed
        if replayed is None:
            self.replay_banner.hide()
            self.model.set_alerts(() if self.snapshot is None else self.snapshot.active)
            return
        ts, alerts = replayed
        self.model.set_alerts(alerts or ())
        self.replay_banner.setText(
            f"Replay: the alerts active at {utc_time(ts)}" if alerts is not None
            else f"Replay: the alerts of {utc_time(ts)} cannot be read (no local history)"
        )
        self.replay_banner.show()

    def _span_groups(self) -> None:
        """A group row's counts read across the columns ("busy_unallocated — 3 alerts: 3 warning")."""
        for row in range(self.model.rowCount()):
            self.tree.setFirstColumnSpanned(row, QModelIndex(), True)

    def _restore_selection(self, alert_id: int) -> None:
        """After a reset (alerts came or went) the same alert stays current, quietly: the grid's
        selection may have moved on meanwhile and must not be pulled back."""
        index = self.model.index_of(alert_id)
        if index.isValid():
            self._restoring = True
            try:
                self.tree.setCurrentIndex(index)
            finally:
                self._restoring = False

    def _show_silences(self) -> None:
        """This console's silences, then Alertmanager's (ID "AM …", its matchers in its label names)."""
        current = self.silences.currentItem()
        keep = None if current is None else current.text(0)
        self.silences.clear()
        rows = [
            (QTreeWidgetItem([str(s.id), " ".join(str(m) for m in s.matchers), when(s.starts_at), when(s.ends_at),
                              s.author, s.comment]), None)
            for s in (self.snapshot.silences if self.snapshot is not None else ())
        ]
        for am in self.am_state.silences if self.am_state is not None else ():
            state = "" if am.state == "active" else f" ({am.state})"
            rows.append((QTreeWidgetItem([AM_SILENCE_PREFIX + am.id[:8], " ".join(am.matchers), when(am.starts_at),
                                          when(am.ends_at), am.created_by, am.comment + state]), am.id))
        for item, am_id in rows:
            if am_id is not None:
                item.setData(0, _AM_ID_ROLE, am_id)
                item.setToolTip(0, f"Alertmanager silence {am_id}")
            self.silences.addTopLevelItem(item)
            if item.text(0) == keep:
                self.silences.setCurrentItem(item)

    def _show_am_state(self, state: AmState) -> None:
        self.am_state = state
        if self.am_view is not None:
            self.am_view.show_state(state)
        self._show_silences()
        self._update_actions()

    def _am_action_done(self, result: AmActionResult) -> None:
        self._action_done(ActionResult(result.ok, result.message))

    def _show_timeline(self, timeline: Timeline) -> None:
        if timeline.gpu_uuid != self._gpu:
            return
        self.timeline.show_timeline(timeline, time.time())
        self.timeline_label.setText(f"{timeline.gpu_uuid}: {len(timeline.alerts)} alerts in the range")

    def _action_done(self, result: ActionResult) -> None:
        self.status.setStyleSheet("" if result.ok else "color: #b00020;")
        self.status.setText(result.message)
        if result.details:
            self.rules_problems.setPlainText(result.details)
            self.rules_problems.show()
        elif result.ok:
            self.rules_problems.hide()

    def _problem(self, message: str) -> None:
        self.status.setStyleSheet("color: #b00020;" if message else "")
        self.status.setText(message)

    # --- choosing --------------------------------------------------------------------------------

    def _chosen(self, alert: Alert | None) -> None:
        self._update_actions()
        if self._restoring:
            return
        if alert is not None and alert.gpu_uuid is not None:
            self.set_gpu(alert.gpu_uuid)
            self.gpuChosen.emit(alert.gpu_uuid)

    def set_gpu(self, uuid: str | None) -> None:
        """The GPU whose alerts the timeline shows (follows the grid's selection)."""
        if uuid == self._gpu:
            return
        self._gpu = uuid
        self._query_timeline()

    def _range(self) -> tuple[float | None, float | None]:
        span = RANGES[self.range_combo.currentText()]
        now = time.time()
        return (None if span is None else now - span), None

    def _range_changed(self) -> None:
        self._filter_timer.start()
        self._query_timeline()

    def _view_shown(self) -> None:
        if self.views.currentIndex() == 1:
            self.query_history()
        elif self.views.currentIndex() == 2:
            self._query_timeline()
        elif self.views.currentWidget() is self.rules_table.parentWidget() and self.worker is not None:
            self.worker.query_rules()

    def query_history(self) -> None:
        if self.worker is not None:
            self.worker.query_history(self.history_query())

    def _query_timeline(self) -> None:
        if self.worker is None or self._gpu is None:
            return
        since, _ = self._range()
        now = time.time()
        oldest = min((a.pending_at for a in self.snapshot.active), default=now) if self.snapshot else now
        self.worker.query_timeline(self._gpu, since if since is not None else min(oldest, now - 30 * 86400.0), now)

    # --- actions ----------------------------------------------------------------------------------

    def _update_actions(self) -> None:
        alert = self.selected_alert()
        writable = self.worker is not None and not self.read_only
        silences_writable = (self.worker is not None or self.alertmanager is not None) and not self.read_only
        tip = READ_ONLY_TIP if self.read_only else ""
        self.ack_button.setEnabled(writable and alert is not None and alert.acknowledged_by is None)
        self.silence_button.setEnabled(silences_writable)
        node = alert.node if alert is not None else None
        self.maintenance_button.setEnabled(writable and node is not None)
        in_maintenance = bool(node and self.snapshot is not None and node in self.snapshot.maintenance)
        self.maintenance_button.setChecked(in_maintenance)
        self.maintenance_button.setText(f"{node} in maintenance" if node else "Node in maintenance")
        self.expire_button.setEnabled(silences_writable and self.silences.currentItem() is not None)
        rule = self.selected_rule()
        self.new_rule_button.setEnabled(writable)
        self.edit_rule_button.setText("View…" if self.read_only else "Edit…")
        self.edit_rule_button.setEnabled(self.worker is not None and rule is not None)
        self.duplicate_rule_button.setEnabled(writable and rule is not None)
        self.toggle_rule_button.setEnabled(writable and rule is not None)
        self.toggle_rule_button.setText("Enable" if rule is not None and not rule.enabled else "Disable")
        builtin = rule is not None and rule_origin(rule) != "custom"
        self.delete_rule_button.setEnabled(writable and rule is not None and not builtin)
        self.delete_rule_button.setToolTip(BUILTIN_DELETE_TIP if builtin else "Delete this rule for good")
        self.import_rules_button.setEnabled(writable)
        self.export_rules_button.setEnabled(self.worker is not None)
        for button in (self.ack_button, self.silence_button, self.maintenance_button, self.expire_button,
                       self.new_rule_button, self.duplicate_rule_button, self.toggle_rule_button, self.delete_rule_button,
                       self.import_rules_button):
            if tip:
                button.setToolTip(tip)

    def open_acknowledge(self) -> AcknowledgeDialog | None:
        """Open the dialog (not modal-blocking); OK sends the acknowledgement to the worker."""
        alert = self.selected_alert()
        if alert is None or self.worker is None or self.read_only:
            return None
        dialog = AcknowledgeDialog(alert, self)
        dialog.accepted.connect(lambda: self.worker.acknowledge(alert.id, dialog.note))
        return self._open(dialog)

    def open_silence(self) -> SilenceDialog | None:
        """The silence goes to this console's history and, with --alertmanager, to Alertmanager;
        prefilled from the alert chosen in the view shown (Alertmanager's in its view)."""
        if (self.worker is None and self.alertmanager is None) or self.read_only:
            return None
        in_am_view = self.am_view is not None and self.views.currentWidget() is self.am_view
        dialog = SilenceDialog(self.am_view.selected() if in_am_view else self.selected_alert(), self)

        def submit() -> None:
            request = dialog.request()
            if self.worker is not None:
                self.worker.add_silence(request.matchers, request.starts_at, request.ends_at, request.comment)
            if self.alertmanager is not None:
                self.alertmanager.create_silence(request.matchers, request.starts_at, request.ends_at, request.comment)

        dialog.accepted.connect(submit)
        return self._open(dialog)

    # --- rules ------------------------------------------------------------------------------------

    def selected_rule(self) -> Rule | None:
        return self.rules_model.rule_at(self.rules_table.currentIndex())

    def select_rule(self, name: str) -> bool:
        """Make the rule called `name` the current one; False if it is not shown."""
        row = self.rules_model.row_of(name)
        if row < 0:
            return False
        self.rules_table.setCurrentIndex(self.rules_model.index(row, 0))
        return True

    def _rule_names(self) -> set[str]:
        return {r.name for r in self.rules_model.rules()}

    def open_new_rule(self) -> RuleDialog | None:
        if self.worker is None or self.read_only:
            return None
        return self._open_rule_dialog(RuleDialog(None, title="New alert rule", taken=self._rule_names(), parent=self))

    def open_edit_rule(self) -> RuleDialog | None:
        """Edit the chosen rule (read-only consoles see it, without OK)."""
        rule = self.selected_rule()
        if rule is None or self.worker is None:
            return None
        title = f"Alert rule {rule.name}" + (" (read-only)" if self.read_only else "")
        dialog = RuleDialog(rule, title=title, taken=self._rule_names() - {rule.name}, replaces=rule.name,
                            read_only=self.read_only, parent=self)
        return self._open_rule_dialog(dialog)

    def open_duplicate_rule(self) -> RuleDialog | None:
        rule = self.selected_rule()
        if rule is None or self.worker is None or self.read_only:
            return None
        taken = self._rule_names()
        copy = dataclasses.replace(rule, name=free_name(rule.name, taken))
        return self._open_rule_dialog(RuleDialog(copy, title=f"Duplicate rule {rule.name}", taken=taken, parent=self))

    def _open_rule_dialog(self, dialog: RuleDialog) -> RuleDialog:
        def submit() -> None:
            rule = dialog.rule()
            self._select_rule_after_read = rule.name
            self.worker.save_rule(rule, dialog.replaces)

        dialog.accepted.connect(submit)
        self._open(dialog)
        return dialog

    def toggle_selected_rule(self) -> None:
        rule = self.selected_rule()
        if rule is not None:
            self._set_rule_enabled(rule.name, not rule.enabled)

    def _set_rule_enabled(self, name: str, enabled: bool) -> None:
        if self.worker is not None and not self.read_only:
            self.worker.set_rule_enabled(name, enabled)

    def delete_selected_rule(self) -> QMessageBox | None:
        """Ask first; built-in rules are not deleted here (disable them)."""
        rule = self.selected_rule()
        if rule is None or self.worker is None or self.read_only or rule_origin(rule) != "custom":
            return None
        box = QMessageBox(QMessageBox.Icon.Question, "Delete rule", f"Delete the rule {rule.name} for good?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setInformativeText("Its active alerts resolve at the next evaluation. Export the rules first to keep a copy.")
        yes = box.button(QMessageBox.StandardButton.Yes)

        def answered(button: QPushButton) -> None:
            if button is yes:
                self.worker.delete_rule(rule.name)

        box.buttonClicked.connect(answered)
        self._open(box)
        return box

    def open_import_rules(self) -> QFileDialog | None:
        if self.worker is None or self.read_only:
            return None
        dialog = QFileDialog(self, "Import alert rules", "", RULES_FILE_FILTER)
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(self.import_rules_from)
        self._open(dialog)
        return dialog

    def import_rules_from(self, path: str | Path) -> None:
        """Replace every rule with the file's (the worker reads and checks it: all or nothing)."""
        if self.worker is not None and not self.read_only:
            self.worker.import_rules(Path(path))

    def open_export_rules(self) -> QFileDialog | None:
        if self.worker is None:
            return None
        dialog = QFileDialog(self, "Export alert rules", DEFAULT_RULES_FILE, RULES_FILE_FILTER)
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("json")
        dialog.fileSelected.connect(self.export_rules_to)
        self._open(dialog)
        return dialog

    def export_rules_to(self, path: str | Path) -> None:
        if self.worker is not None:
            self.worker.export_rules(Path(path))

    def _open(self, dialog: _Dialog) -> _Dialog:
        self.dialog = dialog
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def _toggle_maintenance(self, on: bool) -> None:
        alert = self.selected_alert()
        if alert is None or alert.node is None or self.worker is None or self.read_only:
            return
        self.worker.set_maintenance(alert.node, on)

    def _expire_silence(self) -> None:
        item = self.silences.currentItem()
        if item is None or self.read_only:
            return
        am_id = item.data(0, _AM_ID_ROLE)
        if am_id is not None and self.alertmanager is not None:
            self.alertmanager.expire_silence(am_id)
        elif am_id is None and self.worker is not None:
            self.worker.expire_silence(int(item.text(0)))


class WindowTitleBadge(QObject):
    """Puts "2 critical, 5 warning" into the window title, whatever else sets the title."""

    SEPARATOR = " — "

    def __init__(self, window: QWidget, app_title: str) -> None:
        super().__init__(window)
        self._window = window
        self._app_title = app_title
        self._badge = ""
        self._base = window.windowTitle()
        self._setting = False
        window.windowTitleChanged.connect(self._title_changed)

    def set_counts(self, counts: dict[Severity, int]) -> None:
        badge = counts_text(counts)
        if badge != self._badge:
            self._badge = badge
            self._apply()

    def _title_changed(self, title: str) -> None:
        if not self._setting:  # someone else (e.g. the source opened) set a new title
            self._base = title
            self._apply()

    def _apply(self) -> None:
        rest = self._base.removeprefix(self._app_title).removeprefix(self.SEPARATOR)
        parts = [self._app_title, *filter(None, (self._badge, rest))]
        self._setting = True
        try:
            self._window.setWindowTitle(self.SEPARATOR.join(parts))
        finally:
            self._setting = False


__all__ = ["AlertsTab", "WindowTitleBadge"]

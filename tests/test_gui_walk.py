"""No exception escapes a slot: pytest-qt fails a test on any exception raised in a Qt slot or
virtual method, and on any Qt warning (qt_log_level_fail = WARNING). The walk drives a console
window at 512 and at 10,000 GPUs through every tab and sub-page, every kind of selection, every
dialog, replay, each export format and both themes; what the workers caught and logged fails it
too."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QFileDialog, QMessageBox, QTabWidget, QWidget

from gpuops.core.alerts.model import Alert, AlertState, Severity
from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.store.writer import HistoryWriter
from gpuops.core.telemetry import FleetSample
from gpuops.gui.alerts.tab import DEFAULT_RANGE, RANGES, AlertTimeline
from gpuops.gui.alerts.worker import Timeline
from gpuops.gui.app.settings_store import open_settings
from gpuops.gui.app.theme import apply_theme
from gpuops.gui.gpu.time_range import CUSTOM, PRESETS
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, gpu_uuid, make_sample, open_windows

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)

T0 = 1_700_000_000.0


def alert(id_: int, rule: str, severity: Severity, pending_at: float, ended_at: float | None = None) -> Alert:
    return Alert(
        id=id_, rule=rule, key=gpu_uuid(1), severity=severity,
        state=AlertState.FIRING if ended_at is None else AlertState.RESOLVED, labels={"gpu": gpu_uuid(1), "node": "node-000"},
        summary=rule, runbook="", pending_at=pending_at, started_at=pending_at, ended_at=ended_at,
    )


def test_the_timeline_of_a_gpu_without_alerts_is_empty_and_the_next_one_is_drawn(qtbot):
    """pyqtgraph's BarGraphItem raised UnboundLocalError ('pen') for a GPU with no alerts, and
    the timeline stopped updating after it."""
    timeline = AlertTimeline()
    qtbot.addWidget(timeline)
    timeline.resize(600, 200)
    timeline.show()
    qtbot.waitExposed(timeline)
    timeline.show_timeline(Timeline(gpu_uuid(0), T0, T0 + 3600, ()), T0 + 3600)
    timeline.grab()  # paints the empty bars
    assert timeline.rules == [] and len(timeline.bars.opts["x0"]) == 0
    alerts = (
        alert(1, "gpu_hot", Severity.WARNING, T0 + 60, T0 + 600),
        alert(2, "ecc_uncorrectable", Severity.CRITICAL, T0 + 900),
    )
    timeline.show_timeline(Timeline(gpu_uuid(1), T0, T0 + 3600, alerts), T0 + 3600)
    timeline.grab()
    assert timeline.rules == ["ecc_uncorrectable", "gpu_hot"]
    assert timeline.bars.opts["x0"].tolist() == [T0 + 60, T0 + 900]
    timeline.show_timeline(Timeline(gpu_uuid(2), T0, T0 + 3600, ()), T0 + 3600)
    timeline.grab()
    assert timeline.rules == [] and len(timeline.bars.opts["x0"]) == 0
    QApplication.processEvents()


# --- the walk ------------------------------------------------------------------------------------

N_WALK = 512
GPUS_PER_NODE = 4
ECC_GPUS = (3, 9)  # critical alerts
HEALTHY = 0
NO_ALERTS = 1
LOST = 20
STALE_NODE = "node-010"  # GPUs 40..43
ALLOCATED = range(0, 256)
PATIENCE_MS = 20_000
RECORDED_POLLS = 20
RECORDED_STEP_S = 60.0


class WalkSource(FakeSource):
    """The fake fleet with uncorrectable ECC errors on ECC_GPUS, GPU LOST fallen off the bus,
    STALE_NODE's readings stale, and temperatures well under any threshold (so which GPUs have
    alerts is known)."""

    def __init__(self, n_gpus: int) -> None:
        super().__init__(n_gpus, GPUS_PER_NODE)
        self.lost = frozenset({LOST})

    def poll(self) -> FleetSample:
        sample = super().poll()
        ecc = np.zeros(len(sample))
        ecc[list(ECC_GPUS)] = 1.0
        temp = np.where(np.isnan(sample.metrics["temp_c"]), np.nan, 50.0)
        metrics = {**sample.metrics, "ecc_uncorrected_volatile": ecc, "temp_c": temp}
        return dataclasses.replace(sample, metrics=metrics, stale_nodes=frozenset({STALE_NODE}))


def recorded_history(path: Path, gpus) -> Path:
    """Twenty minutes of polls before now, and a book: Acme holds the first 256 GPUs but the lost one."""
    now = time.time()
    with HistoryWriter(path) as writer:
        for k in range(RECORDED_POLLS, 0, -1):
            writer.write(make_sample(gpus, ts=now - k * RECORDED_STEP_S, lost=frozenset({LOST})))
    repo = AllocationRepository.open(path, user="walker")
    since = round(now * 1000) - 24 * 3_600_000
    acme = repo.add_customer("Acme")
    contract = repo.add_contract(acme.id, "ACME-1", "reserved", "TEST", len(ALLOCATED), since, None, 2.0)
    repo.allocate(contract.id, [gpus[i].uuid for i in ALLOCATED if i != LOST], since)
    repo.close()
    return path


class Modal:
    """Answers the next modal dialog (`exec()`, QFileDialog.getSaveFileName) from inside its own
    event loop, as a user would: `answer(dialog)` runs once it is the active modal widget."""

    def __init__(self) -> None:
        self.answered: list[str] = []

    def next(self, answer: Callable[[QWidget], None]) -> None:
        def look() -> None:
            dialog = QApplication.activeModalWidget()
            if dialog is None:
                QTimer.singleShot(20, look)
                return
            self.answered.append(type(dialog).__name__)
            answer(dialog)

        QTimer.singleShot(0, look)


def reject(dialog: QWidget) -> None:
    assert isinstance(dialog, QDialog)
    dialog.reject()


def accept(dialog: QWidget) -> None:
    assert isinstance(dialog, QDialog)
    dialog.accept()


def ecc_alerts(tab) -> set[int]:
    return {int(a.gpu_uuid[4:12]) for a in tab.snapshot.active if a.rule == "ecc_uncorrectable" and a.gpu_uuid}


def settle(qtbot, ms: int = 50) -> None:
    qtbot.wait(ms)


@pytest.fixture
def walk_window(qtbot, tmp_path: Path, request):
    settings = open_settings()
    source = WalkSource(getattr(request, "param", N_WALK))
    # Four polls a second at 512 GPUs; at 10,000 one a second, as the console is run there.
    interval_s = 0.25 if len(source.gpus) <= N_WALK else 1.0
    history = recorded_history(tmp_path / "history.sqlite", source.gpus)
    with open_windows(qtbot) as make_window:
        window = make_window(source, interval_s=interval_s, history_db=history, size=(1400, 900))
        yield window, source
    apply_theme("system")
    settings.clear()
    settings.sync()


def walk_tabs(qtbot, tabs: QTabWidget, each: Callable[[int], None] | None = None) -> list[str]:
    seen = []
    for i in range(tabs.count()):
        tabs.setCurrentIndex(i)
        seen.append(tabs.tabText(i))
        if each is not None:
            each(i)
        settle(qtbot, 20)
    return seen


def walk_kpis_and_hover(qtbot, window) -> None:
    """A click on every KPI tile (the condition counts filter the grid), hovering over cells."""
    grid = window.grid
    for tile in window.kpi_strip.tiles.values():
        QTest.mouseClick(tile, Qt.MouseButton.LeftButton)
        settle(qtbot, 10)
    grid.filter_edit.clear()
    viewport = grid.view.viewport()
    for position in (HEALTHY, LOST, 41, ECC_GPUS[1]):
        grid.ensure_visible(position)
        QApplication.processEvents()
        QTest.mouseMove(viewport, grid.cell_rect(position).center())
        settle(qtbot, 20)
    QTest.mouseMove(viewport, viewport.rect().bottomRight() - QPoint(2, 2))


def walk_grid_controls(qtbot, grid) -> None:
    for combo in (grid.metric_combo, grid.palette_combo, grid.group_combo, grid.sort_combo, grid.cells_combo):
        first = combo.currentIndex()
        for i in range(combo.count()):
            combo.setCurrentIndex(i)
            settle(qtbot, 10)
        combo.setCurrentIndex(first)
    for text in ("health:critical", "lost", "node-010", "customer:Acme", "-site:site-a", "health:", "((", ""):
        grid.filter_edit.setText(text)
        settle(qtbot, 10)
    for text in (gpu_uuid(7), "node-002", "no-such-gpu", ""):
        grid.search_edit.setText(text)
        grid.find(text)
    grid.fit_all()
    grid.zoom_by(2.0)
    grid.zoom_by(0.5)
    grid.zoom_by(0.05)  # far out: node cells and the urgent marks
    settle(qtbot, 20)
    grid.fit_all()
    grid.cells_combo.setCurrentIndex(grid.cells_combo.findData("node"))
    click(qtbot, grid, 9)  # a node cell
    grid.cells_combo.setCurrentIndex(grid.cells_combo.findData("auto"))
    grid.move_selection(1, 0)
    grid.move_selection(0, 1, extend=True)
    for position in (HEALTHY, LOST, 40):
        assert grid.tooltip_text(position)


def click(qtbot, grid, position: int, modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    """A click on GPU `position`'s cell, as the user makes it (the grid zooms to it first)."""
    grid.ensure_visible(position)
    QApplication.processEvents()
    QTest.mouseClick(grid.view.viewport(), Qt.MouseButton.LeftButton, modifier, grid.cell_rect(position).center())


def select_each_kind(qtbot, window, alerts_tab) -> None:
    """A healthy GPU, one with no alerts, a lost one, a stale one, a whole node, several GPUs,
    clicked in the grid; the detail view and the alerts timeline follow each."""
    grid, uuids = window.grid, window.last_sample.uuids
    for position in (HEALTHY, NO_ALERTS, LOST, 41, ECC_GPUS[0]):
        click(qtbot, grid, position)
        assert window.detail.uuid == uuids[position]
        qtbot.waitUntil(lambda u=uuids[position]: alerts_tab.timeline_label.text().startswith(u), timeout=PATIENCE_MS)
        walk_tabs(qtbot, window.detail.tabs)
    assert "ecc_uncorrectable" in alerts_tab.timeline.rules
    click(qtbot, grid, NO_ALERTS)
    qtbot.waitUntil(lambda: alerts_tab.timeline_label.text() == f"{uuids[NO_ALERTS]}: 0 alerts in the range", timeout=PATIENCE_MS)
    assert alerts_tab.timeline.rules == []
    node = [i for i, g in enumerate(window.last_sample.gpus) if g.node == "node-002"]
    click(qtbot, grid, node[0])
    click(qtbot, grid, node[-1], Qt.KeyboardModifier.ShiftModifier)
    assert grid.selected_uuids() == frozenset(uuids[i] for i in node)
    several = (5, LOST, 41, 300)
    for position in several:
        click(qtbot, grid, position, Qt.KeyboardModifier.ControlModifier)
    assert grid.selected_uuids() == frozenset(uuids[i] for i in (*node, *several))
    window.ops.tabs.setCurrentWidget(window.ops.node_view)
    settle(qtbot, 20)
    window.ops.tabs.setCurrentWidget(alerts_tab)


def walk_alert_dialogs(qtbot, tab, tmp_path: Path) -> None:
    """Each dialog of the Alerts tab opened and cancelled; the harmless ones accepted too."""
    tab.views.setCurrentIndex(0)
    alert = next(a for a in tab.snapshot.active if a.rule == "ecc_uncorrectable")
    assert tab.select_alert(alert.id)
    tab.open_acknowledge().reject()
    dialog = tab.open_acknowledge()
    dialog.note_edit.setText("walk: looking at it")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: "acknowledged by" in tab.status.text(), timeout=PATIENCE_MS)
    tab.open_silence().reject()
    dialog = tab.open_silence()  # prefilled with the alert's rule and GPU
    dialog.comment_edit.setText("walk: reseating it")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    tab.views.setCurrentIndex(3)
    qtbot.waitUntil(lambda: tab.silences.topLevelItemCount() == 1, timeout=PATIENCE_MS)
    tab.silences.setCurrentItem(tab.silences.topLevelItem(0))
    tab.expire_button.click()
    qtbot.waitUntil(lambda: tab.silences.topLevelItemCount() == 0, timeout=PATIENCE_MS)

    tab.views.setCurrentIndex(4)
    qtbot.waitUntil(lambda: tab.rules_model.rowCount() > 0, timeout=PATIENCE_MS)
    tab.open_new_rule().reject()
    assert tab.select_rule("hw_throttle")
    tab.open_edit_rule().reject()
    with qtbot.waitSignal(tab.worker.actionDone, timeout=PATIENCE_MS):
        tab.open_edit_rule().buttons.button(QDialogButtonBox.StandardButton.Ok).click()  # saved as it was
    tab.open_duplicate_rule().reject()
    dialog = tab.open_duplicate_rule()
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: getattr(tab.selected_rule(), "name", None) == "hw_throttle_copy", timeout=PATIENCE_MS)
    tab.toggle_rule_button.click()
    qtbot.waitUntil(lambda: not tab.selected_rule().enabled, timeout=PATIENCE_MS)
    tab.delete_selected_rule().reject()
    box = tab.delete_selected_rule()
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: "hw_throttle_copy" not in {r.name for r in tab.rules_model.rules()}, timeout=PATIENCE_MS)
    tab.open_import_rules().reject()
    first_rule = tab.rules_model.index(0, 0)
    tab.rules_table.setCurrentIndex(first_rule)
    tab.rules_table.doubleClicked.emit(first_rule)
    assert isinstance(tab.dialog, QDialog) and tab.dialog.isVisible()  # a double click edits the rule
    tab.dialog.reject()

    tab.views.setCurrentIndex(0)
    assert tab.select_alert(alert.id)
    tab.maintenance_button.click()
    qtbot.waitUntil(lambda: tab.maintenance_button.isChecked(), timeout=PATIENCE_MS)
    tab.maintenance_button.click()
    qtbot.waitUntil(lambda: not tab.maintenance_button.isChecked(), timeout=PATIENCE_MS)
    tab.views.setCurrentIndex(1)
    qtbot.waitUntil(lambda: tab.history_model.rowCount() > 0, timeout=PATIENCE_MS)
    first_alert = tab.history_table.visualRect(tab.history_model.index(0, 1)).center()
    QTest.mouseClick(tab.history_table.viewport(), Qt.MouseButton.LeftButton, pos=first_alert)
    dialog = tab.open_export_rules()
    dialog.reject()
    dialog = tab.open_export_rules()
    with qtbot.waitSignal(tab.worker.actionDone, timeout=PATIENCE_MS):
        dialog.selectFile(str(tmp_path / "rules.json"))
        dialog.accept()
    assert (tmp_path / "rules.json").exists()
    dialog = tab.open_import_rules()
    with qtbot.waitSignal(tab.worker.actionDone, timeout=PATIENCE_MS) as imported:
        dialog.selectFile(str(tmp_path / "rules.json"))  # the rules just exported: nothing changes
        dialog.accept()
    assert imported.args[0].ok, imported.args[0].message


def walk_customer_dialogs(qtbot, window, modal: Modal, tmp_path: Path) -> None:
    console = window.allocations
    uuids = window.last_sample.uuids
    window.grid.set_selection([uuids[300], uuids[301]], current=uuids[300])
    for button in (console.tab.allocate_button, console.tab.release_button):
        assert button.isEnabled()
        button.click()
        assert console.dialog is not None
        console.dialog.whole_nodes_box.toggle()
        console.dialog.reject()
        settle(qtbot, 10)
        assert console.dialog is None
    window.grid.set_selection([uuids[300]], current=uuids[300])
    console.tab.allocate_button.click()  # Acme's contract has room for one more GPU
    console.dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: console.dialog is None and console.held.customers.get(uuids[300]) == "Acme", timeout=PATIENCE_MS)
    console.tab.release_button.click()
    console.dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: console.dialog is None and uuids[300] not in console.held.customers, timeout=PATIENCE_MS)
    window.grid.set_selection([uuids[LOST]], current=uuids[LOST])
    console.tab.allocate_button.click()
    console.dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: console.confirmation is not None, timeout=PATIENCE_MS)  # a lost GPU: confirm?
    console.confirmation.button(QMessageBox.StandardButton.No).click()
    assert "Nothing was changed" in console.dialog.problem_text
    console.dialog.reject()

    modal.next(reject)
    console.tab.export_button.click()  # a file dialog of its own (getSaveFileName): cancelled

    def save_audit(dialog: QWidget) -> None:
        assert isinstance(dialog, QFileDialog)
        dialog.selectFile(str(audit))
        dialog.accept()

    audit = tmp_path / "audit.csv"
    modal.next(save_audit)
    console.tab.export_button.click()
    qtbot.waitUntil(audit.exists, timeout=PATIENCE_MS)


def walk_window_dialogs(qtbot, window, modal: Modal, tmp_path: Path) -> None:
    actions = window.window_actions
    for action in (actions.settings, actions.about):
        modal.next(reject)
        action.trigger()
    modal.next(accept)  # Settings as they are: OK saves the same preferences
    actions.settings.trigger()
    modal.next(accept)
    actions.about.trigger()
    modal.next(reject)
    actions.export.trigger()  # the file dialog, cancelled: nothing written

    def save_as(dialog: QWidget) -> None:
        assert isinstance(dialog, QFileDialog)
        dialog.selectFile(str(tmp_path / "from-menu.json"))
        dialog.accept()

    modal.next(save_as)
    with qtbot.waitSignal(actions.exporter.exported, timeout=PATIENCE_MS):
        actions.export.trigger()
    document = json.loads((tmp_path / "from-menu.json").read_text())
    assert len(document["gpus"]) == len(window.last_sample)
    assert document["alerts_available"] and document["allocations_available"]
    rows = {g["uuid"]: g for g in document["gpus"]}
    uuids = window.last_sample.uuids
    assert rows[uuids[ECC_GPUS[0]]]["alerts"] and rows[uuids[HEALTHY]]["customer"] == "Acme"
    assert modal.answered[-6:] == ["SettingsDialog", "AboutDialog", "SettingsDialog", "AboutDialog", "QFileDialog", "QFileDialog"]
    modal.next(reject)  # "Replace file?" No: the file stays as it is
    before = (tmp_path / "from-menu.json").read_bytes()
    assert not actions.exporter.export(tmp_path / "from-menu.json", "json")
    assert modal.answered[-1] == "QMessageBox" and (tmp_path / "from-menu.json").read_bytes() == before


def walk_replay(qtbot, window) -> None:
    """Replay opened with its button, the slider dragged back and forth (each instant replayed,
    with a GPU chosen and its tooltip read), then Esc back to live."""
    bar = window.ops.replay_bar
    replayed: list[float] = []
    bar.replaySample.connect(lambda sample: replayed.append(sample.ts))
    bar.open_button.click()
    qtbot.waitUntil(bar.slider.isVisible, timeout=PATIENCE_MS)
    top = bar.slider.maximum()
    for fraction in (0.1, 0.8, 0.3, 1.0, 0.0):
        seen = len(replayed)
        bar.slider.setValue(round(top * fraction))
        qtbot.waitUntil(lambda n=seen: len(replayed) > n, timeout=PATIENCE_MS)
        assert bar.active and bar.label.text().startswith("Replay: ")
        click(qtbot, window.grid, LOST)
        assert window.grid.tooltip_text(LOST).startswith("Replay: ")
    assert replayed[0] < replayed[1] > replayed[2] < replayed[3] > replayed[4], "the slider moves back and forth"
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=PATIENCE_MS)  # shortcuts go to the active window
    QTest.keyClick(window.grid.view, Qt.Key.Key_Escape)  # Esc leaves replay
    assert not bar.active
    assert not window.grid.tooltip_text(LOST).startswith("Replay: ")


def walk_exports(qtbot, window, tmp_path: Path) -> None:
    exporter = window.window_actions.exporter
    actions = window.window_actions
    actions.picture_grid.trigger()
    actions.picture_2x.toggle()
    assert (exporter.picture_view, exporter.picture_scale) == ("grid", 2.0)
    actions.picture_2x.toggle()
    actions.picture_window.trigger()
    assert (exporter.picture_view, exporter.picture_scale) == ("window", 1.0)
    # Pictures of the grid alone too, at 512 GPUs (at 10,000 they only cost time: the same code).
    for picture in ("window", "grid") if len(window.last_sample) <= N_WALK else ("window",):
        exporter.picture_view = picture
        for kind in ("png", "pdf", "csv", "json"):
            path = tmp_path / f"walk-{picture}.{kind}"
            with qtbot.waitSignal(exporter.exported, timeout=PATIENCE_MS):
                assert exporter.export(path, kind)
            assert path.stat().st_size > 0
    exporter.picture_view = "window"
    rows = list(csv.DictReader((tmp_path / "walk-window.csv").open(newline="")))
    assert len(rows) == len(window.last_sample)


def walk_source_failure(qtbot, window, source: WalkSource, tmp_path: Path) -> None:
    """The source fails: the banner says so and the last data stays, greyed; the window is
    still driven (a GPU chosen, a tab changed, an export) until the source answers again."""
    source.fail_with = "walk: the source is down"
    qtbot.waitUntil(lambda: window.error_banner.isVisible() and window.stale, timeout=PATIENCE_MS)
    click(qtbot, window.grid, ECC_GPUS[1])
    window.ops.tabs.setCurrentIndex(1)
    with qtbot.waitSignal(window.window_actions.exporter.exported, timeout=PATIENCE_MS):
        assert window.window_actions.exporter.export(tmp_path / "while-down.csv", "csv")
    source.fail_with = None
    qtbot.waitUntil(lambda: not window.error_banner.isVisible() and not window.stale, timeout=PATIENCE_MS)


AT_10000 = pytest.param(10_000, marks=pytest.mark.slow, id="10000")


@pytest.mark.parametrize("walk_window", [pytest.param(N_WALK, id="512"), AT_10000], indirect=True)
def test_walk_every_view_selection_dialog_replay_export_and_theme(qtbot, walk_window, tmp_path, caplog):
    window, source = walk_window
    qtbot.waitUntil(lambda: window.last_sample is not None, timeout=PATIENCE_MS)
    alerts = window.alerts.tab
    qtbot.waitUntil(lambda: alerts.snapshot is not None and ecc_alerts(alerts) == set(ECC_GPUS), timeout=PATIENCE_MS)
    qtbot.waitUntil(lambda: window.allocations.book is not None and bool(window.allocations.held.customers), timeout=PATIENCE_MS)
    modal = Modal()
    outer = walk_tabs(qtbot, window.ops.tabs)
    assert outer[:3] == ["GPU", "Node", "Fleet trends"] and outer[3].startswith("Alerts") and outer[4] == "Customers"
    window.ops.tabs.setCurrentWidget(alerts)
    assert walk_tabs(qtbot, alerts.views) == ["Active", "History", "GPU timeline", "Silences", "Rules"]
    alerts.views.setCurrentIndex(2)  # the timeline follows every selection
    select_each_kind(qtbot, window, alerts)
    for group in range(alerts.group_combo.count()):
        alerts.group_combo.setCurrentIndex(group)
    alerts.views.setCurrentIndex(1)
    for label in RANGES:
        alerts.range_combo.setCurrentText(label)
    alerts.severity_filter.setCurrentIndex(alerts.severity_filter.count() - 1)
    alerts.node_filter.setText("node-000")
    qtbot.waitUntil(lambda: alerts.history_status.text().endswith("alerts"), timeout=PATIENCE_MS)
    alerts.range_combo.setCurrentText(DEFAULT_RANGE)
    walk_alert_dialogs(qtbot, alerts, tmp_path)

    window.ops.tabs.setCurrentWidget(window.allocations.tab)
    customers = window.allocations.tab
    for period in range(customers.period_combo.count()):
        customers.period_combo.setCurrentIndex(period)
    assert walk_tabs(qtbot, customers.views) == ["Usage", "Timeline", "Capacity", "Audit log"]
    customers.filter_edit.setText("acme")
    customers.filter_edit.clear()
    walk_customer_dialogs(qtbot, window, modal, tmp_path)

    window.ops.tabs.setCurrentIndex(0)
    window.select_gpu(window.last_sample.uuids[HEALTHY])
    picker = window.detail.picker
    for label in (*PRESETS, CUSTOM):
        picker.choose(label)
        settle(qtbot, 20)
    picker.end_edit.setDateTime(picker.start_edit.dateTime().addSecs(-60))
    picker.apply_button.click()  # refused: the end is before the start
    picker.end_edit.setDateTime(picker.start_edit.dateTime().addSecs(1800))
    picker.apply_button.click()
    settle(qtbot, 20)
    picker.choose("Live")
    walk_kpis_and_hover(qtbot, window)
    walk_tabs(qtbot, window.ops.tabs)
    walk_grid_controls(qtbot, window.grid)
    window.ops.refresh()
    walk_replay(qtbot, window)
    walk_window_dialogs(qtbot, window, modal, tmp_path)
    walk_exports(qtbot, window, tmp_path)
    walk_source_failure(qtbot, window, source, tmp_path)
    for theme in ("dark", "light"):
        apply_theme(theme)
        settle(qtbot, 50)
        walk_tabs(qtbot, window.ops.tabs)
        window.grab()
    window.grid.clear_selection()
    qtbot.wait(300)  # a poll or two more, drawn with everything walked through
    # Workers log what they caught (a failed history query, a source that raised): none may have.
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("gpuops")]
    problems = [f"{r.name}: {r.getMessage()}" for r in logged]
    assert not problems, problems

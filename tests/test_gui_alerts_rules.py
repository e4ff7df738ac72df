"""The Rules page of the Alerts tab: the rule dialog checks input with the core's own checks,
saves through the alert worker (a new connection sees it, a running collector evaluates it),
enable/disable and delete, rules files imported (all or nothing) and exported, --read-only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QFileDialog, QMessageBox

from gpuops.core.alerts.builtin_rules import builtin_rules
from gpuops.core.alerts.model import ChangeKind, Severity
from gpuops.core.alerts.persistence import AlertStore
from gpuops.core.alerts.rules import Condition, Scope, rules_from_text
from gpuops.core.alerts.service import AlertService
from gpuops.core.store.connection import open_database
from gpuops.gui.alerts.rule_dialog import NO_PREVIEW, RELATIVE
from gpuops.gui.alerts.rules_model import ENABLED_COLUMN, RULE_COLUMNS
from gpuops.gui.alerts.tab import BUILTIN_DELETE_TIP, READ_ONLY_TIP, AlertsTab
from gpuops.gui.alerts.worker import AlertWorker
from tests.samples import make_inventory, make_sample

T0 = 1_763_798_400.0
N = 16
PATIENCE_MS = 10_000


def new_store(path: Path) -> AlertStore:
    """The database as another process sees it: its own connection."""
    conn, _ = open_database(path, create=False)
    return AlertStore(conn)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "history.sqlite"
    conn, _ = open_database(path, create=True)
    conn.close()
    return path


@pytest.fixture
def open_tab(qtbot, db: Path):
    workers: list[AlertWorker] = []

    def make(*, read_only: bool = False) -> AlertsTab:
        worker = AlertWorker(db, refresh_s=3600)
        workers.append(worker)
        tab = AlertsTab(worker, read_only=read_only)
        qtbot.addWidget(tab)
        qtbot.waitUntil(lambda: tab.rules_model.rowCount() == len(builtin_rules()), timeout=PATIENCE_MS)
        return tab

    yield make
    for worker in workers:
        assert worker.stop()


def ok_button(dialog):
    return dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)


def stored_rule(db: Path, name: str):
    return {r.name: r for r in new_store(db).rules()}.get(name)


def test_a_rule_made_in_the_dialog_is_stored_for_every_process(qtbot, db: Path, open_tab) -> None:
    tab = open_tab()
    dialog = tab.open_new_rule()
    ok = ok_button(dialog)
    assert not ok.isEnabled() and dialog.error.text() == ""  # no name yet, but no complaint before the first edit
    dialog.name_edit.setText("hot_inlet")
    assert not ok.isEnabled() and dialog.error.text()  # edited: now it says what is missing (the summary)
    row = dialog.conditions.rows[0]
    row.signal_combo.setCurrentText("temp_c")
    row.op_combo.setCurrentText(">")
    row.value_edit.setText("80")
    dialog.for_edit.setText("2m")
    dialog.severity_combo.setCurrentText("critical")
    dialog.scope_combo.setCurrentText("node")
    dialog.scope_values.setText("node07, node08")
    dialog.summary_edit.setText("{node} GPU {gpu_index}: {value:.0f} °C, over {threshold:g} °C")
    assert ok.isEnabled(), dialog.error.text()
    assert dialog.error.text() == ""
    assert dialog.preview.text() == "node07 GPU 3: 84 °C, over 80 °C"  # the example GPU, as the engine renders it
    ok.click()

    qtbot.waitUntil(lambda: tab.selected_rule() is not None and tab.selected_rule().name == "hot_inlet", timeout=PATIENCE_MS)
    rule = stored_rule(db, "hot_inlet")
    assert rule is not None and new_store(db).rules()[-1] == rule  # appended
    assert rule.conditions == (Condition("temp_c", ">", 80.0),)
    assert (rule.for_s, rule.severity, rule.scope) == (120.0, Severity.CRITICAL, Scope("node", ("node07", "node08")))
    model = tab.rules_model
    row_texts = [model.index(model.row_of("hot_inlet"), c).data() for c in range(len(RULE_COLUMNS))]
    assert row_texts == ["hot_inlet", "yes", "critical", "GPUs of node node07, node08", "temp_c > 80", "2m", "—", "custom"]
    assert tab.status.text() == "Rule hot_inlet added"


def test_invalid_input_keeps_ok_disabled_and_says_why(qtbot, open_tab) -> None:
    tab = open_tab()
    dialog = tab.open_new_rule()
    ok = ok_button(dialog)
    dialog.name_edit.setText("fans_stuck")
    dialog.summary_edit.setText("{node}: fans at {value:.0f}%")
    row = dialog.conditions.rows[0]
    row.signal_combo.setCurrentText("fan_pct")
    row.value_edit.setText("100")
    assert ok.isEnabled()

    def refused(fragment: str) -> None:
        assert not ok.isEnabled()
        assert fragment in dialog.error.text()
        assert dialog.preview.text() == NO_PREVIEW

    dialog.name_edit.setText("Fans Stuck")
    refused("name 'Fans Stuck' must be lower-case letters")
    dialog.name_edit.setText("gpu_lost")
    assert not ok.isEnabled() and dialog.error.text() == "a rule named 'gpu_lost' exists already; choose another name"
    dialog.name_edit.setText("fans_stuck")
    row.value_edit.setText("lots")
    refused("value must be a finite number, not 'lots'")
    row.value_edit.setText("100")
    row.mode_combo.setCurrentText(RELATIVE)
    row.ref_combo.setCurrentText("power_limit_w")
    row.scale_edit.setText("half")
    refused("scale must be a finite number, not 'half'")
    row.scale_edit.setText("0.5")
    assert ok.isEnabled()
    dialog.for_edit.setText("a fortnight")
    refused("For: bad duration 'a fortnight'")
    dialog.for_edit.setText("-5")
    refused("for_s must be >= 0")
    dialog.for_edit.setText("5m")
    dialog.summary_edit.setText("{node}: fans at {colour}")
    refused("summary uses unknown placeholder {colour}")
    dialog.summary_edit.setText("{node}: fans at {value:.0f}%")
    dialog.scope_combo.setCurrentText("customer")
    refused("a customer scope needs \"values\"")
    dialog.scope_combo.setCurrentText("fleet")
    dialog.target_combo.setCurrentIndex(dialog.target_combo.findData("node"))
    # Node rules have their own signals; the placeholder {value:.0f} is fine, {gpu_index} is not.
    assert row.signal_combo.findText("fan_pct") == -1 and row.signal_combo.findText("gpu_count") >= 0
    dialog.summary_edit.setText("{node} GPU {gpu_index}")
    refused("summary uses unknown placeholder {gpu_index}")
    assert not dialog.conditions.rows[0].remove_button.isEnabled()  # a rule needs a condition
    dialog.reject()


def test_a_builtin_threshold_edited_in_the_dialog_changes_what_a_running_collector_fires(qtbot, db: Path, open_tab) -> None:
    conn, _ = open_database(db, create=False)
    collector = AlertService(conn, poll_interval_s=5.0)  # running before the edit
    gpus = make_inventory(N)

    def sample(ts: float):
        return make_sample(N, ts=ts, gpus=gpus, values={"mem_used_bytes": {5: 48 * 2**30}})  # GPU 5 at 60% used

    assert not [c for c in collector.process(sample(T0), T0).changes if c.alert.rule == "memory_nearly_full"]

    tab = open_tab()
    assert tab.select_rule("memory_nearly_full")
    dialog = tab.open_edit_rule()
    assert dialog.conditions.rows[0].value_edit.text() == "95"
    dialog.conditions.rows[0].value_edit.setText("55")
    dialog.clear.rows[0].value_edit.setText("50")
    ok_button(dialog).click()
    qtbot.waitUntil(lambda: stored_rule(db, "memory_nearly_full").conditions[0].value == 55.0, timeout=PATIENCE_MS)
    qtbot.waitUntil(lambda: tab.selected_rule().conditions[0].value == 55.0, timeout=PATIENCE_MS)
    model = tab.rules_model
    assert model.index(model.row_of("memory_nearly_full"), len(RULE_COLUMNS) - 1).data() == "built-in, edited"
    assert [r.name for r in new_store(db).rules()] == [r.name for r in builtin_rules()]  # edited in place

    fired = collector.process(sample(T0 + 5), T0 + 5).of_kind(ChangeKind.FIRING)
    assert [(a.rule, a.gpu_uuid) for a in fired] == [("memory_nearly_full", gpus[5].uuid)]
    assert fired[0].summary.endswith("memory 60% used")
    collector.close()
    conn.close()


def test_a_bad_rules_file_reports_every_problem_and_changes_nothing(qtbot, db: Path, open_tab, tmp_path: Path) -> None:
    tab = open_tab()
    before, revision = new_store(db).export_rules(), new_store(db).rules_revision()
    good = builtin_rules()[0].to_dict()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "gpuops-alert-rules", "version": 1, "rules": [
        good,
        {**good, "name": "too_hot", "conditions": [{"signal": "temp_fahrenheit", "op": ">", "value": 180}]},
        {**good, "name": "too_cold", "severity": "urgent"},
    ]}))
    tab.import_rules_from(bad)
    qtbot.waitUntil(lambda: not tab.rules_problems.isHidden(), timeout=PATIENCE_MS)
    assert tab.status.text() == "Rules not imported from bad.json, nothing changed: 2 problem(s), listed below"
    problems = tab.rules_problems.toPlainText().splitlines()
    assert len(problems) == 2
    assert "rule 2 'too_hot': conditions[0]: unknown signal 'temp_fahrenheit'" in problems[0]
    assert "rule 3 'too_cold': severity 'urgent' is not one of info, warning, critical" in problems[1]
    assert new_store(db).export_rules() == before and new_store(db).rules_revision() == revision

    garbage = tmp_path / "notes.json"
    garbage.write_text("{rules: yes}")
    tab.import_rules_from(garbage)
    qtbot.waitUntil(lambda: "notes.json: not valid JSON at line 1" in tab.rules_problems.toPlainText(), timeout=PATIENCE_MS)
    tab.import_rules_from(tmp_path / "missing.json")
    qtbot.waitUntil(lambda: tab.status.text().startswith("Cannot read"), timeout=PATIENCE_MS)
    assert "No such file" in tab.status.text()
    assert new_store(db).export_rules() == before and new_store(db).rules_revision() == revision


def test_export_then_import_gives_back_the_same_rules(qtbot, db: Path, open_tab, tmp_path: Path) -> None:
    tab = open_tab()
    # Tune the set first: a built-in disabled with the Enabled box, a custom copy of another.
    model = tab.rules_model
    lost = model.row_of("gpu_lost")
    assert (
        model.setData(model.index(lost, ENABLED_COLUMN), Qt.CheckState.Unchecked.value, Qt.ItemDataRole.CheckStateRole) is False
    )
    qtbot.waitUntil(lambda: not stored_rule(db, "gpu_lost").enabled, timeout=PATIENCE_MS)
    assert tab.select_rule("hw_throttle")
    dialog = tab.open_duplicate_rule()
    assert dialog.name_edit.text() == "hw_throttle_copy" and ok_button(dialog).isEnabled()
    dialog.severity_combo.setCurrentText("critical")
    ok_button(dialog).click()
    qtbot.waitUntil(lambda: stored_rule(db, "hw_throttle_copy") is not None, timeout=PATIENCE_MS)
    tuned = new_store(db).rules()

    exported = tmp_path / "rules.json"
    tab.export_rules_to(exported)
    qtbot.waitUntil(lambda: tab.status.text() == f"Exported {len(tuned)} rules to {exported}", timeout=PATIENCE_MS)
    assert rules_from_text(exported.read_text(encoding="utf-8")) == tuned

    # Change the set again, then bring the exported one back.
    qtbot.waitUntil(
        lambda: tab.selected_rule() is not None and tab.selected_rule().name == "hw_throttle_copy", timeout=PATIENCE_MS
    )
    assert tab.delete_rule_button.isEnabled()
    box = tab.delete_selected_rule()
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: stored_rule(db, "hw_throttle_copy") is None, timeout=PATIENCE_MS)
    assert tab.select_rule("gpu_lost")
    tab.toggle_rule_button.click()
    qtbot.waitUntil(lambda: stored_rule(db, "gpu_lost").enabled, timeout=PATIENCE_MS)
    assert new_store(db).rules() != tuned

    tab.import_rules_from(exported)
    qtbot.waitUntil(lambda: tab.status.text() == f"Imported {len(tuned)} rules from {exported}", timeout=PATIENCE_MS)
    assert new_store(db).rules() == tuned
    qtbot.waitUntil(lambda: tab.rules_model.rules() == tuned, timeout=PATIENCE_MS)


def test_builtins_are_disabled_not_deleted_and_edits_elsewhere_show_up(qtbot, db: Path, open_tab) -> None:
    tab = open_tab()
    assert tab.select_rule("ecc_uncorrectable")
    assert not tab.delete_rule_button.isEnabled() and tab.delete_rule_button.toolTip() == BUILTIN_DELETE_TIP
    assert tab.delete_selected_rule() is None
    assert tab.toggle_rule_button.text() == "Disable"
    tab.toggle_rule_button.click()
    qtbot.waitUntil(lambda: tab.toggle_rule_button.text() == "Enable", timeout=PATIENCE_MS)
    assert not stored_rule(db, "ecc_uncorrectable").enabled

    # `gpuops alerts --import-rules` or another console: the tab follows at the next refresh.
    new_store(db).set_rule_enabled("ecc_uncorrectable", True, T0)
    tab.worker.refresh()
    qtbot.waitUntil(lambda: tab.selected_rule().enabled, timeout=PATIENCE_MS)


def test_the_file_buttons_open_file_dialogs_that_import_and_export(qtbot, db: Path, open_tab, tmp_path: Path) -> None:
    tab = open_tab()
    dialog = tab.open_export_rules()
    assert isinstance(dialog, QFileDialog) and dialog.acceptMode() is QFileDialog.AcceptMode.AcceptSave
    target = tmp_path / "chosen.json"
    dialog.fileSelected.emit(str(target))
    dialog.reject()
    qtbot.waitUntil(target.exists, timeout=PATIENCE_MS)
    dialog = tab.open_import_rules()
    assert dialog.acceptMode() is QFileDialog.AcceptMode.AcceptOpen
    dialog.fileSelected.emit(str(target))
    dialog.reject()
    qtbot.waitUntil(lambda: tab.status.text().startswith("Imported"), timeout=PATIENCE_MS)


def test_read_only_shows_the_rules_but_disables_every_edit(qtbot, db: Path, open_tab, tmp_path: Path) -> None:
    tab = open_tab(read_only=True)
    revision = new_store(db).rules_revision()
    assert tab.select_rule("gpu_lost")
    for button in (tab.new_rule_button, tab.duplicate_rule_button, tab.toggle_rule_button, tab.delete_rule_button,
                   tab.import_rules_button):
        assert not button.isEnabled() and button.toolTip() == READ_ONLY_TIP
    assert tab.export_rules_button.isEnabled()
    assert tab.open_new_rule() is None and tab.open_duplicate_rule() is None and tab.open_import_rules() is None
    model = tab.rules_model
    index = model.index(model.row_of("gpu_lost"), ENABLED_COLUMN)
    assert not model.flags(index) & Qt.ItemFlag.ItemIsUserCheckable
    asked = []
    model.enabledToggled.connect(lambda *args: asked.append(args))
    assert model.setData(index, Qt.CheckState.Unchecked.value, Qt.ItemDataRole.CheckStateRole) is False
    tab.toggle_selected_rule()
    tab.import_rules_from(tmp_path / "whatever.json")
    assert asked == []

    assert tab.edit_rule_button.text() == "View…"
    dialog = tab.open_edit_rule()
    assert not ok_button(dialog).isVisibleTo(dialog) and not dialog.name_edit.isEnabled()
    assert not dialog.conditions.rows[0].value_edit.isEnabled()
    dialog.reject()
    tab.worker.refresh()  # a round trip through the worker: nothing was queued before it
    qtbot.waitUntil(lambda: tab.snapshot is not None, timeout=PATIENCE_MS)
    assert new_store(db).rules_revision() == revision

"""The Alerts tab in the window: the console evaluates the rules while it records the history
itself, shows counts in the tab and window titles, marks alerting GPUs, selects a GPU from its
alert, filters history, draws a GPU's timeline, and acknowledges / silences / puts nodes in
maintenance through the alert worker (never on the GUI thread); --read-only disables actions."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QDialogButtonBox

from gpuops.core.alerts.model import AlertState, Severity
from gpuops.core.alerts.persistence import AlertStore
from gpuops.core.store.connection import open_database
from tests.alerts_support import collect_with_alerts
from tests.gui_support import ECC_GPUS, OFFSCREEN_PLUGIN_NOTICE, FakeSource, FaultySource, gpu_uuid, open_windows

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)

N = 16
PATIENCE_MS = 20_000


@pytest.fixture
def open_window(qtbot, tmp_path: Path):
    windows = []
    with open_windows(qtbot) as make_window:
        def make(*, read_only: bool = False, history: bool = True, source: FakeSource | None = None):
            db = tmp_path / "history.sqlite" if history else None
            window = make_window(source or FaultySource(N), history_db=db, read_only=read_only, size=(1200, 800))
            windows.append(window)
            return window

        yield make
    for window in windows:
        assert window.alerts.worker is None or window.alerts.worker.join(5.0)
    assert not [t.name for t in threading.enumerate() if t.name == "gpuops-alerts"]


def stored(window) -> AlertStore:
    conn, _ = open_database(window.alerts.worker.db_path, create=False)
    return AlertStore(conn)


def wait_for_alerts(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.alerts.tab.title.startswith("Alerts (2 critical"), timeout=PATIENCE_MS)


def ecc_alert(window, position: int):
    snapshot = window.alerts.tab.snapshot
    return next(a for a in snapshot.active if a.rule == "ecc_uncorrectable" and a.gpu_uuid == gpu_uuid(position))


def test_counts_reach_the_titles_grid_marks_and_the_notifier(qtbot, open_window) -> None:
    window = open_window()
    wait_for_alerts(qtbot, window)
    tabs = window.ops.tabs
    assert tabs.tabText(tabs.indexOf(window.alerts.tab)) == window.alerts.tab.title
    assert window.windowTitle().startswith("gpuops — 2 critical")
    assert window.windowTitle().endswith("fake:16")
    marks = window.grid.alert_marks
    assert {u for u, s in marks.marks.items() if s is Severity.CRITICAL} == {gpu_uuid(p) for p in ECC_GPUS}
    assert marks.paths[Severity.CRITICAL].path().elementCount() == 2 * 4  # two closed triangles
    # No system tray offscreen: the notification goes to the status bar, once, coalesced.
    qtbot.waitUntil(lambda: "2 new alerts (critical)" in window.statusBar().currentMessage(), timeout=PATIENCE_MS)
    assert all(a.notified_at is not None for a in stored(window).active_alerts() if a.severity is Severity.CRITICAL)


def test_grouping_switch_and_choosing_an_alert_selects_its_gpu(qtbot, open_window) -> None:
    window = open_window()
    wait_for_alerts(qtbot, window)
    tab = window.alerts.tab
    assert {"node-000", "node-002"} <= set(tab.model.groups())
    tab.group_combo.setCurrentIndex(tab.group_combo.findData("rule"))
    assert tab.model.groups()[0] == "ecc_uncorrectable"  # the worst group first
    alert = ecc_alert(window, 9)
    assert tab.select_alert(alert.id)
    assert window.grid.selected_uuid == gpu_uuid(9)
    assert window.detail.uuid == gpu_uuid(9)
    tab.views.setCurrentIndex(2)
    qtbot.waitUntil(lambda: "ecc_uncorrectable" in tab.timeline.rules, timeout=PATIENCE_MS)
    rules = sorted({a.rule for a in stored(window).history(gpu_uuid=gpu_uuid(9))})
    assert tab.timeline.rules == rules
    assert len(tab.timeline.bars.opts["x0"]) >= len(rules)


def test_history_filters_go_through_the_worker(qtbot, open_window) -> None:
    window = open_window()
    wait_for_alerts(qtbot, window)
    tab = window.alerts.tab
    tab.views.setCurrentIndex(1)
    tab.severity_filter.setCurrentIndex(tab.severity_filter.findData(Severity.CRITICAL))
    tab.node_filter.setText("node-002")
    qtbot.waitUntil(lambda: [a.gpu_uuid for a in tab.history_model.alerts()] == [gpu_uuid(9)], timeout=PATIENCE_MS)
    tab.node_filter.setText("")
    tab.state_filter.setCurrentIndex(tab.state_filter.findData(AlertState.RESOLVED))
    qtbot.waitUntil(lambda: tab.history_status.text() == "0 alerts", timeout=PATIENCE_MS)


def test_acknowledge_and_silence_dialogs_validate_and_write_through_the_worker(qtbot, open_window) -> None:
    window = open_window()
    wait_for_alerts(qtbot, window)
    tab = window.alerts.tab
    alert = ecc_alert(window, 3)
    assert tab.select_alert(alert.id)
    dialog = tab.open_acknowledge()
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled() and "Say what is being done" in dialog.error.text()
    dialog.note_edit.setText("RMA opened, ticket 4711")
    assert ok.isEnabled()
    ok.click()
    qtbot.waitUntil(lambda: ecc_alert(window, 3).ack_note == "RMA opened, ticket 4711", timeout=PATIENCE_MS)
    assert "acknowledged by" in tab.status.text()

    dialog = tab.open_silence()
    assert dialog.matchers_edit.toPlainText().splitlines() == ["rule=ecc_uncorrectable", f"gpu={gpu_uuid(3)}"]
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled()  # no comment yet
    dialog.comment_edit.setText("reseating it")
    dialog.matchers_edit.setPlainText("colour=red")
    assert not ok.isEnabled() and "cannot match on label 'colour'" in dialog.error.text()
    dialog.matchers_edit.setPlainText(f"rule=ecc_uncorrectable\ngpu={gpu_uuid(3)}")
    dialog.end_edit.setDateTime(dialog.start_edit.dateTime().addSecs(-60))
    assert not ok.isEnabled() and "must end after it starts" in dialog.error.text()
    dialog.end_edit.setDateTime(dialog.start_edit.dateTime().addSecs(3600))
    ok.click()
    # The console evaluates at the next poll: the alert is muted, the counts drop.
    qtbot.waitUntil(lambda: tab.title.startswith("Alerts (1 critical"), timeout=PATIENCE_MS)
    assert ecc_alert(window, 3).silenced_by == "1"
    assert window.windowTitle().startswith("gpuops — 1 critical")
    assert set(window.grid.alert_marks.marks) >= {gpu_uuid(9)} and gpu_uuid(3) not in window.grid.alert_marks.marks


def test_maintenance_toggle_mutes_a_node(qtbot, open_window) -> None:
    window = open_window()
    wait_for_alerts(qtbot, window)
    tab = window.alerts.tab
    assert tab.select_alert(ecc_alert(window, 9).id)
    assert tab.maintenance_button.isEnabled() and tab.maintenance_button.text() == "node-002 in maintenance"
    tab.maintenance_button.click()
    qtbot.waitUntil(lambda: ecc_alert(window, 9).silenced_by == "maintenance", timeout=PATIENCE_MS)
    assert "node-002" in tab.snapshot.maintenance and tab.maintenance_button.isChecked()
    tab.maintenance_button.click()
    qtbot.waitUntil(lambda: ecc_alert(window, 9).silenced_by is None, timeout=PATIENCE_MS)


def test_read_only_disables_every_action(qtbot, open_window, tmp_path: Path) -> None:
    collect_with_alerts(tmp_path / "history.sqlite", FaultySource(N), 2)  # a read-only console records nothing itself
    window = open_window(read_only=True)
    wait_for_alerts(qtbot, window)
    tab = window.alerts.tab
    assert tab.select_alert(ecc_alert(window, 3).id)
    for button in (tab.ack_button, tab.silence_button, tab.maintenance_button, tab.expire_button):
        assert not button.isEnabled() and "read-only" in button.toolTip()
    assert tab.open_acknowledge() is None and tab.open_silence() is None


def test_without_history_the_tab_says_why(qtbot, open_window) -> None:
    window = open_window(history=False, source=FakeSource(N))
    tab = window.alerts.tab
    assert window.alerts.worker is None
    assert "without history" in tab.status.text()
    assert not tab.silence_button.isEnabled()


def test_offscreen_render_of_the_tab_is_its_size_and_not_blank(qtbot, open_window) -> None:
    window = open_window()
    wait_for_alerts(qtbot, window)
    window.ops.tabs.setCurrentWidget(window.alerts.tab)
    qtbot.waitUntil(lambda: window.alerts.tab.isVisible())
    image = window.alerts.tab.grab().toImage()
    assert (image.width(), image.height()) == (window.alerts.tab.width(), window.alerts.tab.height())
    assert image.width() > 300 and image.height() > 200
    from PySide6.QtGui import QImage

    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(rgb.constBits(), dtype=np.uint8).reshape(rgb.height(), rgb.bytesPerLine())[:, : rgb.width() * 3]
    assert len(np.unique(rows.reshape(-1, 3), axis=0)) > 20  # text, lines, severity colours

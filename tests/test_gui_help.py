"""Help at the console: the user guide (views, sources, every command), the keyboard shortcuts
(read from the window's own actions and shortcuts, the grid's keys too), version info copied for
a bug report, and a toolbar with the common actions (export, replay, find, settings)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QToolBar

from gpuops import __version__
from gpuops.cli import command_summaries
from gpuops.gui.window.help import ShortcutsDialog, UserGuideDialog, shortcut_rows
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, open_windows

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)


@pytest.fixture
def make_window(qtbot):
    with open_windows(qtbot) as make:
        yield make


def _texts(actions) -> list[str]:
    return [a.text().replace("&", "") for a in actions if not a.isSeparator()]


def test_help_menu_and_toolbar_offer_the_common_actions(make_window, qtbot, tmp_path: Path) -> None:
    window = make_window(FakeSource(8), history_db=tmp_path / "history.sqlite")
    help_menu = next(m for m in window.menuBar().actions() if m.text() == "&Help").menu()
    assert _texts(help_menu.actions()) == ["User guide", "Keyboard shortcuts", "Copy version info", "About gpuops"]
    toolbar = window.findChild(QToolBar, "mainToolbar")
    assert _texts(toolbar.actions()) == ["Export snapshot…", "Replay…", "Find GPU", "Settings…"]
    actions = window.window_actions
    assert actions.replay.isEnabled()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    actions.find.trigger()
    qtbot.waitUntil(window.grid.search_edit.hasFocus)


def test_replay_is_offered_only_with_a_history(make_window) -> None:
    window = make_window(FakeSource(8), history_db=None)
    assert not window.window_actions.replay.isEnabled()


def test_the_user_guide_names_every_view_source_and_command(qtbot) -> None:
    dialog = UserGuideDialog()
    qtbot.addWidget(dialog)
    text = dialog.browser.toPlainText()
    for view in ("KPI strip", "Fleet grid", "GPU tab", "Node tab", "Fleet trends", "Alerts", "Customers", "Replay"):
        assert view in text
    for source in ("auto", "nvml", "demo[:N]", "scrape:URL", "prometheus:URL"):
        assert source in text
    for name, summary in command_summaries():
        assert f"gpuops {name}: {summary.replace('`', '')}" in text  # the guide shows `code` as code


def test_the_shortcut_list_comes_from_the_window_itself(make_window, qtbot) -> None:
    window = make_window(FakeSource(8))
    rows = dict((what, keys) for keys, what in shortcut_rows(window))
    assert rows["Export snapshot"] == "Ctrl+E"
    assert rows["Find a GPU"] == "Ctrl+F"
    assert rows["Show tab 1"] == "Ctrl+1"
    assert "Clear the selection, or leave replay" in rows
    assert any(what.endswith("(in the grid)") for what in rows)
    dialog = ShortcutsDialog(shortcut_rows(window), window)
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == len(rows)


def test_copy_version_info_puts_the_facts_of_a_bug_report_on_the_clipboard(make_window, qtbot) -> None:
    window = make_window(FakeSource(8))
    qtbot.waitUntil(lambda: window.source_info is not None)
    window.window_actions.copy_versions.trigger()
    text = QApplication.clipboard().text()
    assert f"gpuops: {__version__}" in text
    assert "Telemetry source: fake:8" in text and "Qt:" in text and "Platform:" in text
    assert "copied" in window.statusBar().currentMessage()

"""What the console remembers: window state round trip into a new window, preferences and the
saved source for launches without --source, the Settings and About dialogs, the app icon."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QDialogButtonBox, QLabel, QSplitter

from core.telemetry import GpuInventory
from gpuops.cli import build_parser
from gpuops.commands.window import launch_settings
from gui.about_dialog import NOT_KNOWN, AboutDialog, version_rows
from gui.app import application
from gui.settings_dialog import RESTART_NOTE, SettingsDialog
from gui.settings_store import (
    Preferences,
    last_export_dir,
    load_preferences,
    open_settings,
    remember_export_dir,
    restore_window_state,
    save_preferences,
    save_window_state,
)
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, make_sample, open_windows

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)


@pytest.fixture
def make_window(qtbot):
    with open_windows(qtbot) as make:
        yield make


@pytest.fixture
def user_settings():
    """The per-user settings file (under the session's temporary XDG_CONFIG_HOME), emptied after."""
    settings = open_settings()
    yield settings
    settings.clear()
    settings.sync()


def test_settings_live_under_xdg_config_home(user_settings):
    assert Path(user_settings.fileName()) == Path(os.environ["XDG_CONFIG_HOME"]) / "gpuops" / "gpuops.ini"


def test_window_state_metric_and_export_folder_come_back_in_a_new_window(make_window, tmp_path, qtbot):
    settings = QSettings(str(tmp_path / "gpuops.ini"), QSettings.Format.IniFormat)
    # The offscreen screen is 800 x 800 and restoreGeometry keeps windows on screen: let both
    # windows be smaller than the console's usual minimum so that the sizes compared fit.
    first = make_window(FakeSource(16), size=(1000, 700))
    first.setMinimumSize(300, 300)
    first.resize(710, 530)
    qtbot.waitUntil(lambda: first.height() == 530)
    size = (first.width(), first.height())
    first.grid.set_metric("temperature")
    splitters = first.findChildren(QSplitter)
    assert splitters, "the window has a splitter to remember"
    splitters[0].setSizes([250, 400])
    qtbot.wait(50)
    sizes = splitters[0].sizes()
    remember_export_dir(str(tmp_path / "exports"), settings)
    save_window_state(first, settings)

    second = make_window(FakeSource(16), size=(1000, 700))
    second.setMinimumSize(300, 300)
    assert second.grid.metric.key != "temperature" and (second.width(), second.height()) != size
    restore_window_state(second, settings)
    qtbot.wait(50)
    assert (second.width(), second.height()) == size
    assert second.grid.metric.key == "temperature"
    assert second.findChildren(QSplitter)[0].sizes() == sizes
    assert last_export_dir(settings) == str(tmp_path / "exports")


def test_restoring_from_empty_settings_changes_nothing(make_window, tmp_path):
    window = make_window(FakeSource(4), size=(800, 500))
    before = (window.width(), window.height(), window.grid.metric.key)
    restore_window_state(window, QSettings(str(tmp_path / "empty.ini"), QSettings.Format.IniFormat))
    assert (window.width(), window.height(), window.grid.metric.key) == before


def test_saved_source_interval_and_history_apply_when_the_command_line_has_none(user_settings, tmp_path):
    parse = build_parser().parse_args
    source, interval_s, db_path = launch_settings(parse([]))
    assert (source, interval_s) == ("auto", 1.0)
    save_preferences(Preferences(source="demo:4", interval_s=2.5, db_path=str(tmp_path / "h.sqlite")))
    assert launch_settings(parse([])) == ("demo:4", 2.5, tmp_path / "h.sqlite")
    assert launch_settings(parse(["--source", "demo:2", "--interval", "0.5", "--db", "/x.sqlite"])) == ("demo:2", 0.5, Path("/x.sqlite"))


def test_settings_dialog_edits_preferences_and_refuses_a_bad_retention(qtbot, user_settings):
    dialog = SettingsDialog(Preferences(source="demo:8", interval_s=2.0, theme="dark"))
    qtbot.addWidget(dialog)
    assert dialog.source.text() == "demo:8" and dialog.interval.value() == 2.0
    assert any(RESTART_NOTE == label.text() for label in dialog.findChildren(QLabel))
    ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    dialog.keep_raw.setText("forever")
    ok.click()
    assert dialog.result() == 0 and "bad duration 'forever'" in dialog.problem.text()
    dialog.keep_raw.setText("7d")
    dialog.source.setText("  ")
    dialog.units.setCurrentText("imperial")
    ok.click()
    assert dialog.result() == 1
    chosen = dialog.preferences()
    assert chosen == Preferences(source=None, interval_s=2.0, db_path=None, keep_raw="7d", units="imperial", theme="dark")
    save_preferences(chosen)
    assert load_preferences() == chosen


def test_about_lists_versions_and_the_driver_from_the_inventory(qtbot):
    import PySide6
    import pyqtgraph
    from PySide6.QtCore import qVersion

    rows = dict(version_rows(None))
    assert rows["Qt"] == qVersion() and rows["PySide6"] == PySide6.__version__ and rows["pyqtgraph"] == pyqtgraph.__version__
    assert rows["NVIDIA driver"] == NOT_KNOWN
    gpus = (GpuInventory("GPU-1", 0, "n1", "H100", driver_version="550.54.15", nvml_version="12.550.54.15"),)
    dialog = AboutDialog(make_sample(gpus), "nvml")
    qtbot.addWidget(dialog)
    shown = dict(dialog.rows)
    assert shown["NVIDIA driver"] == "550.54.15" and shown["NVML"] == "12.550.54.15" and shown["Telemetry source"] == "nvml"


def test_the_application_carries_the_gpuops_icon_and_desktop_name():
    app = application()
    assert app.desktopFileName() == "gpuops"
    sizes = {size.width() for size in app.windowIcon().availableSizes()}
    assert {16, 48, 256} <= sizes

"""What the console remembers: window state round trip into a new window, preferences and the
saved source for launches without --source, the Settings and About dialogs, the app icon."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QLabel, QSplitter

from gpuops.cli import parse_args
from gpuops.commands.window import launch_settings
from gpuops.core.telemetry import GpuInventory
from gpuops.gui.app.launch import application
from gpuops.gui.app.settings_store import (
    Preferences,
    last_export_dir,
    load_preferences,
    open_settings,
    remember_export_dir,
    restore_window_state,
    save_preferences,
    save_window_state,
)
from gpuops.gui.window.about_dialog import NOT_KNOWN, AboutDialog, version_rows
from gpuops.gui.window.settings_dialog import RESTART_NOTE, UNITS_NOTE, SettingsDialog
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
    assert restore_window_state(second, settings)
    qtbot.wait(50)
    assert (second.width(), second.height()) == size
    assert second.grid.metric.key == "temperature"
    assert second.findChildren(QSplitter)[0].sizes() == sizes
    assert last_export_dir(settings) == str(tmp_path / "exports")


def test_restoring_from_empty_settings_changes_nothing(make_window, tmp_path):
    window = make_window(FakeSource(4), size=(800, 500))
    before = (window.width(), window.height(), window.grid.metric.key)
    assert not restore_window_state(window, QSettings(str(tmp_path / "empty.ini"), QSettings.Format.IniFormat))
    assert (window.width(), window.height(), window.grid.metric.key) == before


def test_saved_source_interval_and_history_apply_when_the_command_line_has_none(user_settings, tmp_path):
    parse = parse_args
    source, interval_s, db_path = launch_settings(parse([]))
    assert (source, interval_s) == ("auto", 1.0)
    save_preferences(Preferences(source="demo:4", interval_s=2.5, db_path=str(tmp_path / "h.sqlite")))
    assert launch_settings(parse([])) == ("demo:4", 2.5, tmp_path / "h.sqlite")
    given = parse(["--source", "demo:2", "--interval", "0.5", "--db", "/x.sqlite"])
    assert launch_settings(given) == ("demo:2", 0.5, Path("/x.sqlite"))


def test_settings_dialog_edits_preferences_and_refuses_a_bad_retention(qtbot, user_settings):
    dialog = SettingsDialog(Preferences(source="demo:8", interval_s=2.0, theme="dark"))
    qtbot.addWidget(dialog)
    assert dialog.source.text() == "demo:8" and dialog.interval.value() == 2.0
    labels = [label.text() for label in dialog.findChildren(QLabel)]
    assert RESTART_NOTE in labels and UNITS_NOTE in labels
    ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    dialog.keep_raw.setText("forever")
    ok.click()
    assert dialog.result() == 0 and "bad duration 'forever'" in dialog.problem.text()
    dialog.keep_raw.setText("7d")
    dialog.keep_1h.setText("0d")
    ok.click()
    assert dialog.result() == 0 and "Retention" in dialog.problem.text()
    dialog.keep_1h.setText("5y")
    dialog.source.setText("  ")
    dialog.temperature.setCurrentIndex(dialog.temperature.findData("F"))
    dialog.memory.setCurrentIndex(dialog.memory.findData("decimal"))
    ok.click()
    assert dialog.result() == 1
    chosen = dialog.preferences()
    assert chosen == Preferences(
        source=None, interval_s=2.0, db_path=None, keep_raw="7d", keep_1h="5y", temperature_unit="F", memory_units="decimal",
        theme="dark",
    )
    save_preferences(chosen)
    assert load_preferences() == chosen


def test_unreadable_saved_values_fall_back_to_their_defaults(user_settings):
    for key, value in (("history/keep_1m", "soon"), ("display/theme", "purple"), ("display/temperature_unit", "K")):
        user_settings.setValue(key, value)
    user_settings.sync()
    assert load_preferences() == Preferences()


def test_the_console_history_writer_keeps_what_settings_say(qtbot, user_settings, tmp_path, monkeypatch):
    """The recorder (the console's own writer when no collector runs) hands the saved retention
    to the store exactly as `gpuops collect --keep-raw 6h --keep-1m 30d --keep-1h 1y` would."""
    import gpuops.gui.workers.history_recorder as recorder_module
    from gpuops.core.history_retention import retention_policy
    from gpuops.core.store import HistoryWriter

    given = []

    class SpyWriter(HistoryWriter):
        def __init__(self, path, **kwargs):
            given.append(kwargs.get("retention"))
            super().__init__(path, **kwargs)

    import gpuops.core.pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "HistoryWriter", SpyWriter)
    save_preferences(Preferences(keep_raw="6h", keep_1m="30d", keep_1h="1y"))
    recorder = recorder_module.HistoryRecorder(tmp_path / "history.sqlite")
    try:
        qtbot.waitUntil(lambda: recorder.writing)
    finally:
        assert recorder.stop()
    collect_args = parse_args(["collect", "--keep-raw", "6h", "--keep-1m", "30d", "--keep-1h", "1y"])
    assert given == [retention_policy(collect_args.keep_raw, collect_args.keep_1m, collect_args.keep_1h)]
    assert given[0].raw_s == 6 * 3600 and given[0].rollup_1m_s == 30 * 86400


def test_choosing_dark_darkens_the_plots_and_comes_back_in_a_new_window(make_window, qtbot, user_settings):
    from gpuops.gui.app.theme import apply_theme

    window = make_window(FakeSource(8), size=(900, 600))
    light_background = window.grid.view.backgroundBrush().color()
    assert light_background.lightness() > 128, "the test starts from the light default palette"
    try:
        dialog = SettingsDialog(load_preferences(), window)
        qtbot.addWidget(dialog)
        dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
        save_preferences(dialog.preferences())
        apply_theme(dialog.preferences().theme)  # as File > Settings does on OK
        qtbot.waitUntil(lambda: window.grid.view.backgroundBrush().color().lightness() < 100)
        assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 100
        apply_theme("system")  # as if the console were closed ...
        qtbot.waitUntil(lambda: window.grid.view.backgroundBrush().color() == light_background)
        apply_theme(load_preferences().theme)  # ... and started again: run_app applies the saved theme
        second = make_window(FakeSource(8), size=(900, 600))
        qtbot.waitUntil(lambda: second.grid.view.backgroundBrush().color().lightness() < 100)
        assert second.palette().color(QPalette.ColorRole.Window).lightness() < 100
    finally:
        apply_theme("system")


def test_fahrenheit_and_decimal_memory_change_the_tooltips_and_the_detail_panel(make_window, qtbot, user_settings):
    from gpuops.gui.window.actions import apply_display_preferences

    window = make_window(FakeSource(8), size=(900, 600))
    qtbot.waitUntil(lambda: window.last_sample is not None)
    sample = window.last_sample
    window.select_gpu(sample.gpus[0].uuid)
    temp_c = float(sample.metrics["temp_c"][0])
    assert "°C" in window.grid.tooltip_text(0) and "GiB" in window.grid.tooltip_text(0)
    apply_display_preferences(window, Preferences(temperature_unit="F", memory_units="decimal"))
    tooltip = window.grid.tooltip_text(0)
    assert f"{temp_c * 9 / 5 + 32:.0f} °F" in tooltip and "°C" not in tooltip
    assert " GB" in tooltip and "GiB" not in tooltip
    assert f"{temp_c * 9 / 5 + 32:.0f} °F" in window.detail.header.text()
    memory_row = [window.detail.inventory_table.item(r, 1).text() for r in range(window.detail.inventory_table.rowCount())
                  if window.detail.inventory_table.item(r, 0).text() == "Memory"]
    assert memory_row and memory_row[0].endswith(" GB")


def test_about_lists_versions_and_the_driver_from_the_inventory(qtbot):
    import pyqtgraph
    import PySide6
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

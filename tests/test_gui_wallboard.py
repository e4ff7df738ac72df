"""Wallboard mode: full screen, a large KPI strip, the grid (legend kept) and the active alerts
only, every other control hidden, the grid showing each site in turn; leaving it gives the
console back as it was. `gpuops window --wallboard [S]` asks for it (read-only)."""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtWidgets import QApplication, QToolBar

from gpuops.cli import parse_args
from gpuops.commands.window import DEFAULT_CYCLE_S
from gpuops.gui.live.poller import PollResult
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, close_windows, make_sample, window_factory

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)


@pytest.fixture
def window(qtbot):
    cleanups: list = []
    source = FakeSource(16)
    source.gpus = tuple(dataclasses.replace(g, site="ams1" if i < 8 else "fra2") for i, g in enumerate(source.gpus))
    window = window_factory(qtbot, cleanups)(source, start=False, size=(1200, 800))
    window.apply_result(PollResult(make_sample(source.gpus), 0.01))
    QApplication.processEvents()
    yield window
    close_windows(cleanups)


def test_the_wallboard_shows_the_numbers_grid_and_alerts_cycling_through_sites(window, qtbot) -> None:
    board, grid, tabs = window.wallboard, window.grid, window.ops.tabs
    assert [m.text() for m in window.menuBar().actions()] == ["&File", "&View", "&Help"]
    window.grid.set_filter("node-001")
    normal_size = window.kpi_strip.tiles["ok"].value.font().pointSizeF()
    board.enter(cycle_s=0.2)
    assert board.active and board.action.isChecked()
    assert not window.menuBar().isVisible() and not window.statusBar().isVisible()
    assert not any(bar.isVisible() for bar in window.findChildren(QToolBar))
    assert not grid.controls.isVisible() and not grid.metric_combo.isVisible() and grid.legend.isVisible()
    assert tabs.currentWidget() is window.alerts.tab and not tabs.tabBar().isVisible()
    assert window.alerts.tab.views.currentIndex() == 0 and not window.alerts.tab.views.tabBar().isVisible()
    assert not window.ops.replay_bar.isVisible()
    assert window.kpi_strip.tiles["ok"].value.font().pointSizeF() > 2 * normal_size
    assert grid.filter_edit.text() == "site:ams1" and board.site == "ams1"
    assert window.kpi_strip.caption.text().startswith("Grid: site ams1 (1 of 2)")
    qtbot.waitUntil(lambda: board.site == "fra2", timeout=3000)
    assert grid.message.text() == "Showing 8 of 16 GPUs"
    qtbot.waitUntil(lambda: board.site == "ams1", timeout=3000)  # and round again
    board.action.trigger()  # F11
    assert not board.active and not board.action.isChecked()
    assert window.menuBar().isVisible() and grid.controls.isVisible() and tabs.tabBar().isVisible()
    assert grid.filter_edit.text() == "node-001", "the operator's own filter comes back"
    assert window.kpi_strip.tiles["ok"].value.font().pointSizeF() == normal_size
    assert not window.kpi_strip.caption.isVisible()


def test_the_command_line_asks_for_the_wallboard_with_its_cycle() -> None:
    assert parse_args(["window"]).wallboard is None
    assert parse_args(["window", "--wallboard"]).wallboard == DEFAULT_CYCLE_S
    assert parse_args(["window", "--wallboard", "12"]).wallboard == 12.0
    assert parse_args(["--wallboard", "5"]).wallboard == 5.0  # what a bare `gpuops` runs

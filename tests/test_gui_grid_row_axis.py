"""The grid's left axis tells, on hover, the full text of the row under the mouse: a group
header's whole name with its GPU count, or a node's name (the axis is capped in width)."""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QToolTip

from gpuops.gui.live.poller import PollResult
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, close_windows, make_sample, window_factory

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)

LONG_MODEL = "NVIDIA H100 80GB HBM3 with a model name far longer than the axis has room to show"


@pytest.fixture
def window(qtbot):
    cleanups: list = []
    source = FakeSource(16)
    source.gpus = tuple(dataclasses.replace(g, name=LONG_MODEL) if i < 8 else g for i, g in enumerate(source.gpus))
    window = window_factory(qtbot, cleanups)(source, start=False, size=(1000, 700))
    window.apply_result(PollResult(make_sample(source.gpus), 0.01))
    QApplication.processEvents()
    yield window
    close_windows(cleanups)


def test_hovering_a_group_header_tells_its_whole_name_and_count(window, qtbot) -> None:
    grid = window.grid
    grid.set_grouping("model")
    qtbot.wait(50)
    axis = grid.view.getPlotItem().getAxis("left")
    header_scene = grid.image.mapToScene(grid.image.boundingRect().topLeft())  # row 0: the first group's header
    expected = {f"{LONG_MODEL} — 8 GPUs", "Test H100 — 8 GPUs"}
    assert axis.text_at_scene_y(header_scene.y() + 1) in expected
    # The real mouse over the axis, beside the first row.
    cell = grid.cell_rect(0)
    spot = QPoint(max(2, cell.left() - 20), cell.center().y())
    qtbot.wait(50)  # pyqtgraph drops mouse moves that come faster than its frame rate
    QTest.mouseMove(grid.view.viewport(), spot)
    qtbot.waitUntil(lambda: QToolTip.text() in expected, timeout=2000)

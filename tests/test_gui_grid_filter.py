"""A filtered grid keeps the usual cell size, laid out from the top-left, instead of stretching
the few GPUs found over the whole view; clearing the filter gives the whole fleet back."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from gpuops.gui.live.poller import PollResult
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, close_windows, make_sample, window_factory

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)


@pytest.fixture
def window(qtbot):
    cleanups: list = []
    source = FakeSource(64, 8)
    window = window_factory(qtbot, cleanups)(source, start=False, size=(1200, 800))
    window.apply_result(PollResult(make_sample(source.gpus, lost=frozenset({13, 42})), 0.01))
    qtbot.wait(50)
    yield window
    close_windows(cleanups)


def test_the_gpus_a_filter_finds_keep_their_cell_size_from_the_top_left(window, qtbot) -> None:
    grid = window.grid
    usual = grid.cell_rect(0)
    grid.set_filter("lost")
    qtbot.waitUntil(lambda: grid.message.text() == "Showing 2 of 64 GPUs")
    qtbot.wait(50)
    QApplication.processEvents()
    first, second = grid.cell_rect(13), grid.cell_rect(42)
    for cell in (first, second):
        assert abs(cell.width() - usual.width()) <= 1 and abs(cell.height() - usual.height()) <= 1
    assert abs(first.left() - usual.left()) <= 1 and abs(first.top() - usual.top()) <= 1, "from the top-left"
    grid.set_filter("")
    qtbot.waitUntil(lambda: grid.message.text() == "64 GPUs")
    qtbot.wait(50)
    assert grid.cell_rect(0) == usual

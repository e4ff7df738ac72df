"""Where the grid tiles several node blocks per row, every block in view carries its node's name
once zoomed in far enough to read it (the left axis names only each row's first node); zoomed
out, no name is drawn."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from gpuops.gui.grid.block_labels import MIN_ROW_HEIGHT_PX
from gpuops.gui.live.poller import PollResult
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, close_windows, make_sample, window_factory

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)


@pytest.fixture
def window(qtbot):
    cleanups: list = []
    source = FakeSource(2000, 8)
    window = window_factory(qtbot, cleanups)(source, start=False, size=(900, 600))
    window.apply_result(PollResult(make_sample(source.gpus), 0.01))
    QApplication.processEvents()
    yield window
    close_windows(cleanups)


def _paint(grid) -> tuple[str, ...]:
    grid.view.viewport().grab()  # paints the scene now
    return grid.block_labels.drawn


def test_every_block_in_view_is_named_once_zoomed_in(window) -> None:
    grid = window.grid
    assert grid.cell_size_px() < MIN_ROW_HEIGHT_PX
    assert _paint(grid) == (), "zoomed out: too small to name"
    while grid.cell_size_px() < 3 * MIN_ROW_HEIGHT_PX:
        grid.zoom_by(2.0)
        QApplication.processEvents()
    named = set(_paint(grid))
    gpus = window.last_sample.gpus
    assert len(named) >= 4 and named <= {gpu.node for gpu in gpus}
    first_gpu = {gpu.node: i for i, gpu in reversed(list(enumerate(gpus)))}
    first_column_left = grid.cell_rect(0).left()  # node-000 opens the first row: the axis names that column
    beside = [node for node in named if grid.cell_rect(first_gpu[node]).left() > first_column_left + 1]
    assert beside, "blocks the axis cannot name (not first in their row) carry their names"

"""Zoomed out over thousands of GPUs, lost and critical GPUs keep a mark of a minimum size on
screen (a cell of 2 px would hide them); zoomed in, their cells speak for themselves."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from gpuops.gui.grid.fleet_grid import MIN_URGENT_MARK_PX, URGENT_MARKS_BELOW_PX
from gpuops.gui.live.poller import PollResult
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, close_windows, make_sample, window_factory
from tests.samples import edited

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)

N = 4000
LOST = frozenset({7, 2500})
HOT = 1234  # at its slowdown temperature: critical


@pytest.fixture
def window(qtbot):
    cleanups: list = []
    source = FakeSource(N, 8)
    source.gpus = tuple(dataclasses.replace(g, slowdown_temp_c=87.0) for g in source.gpus)
    window = window_factory(qtbot, cleanups)(source, start=False, size=(1200, 800))

    def cool(metrics: dict[str, np.ndarray]) -> None:
        metrics["temp_c"][:] = 50.0
        metrics["temp_c"][HOT] = 90.0

    window.apply_result(PollResult(edited(make_sample(source.gpus, lost=LOST), cool), 0.01))
    QApplication.processEvents()
    yield window
    close_windows(cleanups)


def test_lost_and_critical_gpus_keep_a_visible_mark_when_zoomed_out(window, qtbot) -> None:
    grid = window.grid
    assert grid.cell_size_px() < URGENT_MARKS_BELOW_PX, "zoomed out over 4,000 GPUs"
    marks = grid.urgent_marks
    assert marks.isVisible()
    points = marks.points()
    assert len(points) == len(LOST) + 1
    for position in (*LOST, HOT):
        cell = grid.cell_rect(position)
        assert any(cell.contains(grid.view.mapFromScene(marks.mapToScene(p.pos()))) for p in points), position
    assert sorted(p.symbol() for p in points) == ["t1", "x", "x"], "lost: a cross; critical: a triangle"
    assert all(p.size() >= MIN_URGENT_MARK_PX for p in points)
    while grid.cell_size_px() < URGENT_MARKS_BELOW_PX:
        grid.zoom_by(2.0)
        QApplication.processEvents()
    assert not marks.isVisible(), "zoomed in, the cells' own cross and triangle are plain to see"

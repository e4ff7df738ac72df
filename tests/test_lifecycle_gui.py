"""The lifecycle in the console's grid: `lifecycle:` filters and groups, the tooltip says why a GPU
is out of production, from the book the Customers worker reads."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.lifecycle.book import LifecycleBook
from gpuops.core.lifecycle.states import State
from gpuops.core.store.writer import HistoryWriter
from gpuops.gui.grid.arrangement import FilterError, FleetFacts, filter_mask
from gpuops.gui.live.fleet_index import FleetIndex
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, cell_pixels, make_inventory, make_sample, open_windows

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)

N = 16
GPUS = make_inventory(N)  # 4 per node: node-000 .. node-003
PATIENCE_MS = 20_000


def test_the_filter_compares_lifecycle_states_exactly():
    index = FleetIndex(GPUS)
    zeros = np.zeros(N, dtype=np.uint8)
    states = ["draining"] * 4 + ["burn_in"] * 4 + ["production"] * 8
    facts = FleetFacts(zeros, zeros, lifecycle=states)
    assert filter_mask(index, facts, "lifecycle:draining").tolist() == [True] * 4 + [False] * 12
    assert filter_mask(index, facts, "lifecycle:burn-in lifecycle:draining").sum() == 8
    assert filter_mask(index, facts, "-lifecycle:production").sum() == 8
    assert filter_mask(index, FleetFacts(zeros, zeros), "lifecycle:production").all()  # nothing recorded
    with pytest.raises(FilterError, match="no lifecycle 'drained'"):
        filter_mask(index, facts, "lifecycle:drained")


def _stroke_share(pixels: np.ndarray) -> float:
    """The share of a cell's pixels far darker than its own colour (its most common one)."""
    flat = pixels.reshape(-1, 3).astype(np.int64)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    base = colours[np.argmax(counts)].sum()
    return float((flat.sum(axis=1) < 0.6 * base).mean())


@pytest.fixture
def history(tmp_path: Path) -> Path:
    path = tmp_path / "history.sqlite"
    now = time.time()
    with HistoryWriter(path) as writer:
        for minute in range(10, 0, -1):
            writer.write(make_sample(GPUS, ts=now - minute * 60))
    repo = AllocationRepository.open(path, user="frank")
    book = LifecycleBook(repo)
    book.transition("node-001", State.DRAINING, "PSU alarm", ticket="INC-5")
    book.transition("node-002", State.REPAIR, "XID 79", gpu_uuid=GPUS[9].uuid)
    repo.close()
    return path


def test_the_grid_filters_groups_and_explains_lifecycle_states(qtbot, history):
    with open_windows(qtbot) as make_window:
        window = make_window(FakeSource(N), history_db=history, size=(1400, 900))
        qtbot.waitUntil(lambda: window.allocations.book is not None and bool(window.allocations.book.lifecycle),
                        timeout=PATIENCE_MS)
        grid = window.grid
        qtbot.waitUntil(lambda: grid.layout_info is not None, timeout=PATIENCE_MS)
        grid.set_filter("lifecycle:draining")
        assert np.flatnonzero(grid.layout_info.arrangement.shown).tolist() == [4, 5, 6, 7]
        grid.set_filter("-lifecycle:production")
        assert np.flatnonzero(grid.layout_info.arrangement.shown).tolist() == [4, 5, 6, 7, 9]
        grid.set_filter("")
        grid.set_grouping("lifecycle")
        assert grid.layout_info.arrangement.group_labels == ("draining", "production", "repair")
        assert "lifecycle: draining since" in grid.tooltip_text(5) and "(PSU alarm, ticket INC-5)" in grid.tooltip_text(5)
        assert "lifecycle: repair" in grid.tooltip_text(9)
        assert "lifecycle:" not in grid.tooltip_text(0)
        grid.set_grouping("node")
        assert grid.lifecycle_marks.placed == 5  # node-001's four GPUs and GPU 9 hatched
        QApplication.processEvents()
        hatched, plain = _stroke_share(cell_pixels(grid, 5)), _stroke_share(cell_pixels(grid, 0))
        assert hatched > 0.01 and hatched > 10 * plain  # the strokes darken a visible part of the cell
        grid.set_filter("node-000")
        assert grid.lifecycle_marks.placed == 0  # filtered out, not drawn over another cell

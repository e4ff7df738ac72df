"""The fleet grid as an operations view: selection (click, Shift/Ctrl, rubber band, keys),
filter, grouping and sorting, search, per-GPU staleness, health reasons, node cells.

Samples are fed through the window's sample-handling slot, so every value is known.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from gpuops.core.condition import Condition
from gpuops.core.telemetry import GpuState
from gpuops.gui.common import palette
from gpuops.gui.live.poller import PollResult
from tests import samples
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, cell_rgb, close_windows, window_factory

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)

#: 6 nodes of 4 GPUs ("node00".."node05"), with serials and PCI ids.
GPUS = samples.make_inventory(24, gpus_per_node=4)
INTERVAL_S = 0.05
T0 = 1_763_798_400.0


@pytest.fixture
def window(qtbot):
    cleanups: list = []
    window = window_factory(qtbot, cleanups)(None, start=False, interval_s=INTERVAL_S)
    yield window
    close_windows(cleanups)


def feed(window, k: int = 0, **kwargs):
    sample = samples.make_sample(gpus=GPUS, ts=T0 + k * INTERVAL_S, **kwargs)
    window.apply_result(PollResult(sample, 0.01))
    QApplication.processEvents()
    return sample


def click(qtbot, grid, position: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.wait(40)  # pyqtgraph drops mouse events that come faster than its frame rate
    QTest.mouseClick(grid.view.viewport(), Qt.MouseButton.LeftButton, modifier, grid.cell_rect(position).center())


def drag(qtbot, viewport, start: QPoint, end: QPoint) -> None:
    """A left-button drag with the button held during the moves (QTest.mouseMove cannot)."""
    def send(kind, pos, button, buttons):
        event = QMouseEvent(
            kind, QPointF(pos), QPointF(viewport.mapToGlobal(pos)), button, buttons, Qt.KeyboardModifier.NoModifier
        )
        QApplication.sendEvent(viewport, event)

    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    qtbot.wait(40)
    send(QMouseEvent.Type.MouseButtonPress, start, left, left)
    for step in range(1, 9):
        qtbot.wait(20)
        send(QMouseEvent.Type.MouseMove, start + (end - start) * step / 8, none, left)
    send(QMouseEvent.Type.MouseButtonRelease, end, left, none)
    QApplication.processEvents()


def uuids(*positions: int) -> frozenset[str]:
    return frozenset(GPUS[p].uuid for p in positions)


def test_click_ctrl_click_and_shift_click_build_the_selection(qtbot, window):
    feed(window)
    grid = window.grid
    changes = []
    grid.selectionChanged.connect(changes.append)
    click(qtbot, grid, 5)
    assert grid.selected_uuids() == uuids(5) and window.detail.uuid == GPUS[5].uuid
    click(qtbot, grid, 9, Qt.KeyboardModifier.ControlModifier)
    assert grid.selected_uuids() == uuids(5, 9)
    assert window.detail.uuid == GPUS[9].uuid, "the GPU just added is the one shown"
    click(qtbot, grid, 5, Qt.KeyboardModifier.ControlModifier)
    assert grid.selected_uuids() == uuids(9)
    click(qtbot, grid, 2)
    click(qtbot, grid, 6, Qt.KeyboardModifier.ShiftModifier)
    assert grid.selected_uuids() == uuids(2, 3, 4, 5, 6), "a run in drawing order, across the node boundary"
    assert changes[-1] == uuids(2, 3, 4, 5, 6)
    window.ops.escape()
    assert grid.selected_uuids() == frozenset() and changes[-1] == frozenset()


def test_rubber_band_selects_the_cells_it_covers(qtbot, window):
    feed(window)
    grid = window.grid
    # Nodes are rows of 4 GPUs: from GPU 1 (node00) to GPU 10 (node02) covers columns 1-2 of rows 0-2.
    start, end = grid.cell_rect(1).center(), grid.cell_rect(10).center()
    drag(qtbot, grid.view.viewport(), start, end)
    assert grid.selected_uuids() == uuids(1, 2, 5, 6, 9, 10)
    assert not grid._viewbox.band.isVisible()


def test_arrow_keys_move_the_current_gpu(qtbot, window):
    feed(window)
    grid = window.grid
    click(qtbot, grid, 5)
    QTest.keyClick(grid.view, Qt.Key.Key_Right)
    assert grid.selected_uuid == GPUS[6].uuid and window.detail.uuid == GPUS[6].uuid
    QTest.keyClick(grid.view, Qt.Key.Key_Down)
    assert grid.selected_uuid == GPUS[10].uuid
    QTest.keyClick(grid.view, Qt.Key.Key_Up, Qt.KeyboardModifier.ShiftModifier)
    assert grid.selected_uuids() == uuids(10, 6)


def test_filter_shows_only_matching_gpus_and_a_bad_filter_says_why(window):
    feed(window, values={"ecc_uncorrected_volatile": {3: 2.0, 17: 1.0}})
    grid = window.grid
    grid.set_filter("node01")
    assert sorted(grid.layout_info.placed.tolist()) == [4, 5, 6, 7]
    assert grid.message.text() == "Showing 4 of 24 GPUs"
    grid.set_filter("health:critical")
    assert sorted(grid.layout_info.placed.tolist()) == [3, 17]
    grid.set_filter("health:critical -node:node04")
    assert grid.layout_info.placed.tolist() == [3]
    grid.set_filter("colour:blue")
    assert "unknown filter field 'colour'" in grid.message.text()
    assert grid.layout_info.placed.tolist() == [3], "a bad filter keeps the last good view"
    grid.set_filter("")
    assert len(grid.layout_info.placed) == 24


def test_group_by_health_puts_the_worst_first_under_labelled_rows(window):
    feed(window, values={"temp_c": {7: 90.0, 12: 84.0}}, states={20: GpuState.LOST})
    grid = window.grid
    grid.set_grouping("health")
    layout = grid.layout_info
    groups = [(label, count) for _, label, count in layout.group_rows]
    assert groups == [("lost", 1), ("critical", 1), ("warning", 1), ("ok", 21)]
    rows = {label: row for row, label, _ in layout.group_rows}
    assert layout.row[20] == rows["lost"] and layout.row[7] == rows["critical"] and layout.row[12] == rows["warning"]
    assert layout.row[0] >= rows["ok"]
    # A GPU that recovers moves group on the next poll.
    feed(window, 1)
    assert [label for _, label, _ in grid.layout_info.group_rows] == ["ok"]


def test_sort_by_value_puts_the_busiest_node_first(window):
    feed(window, values={"util_gpu_pct": {i: 99.0 for i in range(16, 20)}})  # node04
    grid = window.grid
    grid.set_sort("metric")
    layout = grid.layout_info
    assert layout.row_labels[0] == "node04"
    grid.set_sort("topology")
    assert grid.layout_info.row_labels[0] == "node00"


@pytest.mark.parametrize(
    "query, expected",
    [
        (GPUS[13].uuid, [13]),
        (GPUS[13].uuid.lower().removeprefix("gpu-"), [13]),
        (GPUS[13].serial, [13]),
        ("node02", [8, 9, 10, 11]),
        ("node03/" + GPUS[13].pci_bus_id.split(":", 1)[1], [13]),
    ],
)
def test_search_jumps_to_the_gpu(qtbot, window, query, expected):
    feed(window)
    grid = window.grid
    grid.set_filter("node00")  # the GPU is filtered out: finding it shows everything again
    window.ops.tabs.setCurrentIndex(1)
    assert grid.find(query) == len(expected)
    assert grid.selected_uuids() == uuids(*expected)
    assert window.detail.uuid == GPUS[expected[0]].uuid
    assert grid.filter_edit.text() == ""
    (x0, x1), (y0, y1) = grid._viewbox.viewRange()
    col, row = grid.layout_info.col[expected[0]], grid.layout_info.row[expected[0]]
    assert x0 <= col < x1 and y0 <= row < y1


def test_search_by_pci_id_alone_finds_that_slot_on_every_node(window):
    feed(window)
    assert window.grid.find("0000:19:00.0") == 6
    assert window.grid.find("no-such-gpu") == 0
    assert "No GPU matches 'no-such-gpu'" in window.grid.message.text()


def test_ctrl_f_focuses_the_search_box(qtbot, window):
    feed(window)
    window.activateWindow()
    QTest.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(window.grid.search_edit.hasFocus, timeout=2000)


def test_a_gpu_without_fresh_data_for_three_polls_is_drawn_stale_and_says_since_when(window):
    grid = window.grid
    feed(window, 0)
    fresh_rgb = cell_rgb(grid, 9)
    for k in range(1, 3):  # unknown for two intervals: no data yet, not stale
        feed(window, k, states={9: GpuState.UNKNOWN})
    assert cell_rgb(grid, 9) == palette.NO_DATA_RGB
    for k in range(3, 5):  # beyond three intervals
        feed(window, k, states={9: GpuState.UNKNOWN})
    assert window.ops.assessment.stale.tolist() == [i == 9 for i in range(24)]
    assert "stale, last seen" in grid.tooltip_text(9)
    assert "stale" not in grid.tooltip_text(8)
    grid.set_metric("health")
    assert cell_rgb(grid, 9) == palette.HEALTH_RGB[palette.HEALTH_STALE]
    assert cell_rgb(grid, 8) == palette.HEALTH_RGB[palette.HEALTH_OK]
    window.select_gpu(GPUS[9].uuid)
    assert "stale, last seen" in window.detail.header.text()
    feed(window, 5)  # fresh again
    assert not window.ops.assessment.stale.any()
    grid.set_metric("utilization")
    assert cell_rgb(grid, 9) == fresh_rgb


def test_health_reason_is_in_the_tooltip_and_the_detail_view(window):
    feed(window, values={"ecc_uncorrected_volatile": {2: 3.0}, "throttle_reasons_mask": {2: 0x40}})
    grid = window.grid
    text = grid.tooltip_text(2)
    assert "health: 3 uncorrectable ECC errors; HW thermal slowdown" in text
    assert "health: ok" in grid.tooltip_text(1)
    window.select_gpu(GPUS[2].uuid)
    assert "3 uncorrectable ECC errors" in window.detail.header.text()
    health = window.detail.health_text.text()
    assert "Thermal slowdown (hardware)" in health and "3 uncorrectable ECC errors" in health
    grid.set_metric("health")
    assert cell_rgb(grid, 2) == palette.HEALTH_RGB[palette.HEALTH_CRITICAL]


def test_node_cells_colour_each_node_by_its_worst_gpu(window):
    feed(window, values={"temp_c": {5: 84.0}})  # node01: one warning
    grid = window.grid
    grid.set_metric("health")
    grid.set_cells("node")
    assert grid.node_cells
    warning = palette.HEALTH_RGB[palette.HEALTH_WARNING]
    assert [cell_rgb(grid, p) for p in range(4, 8)] == [warning] * 4
    assert cell_rgb(grid, 0) == palette.HEALTH_RGB[palette.HEALTH_OK]
    grid.set_cells("gpu")
    assert cell_rgb(grid, 4) == palette.HEALTH_RGB[palette.HEALTH_OK]


def test_zooming_out_on_ten_thousand_gpus_switches_to_node_cells_and_zooming_in_back(qtbot, window):
    gpus = samples.make_inventory(10_000, gpus_per_node=8)
    window.apply_result(PollResult(samples.make_sample(gpus=gpus, ts=T0), 0.5))
    grid = window.grid
    window.resize(700, 500)
    QApplication.processEvents()
    grid.fit_all()
    QApplication.processEvents()
    assert grid.cell_size_px() < 4 and grid.node_cells
    grid.find(gpus[5_000].uuid)
    QApplication.processEvents()
    assert grid.cell_size_px() >= 4 and not grid.node_cells
    assert grid.selected_uuid == gpus[5_000].uuid
    QTest.keyClick(grid.view, Qt.Key.Key_0)
    assert grid.node_cells


def test_customers_group_and_filter_the_grid(window):
    feed(window)
    grid = window.grid
    grid.set_customers({GPUS[i].uuid: "Acme" for i in range(4, 12)} | {GPUS[0].uuid: "Zeta"})
    grid.set_grouping("customer")
    assert [(label, count) for _, label, count in grid.layout_info.group_rows] == [("Acme", 8), ("Zeta", 1), ("(none)", 15)]
    grid.set_filter("customer:acme")
    assert sorted(grid.layout_info.placed.tolist()) == list(range(4, 12))
    assert "customer: Acme" in grid.tooltip_text(4)


def test_colour_maps_are_colour_blind_safe_choices(window):
    feed(window)
    grid = window.grid
    viridis = cell_rgb(grid, 1)
    grid.set_colormap("cividis")
    assert cell_rgb(grid, 1) != viridis
    with pytest.raises(ValueError, match="unknown colour map"):
        grid.set_colormap("jet")
    assert np.array_equal(palette.CONDITION_CODES[[Condition.LOST]], [palette.LOST])

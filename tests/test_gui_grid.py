"""The fleet grid as people see it: colours per metric, lost GPUs, hover text, click to select.

The window is fed samples through its sample-handling slot (no poller), so every value is known.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QToolTip

from gpuops.gui.common import palette
from gpuops.gui.grid.layout import GridLayout
from gpuops.gui.live.fleet_index import FleetIndex
from gpuops.gui.live.poller import PollResult
from tests.gui_support import (
    OFFSCREEN_PLUGIN_NOTICE,
    FakeSource,
    cell_pixels,
    cell_rgb,
    close_windows,
    gpu_uuid,
    make_inventory,
    make_sample,
    processes_of,
    window_factory,
)
from tests.samples import edited

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)

GPUS = make_inventory(32, gpus_per_node=4)


@pytest.fixture
def window(qtbot):
    cleanups: list = []
    window = window_factory(qtbot, cleanups)(FakeSource(32, 4), start=False)
    yield window
    close_windows(cleanups)


def show(window, **kwargs):
    sample = make_sample(GPUS, **kwargs)
    window.apply_result(PollResult(sample, 0.01))
    QApplication.processEvents()  # the view takes a new layout's range on the next loop turn
    return sample


def viridis_rgb(fraction: float) -> tuple[int, int, int]:
    color = pg.colormap.get("viridis").map(fraction, mode="qcolor")
    return color.red(), color.green(), color.blue()


def close_to(actual, expected, tolerance=6) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def test_cell_colour_follows_the_chosen_metric(window):
    show(window)  # shift 0: GPU 1 has util 37 %, temperature 84 °C
    util_rgb = cell_rgb(window.grid, 1)
    assert close_to(util_rgb, viridis_rgb(0.37))

    window.grid.set_metric("temperature")
    assert window.grid.metric_combo.currentText() == "Temperature"
    temp_rgb = cell_rgb(window.grid, 1)
    assert close_to(temp_rgb, viridis_rgb((84 - 20) / (95 - 20)))
    assert temp_rgb != util_rgb

    window.grid.set_metric("power")  # 153 W of 700 W
    assert close_to(cell_rgb(window.grid, 1), viridis_rgb(153 / 700))
    window.grid.set_metric("memory")  # 13 GiB of 80 GiB
    assert close_to(cell_rgb(window.grid, 1), viridis_rgb(13 / 80))


def test_lost_gpu_is_drawn_in_the_lost_colour_with_a_marker(window):
    show(window, lost=frozenset({6}))
    assert cell_rgb(window.grid, 6, corner=True) == palette.LOST_RGB
    light = lambda pixels: (pixels.min(axis=2) > 200).mean()
    assert 0.005 < light(cell_pixels(window.grid, 6)) < 0.5, "a light X marks the lost cell"
    assert light(cell_pixels(window.grid, 5)) == 0
    assert cell_rgb(window.grid, 5, corner=True) != palette.LOST_RGB


def test_unsupported_value_is_drawn_as_no_data(window):
    sample = edited(make_sample(GPUS), lambda metrics: metrics["util_gpu_pct"].__setitem__(3, np.nan))
    window.apply_result(PollResult(sample, 0.01))
    assert cell_rgb(window.grid, 3) == palette.NO_DATA_RGB


def test_stale_node_is_washed_out_but_others_are_not(window):
    show(window, stale_nodes=frozenset({"node-001"}))  # GPUs 4..7
    fresh = {tuple(int(v) for v in c[:3]) for c in palette.value_colors()}
    washed = {tuple(int(v) for v in c[:3]) for c in palette.washed_out(palette.value_colors())}
    assert cell_rgb(window.grid, 5) in washed
    assert cell_rgb(window.grid, 1) in fresh


def test_hover_names_the_gpu_under_the_mouse(qtbot, window):
    show(window)
    viewport = window.grid.view.viewport()
    for position in (9, 22):
        qtbot.wait(50)  # pyqtgraph drops mouse moves that come faster than its frame rate
        QTest.mouseMove(viewport, window.grid.cell_rect(position).center())
        qtbot.waitUntil(lambda position=position: gpu_uuid(position) in QToolTip.text(), timeout=2000)
        text = QToolTip.text()
        assert f"node-{position // 4:03d} · GPU {position % 4}" in text
        assert "util" in text and "°C" in text


def test_click_selects_the_gpu_and_the_detail_panel_shows_it(qtbot, window):
    for shift in range(5):
        show(window, shift=shift)
    target = 8  # two processes, one of them in another PID namespace
    with qtbot.waitSignal(window.grid.gpuSelected, timeout=2000) as selected:
        QTest.mouseClick(
            window.grid.view.viewport(), Qt.MouseButton.LeftButton, pos=window.grid.cell_rect(target).center()
        )
    assert selected.args == [gpu_uuid(target)]
    assert window.grid.selected_uuid == gpu_uuid(target)
    assert window.detail.uuid == gpu_uuid(target)
    assert gpu_uuid(target) in window.detail.header.text()
    model = window.detail.process_model
    rows = [[model.index(r, c).data() for c in range(3)] for r in range(model.rowCount())]
    assert rows == [
        [str(p.pid), p.name or "(not visible from this host)", f"{p.used_mem_bytes / 2**30:.1f} GiB"]
        for p in processes_of(target)
    ]
    # The history kept for every GPU shows at once: five polls, this GPU's utilization.
    x, y = window.detail.plots.curves["util_gpu_pct"].getOriginalDataset()
    assert list(y) == [(target * 37 + shift) % 101 for shift in range(5)]
    show(window, shift=5)
    x, y = window.detail.plots.curves["util_gpu_pct"].getOriginalDataset()
    assert len(y) == 6 and y[-1] == (target * 37 + 5) % 101


def test_click_on_a_gap_selects_nothing(qtbot, window):
    window.apply_result(PollResult(make_sample(make_inventory(160, gpus_per_node=4)), 0.01))
    QApplication.processEvents()
    layout = window.grid.layout_info
    assert layout.blocks_per_row > 1 and layout.gpu_at(4, 0) is None  # the gap between two nodes
    gap = window.grid.view.mapFromScene(window.grid.image.mapToScene(QPointF(4.5, 0.5)))
    QTest.mouseClick(window.grid.view.viewport(), Qt.MouseButton.LeftButton, pos=gap)
    assert window.grid.selected_uuid is None and window.detail.uuid is None


def test_layout_places_every_gpu_of_ten_thousand_once():
    gpus = make_inventory(10_000, gpus_per_node=8)
    index = FleetIndex(gpus)
    layout = GridLayout(index)
    assert len(set(layout.flat.tolist())) == 10_000
    back = [layout.gpu_at(int(c), int(r)) for c, r in zip(layout.col, layout.row, strict=True)]
    assert back == list(range(10_000))
    # GPUs of one node sit side by side in one row, in index order.
    node = index.nodes[123]
    cols = [int(layout.col[p]) for p in node.gpu_positions]
    assert len({int(layout.row[p]) for p in node.gpu_positions}) == 1
    assert cols == list(range(cols[0], cols[0] + 8))
    assert 0.5 < layout.width / layout.height < 4


def test_window_shows_ten_thousand_gpus(qtbot, window):
    gpus = make_inventory(10_000, gpus_per_node=8)
    window.apply_result(PollResult(make_sample(gpus, lost=frozenset({9_999})), 0.5))
    assert window.kpi_strip.value_text("total") == "10,000"
    assert cell_rgb(window.grid, 9_999, corner=False) != cell_rgb(window.grid, 0)
    assert window.grid.gpu_at(int(window.grid.layout_info.col[9_999]), int(window.grid.layout_info.row[9_999])) == 9_999


def test_selection_survives_an_inventory_change(qtbot, window):
    show(window)
    window.select_gpu(gpu_uuid(10))
    smaller = make_inventory(16, gpus_per_node=4)
    window.apply_result(PollResult(make_sample(smaller), 0.01))
    assert window.detail.uuid == gpu_uuid(10)
    gone = make_inventory(8, gpus_per_node=4)
    window.apply_result(PollResult(make_sample(gone), 0.01))
    assert window.detail.uuid is None and window.grid.selected_uuid is None


def test_a_lost_gpu_can_be_selected_through_its_marker(qtbot, window):
    show(window, lost=frozenset({6}))
    qtbot.wait(50)  # pyqtgraph rate-limits mouse events
    QTest.mouseClick(window.grid.view.viewport(), Qt.MouseButton.LeftButton, pos=window.grid.cell_rect(6).center())
    assert window.detail.uuid == gpu_uuid(6)
    assert "state: lost" in window.detail.header.text()

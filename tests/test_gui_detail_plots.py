"""The GPU detail's plots: the GPU's limits drawn where it reports them (memory total, power
limit, slowdown temperature), and a crosshair that reads every plot at the time under the mouse."""

from __future__ import annotations

import dataclasses
import math

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from gpuops.gui.live.poller import PollResult
from tests.gui_support import (
    MEM_TOTAL_BYTES,
    OFFSCREEN_PLUGIN_NOTICE,
    POWER_LIMIT_W,
    FakeSource,
    close_windows,
    make_inventory,
    make_sample,
    window_factory,
)

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)

SLOWDOWN_C = 87.0
GPUS = tuple(
    dataclasses.replace(gpu, slowdown_temp_c=SLOWDOWN_C if i != 1 else None) for i, gpu in enumerate(make_inventory(8))
)


@pytest.fixture
def window(qtbot):
    cleanups: list = []
    window = window_factory(qtbot, cleanups)(FakeSource(8), start=False, size=(1200, 800))
    yield window
    close_windows(cleanups)


def show(window, shift: int, ts: float):
    window.apply_result(PollResult(make_sample(GPUS, shift=shift, ts=ts), 0.01))
    QApplication.processEvents()


def select(window, qtbot, position: int) -> None:
    window.grid.gpuSelected.emit(GPUS[position].uuid)
    qtbot.waitUntil(lambda: window.detail.uuid == GPUS[position].uuid)


def test_limits_are_drawn_where_the_gpu_reports_them(window, qtbot) -> None:
    show(window, 0, 1_800_000_000.0)
    select(window, qtbot, 0)
    limits = window.detail.plots.limits
    assert limits["power_w"].isVisible() and limits["power_w"].value() == POWER_LIMIT_W
    assert limits["mem_used_gib"].isVisible() and limits["mem_used_gib"].value() == MEM_TOTAL_BYTES / 2**30
    assert limits["temp_c"].isVisible() and limits["temp_c"].value() == SLOWDOWN_C
    (_, _), (low, high) = window.detail.plots.plots["mem_used_gib"].viewRange()
    assert low <= 0 and high >= MEM_TOTAL_BYTES / 2**30, "memory reads against its total"
    for name, limit in limits.items():  # each limit in view with the readings it bounds
        QApplication.processEvents()
        (_, _), (low, high) = window.detail.plots.plots[name].viewRange()
        assert low <= limit.value() <= high, name
    select(window, qtbot, 1)  # its inventory knows no slowdown temperature
    assert not limits["temp_c"].isVisible()
    assert limits["power_w"].isVisible()


def test_the_crosshair_reads_every_plot_at_the_time_under_the_mouse(window, qtbot) -> None:
    start = 1_800_000_000.0
    for k in range(6):
        show(window, k, start + 10 * k)
    select(window, qtbot, 2)
    plots = window.detail.plots
    assert plots.title("util_gpu_pct") == "Utilization (%)"
    plots.read_at(start + 31)  # nearest poll: the fourth (k = 3)
    expected_util = (2 * 37 + 3) % 101
    assert plots.title("util_gpu_pct").startswith(f"Utilization: {expected_util:,.1f} %")
    temp = 95 - (2 * 11 + 3) % 70
    assert plots.title("temp_c").startswith(f"Temperature: {temp:,.1f} °C")
    plots.read_at(None)
    assert plots.title("temp_c") == "Temperature (°C)"

    # The real mouse: over the utilization plot, the titles read values; off the plots, not.
    view = plots.plots["util_gpu_pct"].getViewBox()
    centre = plots.mapFromScene(view.sceneBoundingRect().center())
    qtbot.wait(50)  # pyqtgraph drops mouse moves that come faster than its frame rate
    QTest.mouseMove(plots.viewport(), centre)
    qtbot.waitUntil(lambda: plots.hover_ts is not None, timeout=2000)
    assert start <= plots.hover_ts <= start + 50
    assert " at " in plots.title("power_w")
    qtbot.wait(50)
    QTest.mouseMove(plots.viewport(), QPoint(1, 1))  # the left margin, outside every plot
    qtbot.waitUntil(lambda: plots.hover_ts is None, timeout=2000)
    assert plots.title("power_w") == "Power (W)"


def test_a_reading_the_gpu_did_not_give_says_so(window, qtbot) -> None:
    start = 1_800_000_000.0
    for k in range(3):
        show(window, k, start + 10 * k)
    select(window, qtbot, 4)
    curve = window.detail.plots.curves["power_w"]
    xs, ys = curve.getOriginalDataset()
    ys = ys.copy()
    ys[1] = math.nan
    curve.setData(xs, ys)
    window.detail.plots.read_at(start + 10)
    assert window.detail.plots.title("power_w") == "Power: no data"

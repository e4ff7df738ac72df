"""The window against a live (fake) source: polling off the GUI thread, hangs, failures,
recovery, the simulated label, and closing while the source is stuck."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QTimer

from gpuops.core.sources.base import SourceError
from gpuops.core.telemetry import GpuState
from gpuops.gui.common import palette
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, cell_rgb, open_windows

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)


@pytest.fixture
def make_window(qtbot):
    with open_windows(qtbot) as make:
        yield make


class TickCounter:
    """A GUI-thread timer: if it keeps counting, the event loop is not blocked."""

    def __init__(self) -> None:
        self.ticks = 0
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        self.ticks += 1


@pytest.fixture
def ticks():
    counter = TickCounter()
    yield counter
    counter.timer.stop()


def washed(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    import numpy as np

    return tuple(int(v) for v in palette.washed_out(np.array([*rgb, 255], dtype=np.uint8))[:3])


def test_hanging_source_keeps_ui_responsive_shows_stale_then_recovers(qtbot, make_window, ticks):
    source = FakeSource(16)
    window = make_window(source, interval_s=0.05, stall_after_s=0.3)
    qtbot.waitUntil(lambda: source.polls >= 2, timeout=5000)

    source.hang()
    qtbot.waitUntil(source.hanging.is_set, timeout=5000)
    last = window.last_sample
    fresh_rgb = cell_rgb(window.grid, 1)
    kpi_total = window.kpi_strip.value_text("total")
    polls_before, ticks_before = source.polls, ticks.ticks

    qtbot.waitUntil(lambda: window.stale, timeout=5000)
    qtbot.wait(300)  # several more intervals while still hung
    assert ticks.ticks - ticks_before >= 10, "the GUI event loop stalled while the source hung"
    assert window.error_banner.isVisible()
    assert "has not answered" in window.error_banner.text()
    assert "has not answered" in window.status_problem.text()
    assert window.last_sample is last, "the last data must be kept"
    assert window.kpi_strip.value_text("total") == kpi_total and not window.kpi_strip.isEnabled()
    assert cell_rgb(window.grid, 1) == washed(fresh_rgb), "stale data must be drawn greyed"
    assert source.polls == polls_before and window.poller.in_flight, "no new poll while one is in flight"

    source.release()
    qtbot.waitUntil(lambda: not window.stale and window.last_sample is not last, timeout=5000)
    assert not window.error_banner.isVisible()
    assert window.status_problem.text() == ""
    assert window.kpi_strip.isEnabled()
    assert cell_rgb(window.grid, 1) in {tuple(int(v) for v in c[:3]) for c in palette.value_colors()}


def test_source_error_is_shown_and_last_data_kept(qtbot, make_window):
    source = FakeSource(16)
    window = make_window(source)
    qtbot.waitUntil(lambda: source.polls >= 2, timeout=5000)

    source.fail_with = "NVML: the GPU driver is being reset"
    qtbot.waitUntil(lambda: window.stale, timeout=5000)
    kept = window.last_sample
    qtbot.wait(200)
    assert window.last_sample is kept and kept is not None
    assert "NVML: the GPU driver is being reset" in window.error_banner.text()
    assert "Showing the last data" in window.error_banner.text()
    assert "NVML: the GPU driver is being reset" in window.status_problem.text()
    assert window.grid.stale and window.kpi_strip.value_text("total") == "16"

    source.fail_with = None
    qtbot.waitUntil(lambda: not window.stale, timeout=5000)
    assert window.last_sample is not kept
    assert not window.error_banner.isVisible()


def test_failed_open_is_shown_without_data(qtbot, make_window):
    def opener():
        raise SourceError("no NVIDIA driver found (libnvidia-ml.so.1 missing)")

    window = make_window(None, opener=opener)
    qtbot.waitUntil(lambda: window.error_banner.isVisible(), timeout=5000)
    assert window.error_banner.text() == "No data: no NVIDIA driver found (libnvidia-ml.so.1 missing)"
    assert window.last_sample is None


def test_hanging_open_does_not_freeze_the_window(qtbot, make_window, ticks):
    source = FakeSource(8)
    gate = threading.Event()

    def opener():
        gate.wait()
        return source

    window = make_window(source, opener=opener, stall_after_s=0.2)
    try:
        qtbot.waitUntil(lambda: window.error_banner.isVisible(), timeout=5000)
        assert "has not finished opening" in window.error_banner.text()
        ticks_before = ticks.ticks
        qtbot.wait(150)
        assert ticks.ticks - ticks_before >= 5
        assert "opening" in window.windowTitle()
    finally:
        gate.set()
    qtbot.waitUntil(lambda: window.last_sample is not None and not window.stale, timeout=5000)
    assert window.windowTitle() == "gpuops — fake:8"


@pytest.mark.parametrize(
    ("notice", "banner"),
    [
        (None, "Simulated fleet: these GPUs and their readings are generated, not read from hardware."),
        ("Simulated fleet: no NVIDIA driver found", "Simulated fleet: no NVIDIA driver found"),
    ],
)
def test_simulated_source_is_labelled(qtbot, make_window, notice, banner):
    window = make_window(FakeSource(8, simulated=True, notice=notice))
    qtbot.waitUntil(lambda: window.last_sample is not None, timeout=5000)
    assert "Simulated fleet" in window.windowTitle()
    assert window.simulated_banner.isVisible()
    assert window.simulated_banner.text() == banner


def test_real_source_is_not_labelled_simulated(qtbot, make_window):
    window = make_window(FakeSource(8))
    qtbot.waitUntil(lambda: window.last_sample is not None, timeout=5000)
    assert "Simulated" not in window.windowTitle()
    assert not window.simulated_banner.isVisible()
    assert window.status_source.text() == "source: fake:8"


def test_closing_while_a_poll_hangs_returns_and_leaves_no_thread(qtbot, make_window):
    source = FakeSource(8)
    window = make_window(source)
    qtbot.waitUntil(lambda: source.polls >= 1, timeout=5000)
    source.hang()
    qtbot.waitUntil(source.hanging.is_set, timeout=5000)
    last = window.last_sample

    window.close()  # must not wait for the stuck poll
    assert source.hanging.is_set(), "close() returned only after the poll ended"
    assert not window.poller.running

    source.release()
    assert window.poller.join(5.0)
    assert source.closed.is_set(), "the worker closes the source once its call returns"
    qtbot.wait(50)
    assert window.last_sample is last, "a result arriving after close is dropped"


def test_closing_normally_closes_the_source(qtbot, make_window):
    source = FakeSource(8)
    window = make_window(source)
    qtbot.waitUntil(lambda: source.polls >= 1, timeout=5000)
    window.close()
    assert window.poller.join(5.0)
    assert source.closed.is_set()


def test_a_bug_in_the_source_is_raised_in_the_gui_thread(qtbot, make_window):
    source = FakeSource(8)
    source.poll = lambda: (_ for _ in ()).throw(ZeroDivisionError("bug in poll"))  # type: ignore[method-assign]  # a source with a bug
    with qtbot.captureExceptions() as exceptions:
        window = make_window(source)
        qtbot.waitUntil(lambda: bool(exceptions), timeout=5000)
        banner = window.error_banner.text()
        window.close()  # later polls would raise again, outside this block
    assert isinstance(exceptions[0][1], ZeroDivisionError)
    assert "internal error in the telemetry source: ZeroDivisionError('bug in poll')" in banner


def test_the_simulated_fleet_runs_in_the_window(qtbot, make_window):
    from gpuops.core.sources.factory import open_source

    window = make_window(None, opener=lambda: open_source("demo:200", seed=3), interval_s=0.1)
    qtbot.waitUntil(lambda: window.last_sample is not None, timeout=10000)
    sample = window.last_sample
    assert window.windowTitle() == "gpuops — Simulated fleet (demo:200)"
    assert window.kpi_strip.value_text("total") == "200"
    lost = int((sample.state == GpuState.LOST).sum())
    assert window.kpi_strip.value_text("lost") == f"{lost:,}"
    first_node = sample.gpus[0].node
    window.select_gpu(sample.gpus[0].uuid)
    assert first_node in window.detail.header.text()
    qtbot.waitUntil(lambda: window.last_sample is not sample, timeout=5000)
    assert not window.stale

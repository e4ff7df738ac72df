"""Long-running checks: thousands of poll-and-repaint cycles must neither crash nor leak, and
many void Qt calls must not crash (PySide6 6.12.0 on CPython 3.11 corrupted None's refcount on
each one and died with "Fatal Python error: none_dealloc" after a few thousand)."""

from __future__ import annotations

import gc
import os

import pytest
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication

from gpuops.gui.live.poller import PollResult, SourceInfo
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, close_windows, make_inventory, make_sample, window_factory

pytestmark = [pytest.mark.slow, pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)]

WARM_UP_CYCLES = 400
SOAK_CYCLES = 2_000
RSS_GROWTH_ALLOWED_BYTES = 12 * 2**20


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PaintCounter(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.paints = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.paints += 1
        return False


@pytest.fixture
def window(qtbot):
    cleanups: list = []
    yield window_factory(qtbot, cleanups)(None, start=False, interval_s=1.0, size=(800, 500))
    close_windows(cleanups)


def test_poll_and_repaint_cycles_neither_crash_nor_leak(window):
    gpus = make_inventory(256, gpus_per_node=8)
    window.show_source(SourceInfo("soak:256", False, None))
    counter = PaintCounter()
    window.grid.view.viewport().installEventFilter(counter)
    metrics = ("utilization", "temperature", "power", "memory")

    def cycle(k: int) -> None:
        lost = frozenset({k % 256}) if k % 7 == 0 else frozenset()
        window.apply_result(PollResult(make_sample(gpus, ts=1.7e9 + k, shift=k, lost=lost), 0.01))
        if k % 50 == 0:
            window.show_problem("the source has not answered for 3 s")  # stale look, then fresh again
            window.grid.set_metric(metrics[(k // 50) % 4])
            window.select_gpu(gpus[k % 256].uuid)
        QApplication.processEvents()

    for k in range(WARM_UP_CYCLES):
        cycle(k)
    gc.collect()
    before, paints_before = rss_bytes(), counter.paints
    for k in range(WARM_UP_CYCLES, WARM_UP_CYCLES + SOAK_CYCLES):
        cycle(k)
    gc.collect()
    growth = rss_bytes() - before
    assert counter.paints - paints_before >= SOAK_CYCLES, "each cycle must repaint the grid"
    assert growth < RSS_GROWTH_ALLOWED_BYTES, f"resident memory grew by {growth / 2**20:.1f} MiB"
    assert window.kpi_strip.value_text("total") == "256"


def test_many_void_qt_calls_do_not_crash(window):
    for k in range(20_000):
        window.setObjectName(f"gpuops-{k % 10}")
        window.status_poll.setText("poll 1 ms")
    assert window.objectName() == "gpuops-9"

"""With no GPU chosen, the GPU tab lists the least healthy GPUs (critical first) as links
instead of empty plots; following one shows that GPU, and clearing the choice brings the list back."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from gpuops.gui.gpu.detail_panel import LEAST_HEALTHY_SHOWN
from gpuops.gui.live.poller import PollResult
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, close_windows, gpu_uuid, make_sample, window_factory

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)

N = 32


@pytest.fixture
def window(qtbot):
    cleanups: list = []
    source = FakeSource(N)
    window = window_factory(qtbot, cleanups)(source, start=False, size=(1200, 800))
    window.source = source
    yield window
    close_windows(cleanups)


def show(window, lost: frozenset[int] = frozenset()) -> None:
    window.apply_result(PollResult(make_sample(window.source.gpus, lost=lost), 0.01))
    QApplication.processEvents()


def test_the_empty_gpu_tab_links_the_least_healthy_gpus(window, qtbot) -> None:
    detail = window.detail
    show(window, lost=frozenset({6, 17}))
    assert detail.least_healthy.isVisible() and not detail.plots.isVisible()
    text = detail.least_healthy.text()
    links = [part.split("'")[0] for part in text.split("<a href='")[1:]]
    assert links[:2] == [gpu_uuid(6), gpu_uuid(17)], "lost GPUs are critical: listed first, in node order"
    assert "critical" in text
    detail.least_healthy.linkActivated.emit(gpu_uuid(17))  # what a click on the link sends
    qtbot.waitUntil(lambda: detail.uuid == gpu_uuid(17))
    assert window.grid.selected_uuid == gpu_uuid(17)
    assert detail.plots.isVisible() and not detail.least_healthy.isVisible()
    detail.clear()
    assert detail.least_healthy.isVisible() and not detail.plots.isVisible()


def test_a_long_list_is_cut_and_says_how_many_more(window) -> None:
    lost = frozenset(range(0, 2 * LEAST_HEALTHY_SHOWN))
    show(window, lost=lost)
    text = window.detail.least_healthy.text()
    assert text.count("<a href=") == LEAST_HEALTHY_SHOWN
    assert f"… and {len(lost) - LEAST_HEALTHY_SHOWN:,} more" in text


def test_a_healthy_fleet_says_so(window) -> None:
    show(window)
    assert window.detail.least_healthy.text().startswith(f"All {N} GPUs are healthy.")

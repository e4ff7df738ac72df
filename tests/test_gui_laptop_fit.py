"""The console fits a 1366×768 laptop screen: nothing in it forces the window wider than 1280 px
or taller than the screen, the GPU plots keep 80 px each,
with every view tab present, data shown and a long legend."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QTabWidget

from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, close_windows, window_factory

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)

LAPTOP_WIDTH_PX = 1280
VIEW_TABS = {"GPU", "Node", "Fleet trends", "Alerts", "Customers"}


@pytest.fixture
def window(qtbot):
    cleanups: list = []
    window = window_factory(qtbot, cleanups)(FakeSource(64), size=(1000, 700))
    qtbot.waitUntil(lambda: window.last_sample is not None)
    yield window
    close_windows(cleanups)


def _fit_to_laptop(window, qtbot) -> None:
    """Ask for a laptop-sized window and let the layouts settle (sizes propagate on resize)."""
    QApplication.processEvents()
    window.resize(LAPTOP_WIDTH_PX, 700)
    qtbot.wait(50)


def _view_tabs(window) -> set[str]:
    return {tabs.tabText(i) for tabs in window.findChildren(QTabWidget) for i in range(tabs.count())}


def test_the_window_can_be_narrower_than_a_laptop_screen(window, qtbot):
    assert VIEW_TABS <= _view_tabs(window)
    _fit_to_laptop(window, qtbot)
    assert window.minimumSizeHint().width() <= LAPTOP_WIDTH_PX
    assert window.width() <= LAPTOP_WIDTH_PX


def test_a_long_colour_legend_does_not_widen_the_window(window, qtbot):
    swatches = tuple((f"Customer number {k}", QColor(40 * (k % 6), 90, 160)) for k in range(30))
    window.grid.legend.set_categories(swatches, "thirty customers")
    _fit_to_laptop(window, qtbot)
    assert window.grid.legend.sizeHint().width() > LAPTOP_WIDTH_PX, "the legend is long enough to matter"
    assert window.minimumSizeHint().width() <= LAPTOP_WIDTH_PX
    assert window.width() <= LAPTOP_WIDTH_PX


LAPTOP_SCREEN_HEIGHT_PX = 768
TITLE_BAR_PX = 30  # what a window manager's decoration takes of a 768-px screen


def test_the_window_fits_a_laptop_screen_height_with_readable_gpu_plots(window, qtbot):
    """At 1366×768 everything fits (status bar included) and each GPU plot keeps at least 80 px
    for its data: the tables under the plots give way first."""
    window.grid.gpuSelected.emit(window.last_sample.gpus[5].uuid)
    qtbot.waitUntil(lambda: window.detail.uuid is not None)
    assert window.minimumSizeHint().height() <= LAPTOP_SCREEN_HEIGHT_PX - TITLE_BAR_PX
    window.resize(1366, LAPTOP_SCREEN_HEIGHT_PX - TITLE_BAR_PX)
    qtbot.waitUntil(lambda: window.height() == LAPTOP_SCREEN_HEIGHT_PX - TITLE_BAR_PX)
    qtbot.wait(50)
    views = [item.getViewBox() for item in window.detail.plots.ci.items]
    assert len(views) == 4
    assert min(view.height() for view in views) >= 80
    assert window.statusBar().isVisible() and window.statusBar().geometry().bottom() < window.height()

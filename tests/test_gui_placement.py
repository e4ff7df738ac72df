"""Where the window opens: a first launch fits the screen's free area (centred when there is room),
and a saved geometry that no longer fits a screen (a larger or unplugged monitor) comes back
whole onto one, through the settings round trip the launch uses."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect, QSettings, QSize
from PySide6.QtWidgets import QApplication, QMainWindow

from gpuops.gui.app.placement import PREFERRED_SIZE, place_first_time
from gpuops.gui.app.settings_store import restore_window_state, save_window_state


@pytest.fixture
def free_area(qapp) -> QRect:
    return QApplication.primaryScreen().availableGeometry()


@pytest.fixture
def window(qtbot) -> QMainWindow:
    window = QMainWindow()
    qtbot.addWidget(window)
    return window


def test_a_first_launch_on_a_small_screen_takes_its_free_area(window, free_area) -> None:
    assert free_area.width() < PREFERRED_SIZE.width(), "the offscreen screen stands in for a laptop"
    place_first_time(window)
    assert free_area.contains(window.geometry())
    assert window.width() == free_area.width()
    assert window.height() == min(PREFERRED_SIZE.height(), free_area.height())


def test_a_first_launch_with_room_to_spare_is_centred(window, free_area) -> None:
    place_first_time(window, QSize(400, 300))
    assert window.size() == QSize(400, 300)
    assert abs(window.geometry().center().x() - free_area.center().x()) <= 1
    assert abs(window.geometry().center().y() - free_area.center().y()) <= 1


@pytest.mark.parametrize(
    "saved",
    [
        QRect(5000, 3000, 600, 500),  # on a monitor that is gone
        QRect(-900, 100, 600, 500),  # half off the left edge
        QRect(-200, -50, 2600, 1600),  # from a larger monitor
    ],
)
def test_a_saved_geometry_off_the_screen_comes_back_whole(window, free_area, qtbot, tmp_path, saved) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window.setGeometry(saved)
    save_window_state(window, settings)
    again = QMainWindow()
    qtbot.addWidget(again)
    assert restore_window_state(again, settings)
    assert free_area.contains(again.geometry())
    assert again.width() >= min(saved.width(), free_area.width()) - 2, "only what does not fit is shrunk"
    assert again.height() >= min(saved.height(), free_area.height()) - 30

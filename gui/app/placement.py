"""Where the console window opens: on a screen, whole, whatever the screen.

A first launch takes the preferred size, or the screen's free area when that is smaller (a
1366×768 laptop), centred on the screen. A saved geometry needs nothing of ours: Qt's
restoreGeometry already shrinks and moves a window saved on a larger or since-unplugged monitor
back onto a screen that is there (tests/test_gui_placement.py holds it to that).
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

#: The size the console is designed around, where the screen has room for it.
PREFERRED_SIZE = QSize(1400, 860)


def place_first_time(window: QWidget, preferred: QSize = PREFERRED_SIZE) -> None:
    """Size and centre `window` on its screen for a launch with no saved geometry."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    if screen is None:
        window.resize(preferred)
        return
    free = screen.availableGeometry()
    size = preferred.boundedTo(free.size()).expandedTo(window.minimumSize())
    frame = QRect(QPoint(0, 0), size)
    frame.moveCenter(free.center())
    window.setGeometry(_inside(frame, free))


def _inside(frame: QRect, free: QRect) -> QRect:
    """`frame` moved the least distance that puts it within `free` (its top-left corner wins
    when it is larger, so the title bar stays reachable)."""
    x = max(free.left(), min(frame.left(), free.right() + 1 - frame.width()))
    y = max(free.top(), min(frame.top(), free.bottom() + 1 - frame.height()))
    return QRect(QPoint(x, y), frame.size())

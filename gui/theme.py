"""Dark and light: follow the system's colour scheme, plots included.

Qt switches the widget palette itself when the system scheme changes (QStyleHints.colorScheme);
pyqtgraph views paint their own background and axes, so they are repainted from the palette
whenever it changes.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QWidget


def apply_plot_theme(root: QWidget) -> None:
    """Give every pyqtgraph view under `root` the palette's background and text colours."""
    palette = root.palette()
    background = palette.color(QPalette.ColorRole.Window)
    foreground = palette.color(QPalette.ColorRole.WindowText)
    pg.setConfigOption("background", background)
    pg.setConfigOption("foreground", foreground)
    for view in root.findChildren(pg.GraphicsView):
        view.setBackground(background)
        scene = view.scene()
        if scene is not None:
            for item in scene.items():
                if isinstance(item, pg.AxisItem):
                    item.setPen(foreground)
                    item.setTextPen(foreground)


class _ThemeFollower(QObject):
    def __init__(self, root: QWidget) -> None:
        super().__init__(root)
        self._root = root
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._changed)

    def _changed(self, *_: object) -> None:
        apply_plot_theme(self._root)


def follow_system_theme(root: QWidget) -> None:
    """Theme the plots once the window is built, and whenever the system switches between
    dark and light."""
    follower = _ThemeFollower(root)
    QTimer.singleShot(0, follower, follower._changed)  # cancelled if the window goes first

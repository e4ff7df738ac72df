"""Dark and light: the System / Light / Dark choice from Settings, plots included.

System follows the desktop's colour scheme (Qt switches the widget palette itself when
QStyleHints.colorScheme changes). Light and Dark ask the platform for that scheme (Qt 6.8+) and set
the palette too, because not every platform or style can switch on request. pyqtgraph views paint
their own background and axes, so they are repainted from the palette whenever it changes.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

_SCHEMES = {"system": Qt.ColorScheme.Unknown, "light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}


def dark_palette() -> QPalette:
    """Dark greys with light text, contrast kept for long shifts in a dim room."""
    role = QPalette.ColorRole
    palette = QPalette(QColor("#3a3d41"), QColor("#26282b"))
    for name, colour in (
        (role.Window, "#26282b"), (role.WindowText, "#e8eaed"), (role.Base, "#1d1f21"), (role.AlternateBase, "#2c2e31"),
        (role.Text, "#e8eaed"), (role.Button, "#3a3d41"), (role.ButtonText, "#e8eaed"), (role.BrightText, "#ffffff"),
        (role.Highlight, "#3d7fd6"), (role.HighlightedText, "#ffffff"), (role.ToolTipBase, "#3a3d41"),
        (role.ToolTipText, "#e8eaed"), (role.PlaceholderText, "#9aa0a6"), (role.Link, "#8ab4f8"),
    ):
        palette.setColor(name, QColor(colour))
    for name in (role.WindowText, role.Text, role.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, name, QColor("#7f8388"))
    return palette


def apply_theme(theme: str) -> None:
    """Switch the whole application to "system", "light" or "dark" (at start, and live from Settings)."""
    if theme not in _SCHEMES:
        raise ValueError(f"theme must be one of {', '.join(_SCHEMES)}, not {theme!r}")
    app = QApplication.instance()
    assert isinstance(app, QApplication), "a theme needs the QApplication"
    app.styleHints().setColorScheme(_SCHEMES[theme])
    if theme == "system":
        app.setPalette(QPalette())  # nothing set: the platform's palette, as it changes
    elif theme == "light":
        app.setPalette(app.style().standardPalette())
    else:
        app.setPalette(dark_palette())


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
        root.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.PaletteChange:
            self._changed()
        return False

    def _changed(self, *_: object) -> None:
        apply_plot_theme(self._root)


def follow_system_theme(root: QWidget) -> None:
    """Theme the plots once the window is built, and whenever the palette changes: the system
    switching between dark and light, or a theme chosen in Settings."""
    follower = _ThemeFollower(root)
    QTimer.singleShot(0, follower, follower._changed)  # cancelled if the window goes first

"""Desktop notifications and the tray icon: the worst active severity at a glance.

The console talks to a `Notifier`; `TrayNotifier` is the Qt one (QSystemTrayIcon). Desktops
without a system tray (and the offscreen test platform) get no tray: notifications then go to
the log and the status bar, and the window title still carries the counts. Which alerts are
notified, and how often, is decided by `NotificationPolicy` in the alert worker, not here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import QObject, QRectF
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QSystemTrayIcon

from gpuops.core.alerts.model import Severity
from gpuops.core.alerts.notifications import Notification
from gpuops.gui.alerts.model import SEVERITY_COLORS
from gpuops.resources import resource_path

log = logging.getLogger("gpuops.gui.alerts")

ICON_PX = 64
#: The dot covers this fraction of the icon's width, in its bottom-right corner.
DOT_FRACTION = 0.45
MESSAGE_MS = 15_000


class Notifier(Protocol):
    def notify(self, note: Notification) -> None:
        """Show one (possibly coalesced) notification now."""

    def show_worst(self, severity: Severity | None) -> None:
        """The worst severity among active alerts that want attention (None: all quiet)."""


def _base_pixmap() -> QPixmap:
    pixmap = QIcon(str(resource_path("icons/gpuops.svg"))).pixmap(ICON_PX, ICON_PX)
    if pixmap.isNull():  # no SVG image plugin: the shipped rendering
        pixmap = QPixmap(str(resource_path(f"icons/gpuops-{ICON_PX}.png")))
    return pixmap


def severity_icon(severity: Severity | None) -> QIcon:
    """The gpuops icon with a dot in the severity's colour (the plain icon when quiet)."""
    pixmap = _base_pixmap()
    if severity is not None:
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        size = pixmap.width() * DOT_FRACTION
        rect = QRectF(pixmap.width() - size - 1, pixmap.height() - size - 1, size, size)
        painter.setPen(QPen(QColor("white"), max(1.0, size / 8)))
        painter.setBrush(SEVERITY_COLORS[severity])
        painter.drawEllipse(rect)
        painter.end()
    return QIcon(pixmap)


class TrayNotifier(QObject):
    """A tray icon tinted by the worst severity; notifications as tray messages. `activate`
    (e.g. raising the window) runs when the icon or a message is clicked. `fallback` receives
    the text of notifications when there is no tray."""

    def __init__(self, activate: Callable[[], None], fallback: Callable[[str], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._fallback = fallback
        self._worst: Severity | None = None
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(severity_icon(None), self)
            self.tray.setToolTip("gpuops: no alerts")
            self.tray.activated.connect(lambda _reason: activate())
            self.tray.messageClicked.connect(activate)
            self.tray.show()
        else:
            log.info("no system tray on this desktop: alert notifications go to the status bar")

    def notify(self, note: Notification) -> None:
        if self.tray is not None and QSystemTrayIcon.supportsMessages():
            self.tray.showMessage(note.title, note.body, QSystemTrayIcon.MessageIcon.Critical, MESSAGE_MS)
        else:
            self._fallback(f"{note.title}: {note.body.splitlines()[0] if note.body else ''}")
        log.info("notified: %s", note.title)

    def show_worst(self, severity: Severity | None) -> None:
        if severity == self._worst:
            return
        self._worst = severity
        if self.tray is not None:
            self.tray.setIcon(severity_icon(severity))
            self.tray.setToolTip("gpuops: no alerts" if severity is None else f"gpuops: {severity.label} alerts firing")


__all__ = ["Notifier", "TrayNotifier", "severity_icon"]

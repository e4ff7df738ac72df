"""Pictures of the console for snapshots: a widget as PNG (optionally at a high-DPI scale); the
Qt messages of a headless export routed to the log. (`headless` draws a snapshot with no console open.)"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QWidget

#: What the offscreen platform says about itself when a window is shown: not about gpuops.
_PLATFORM_NOTICE = re.compile(r"This plugin does not support (propagateSizeHints|raise)\(\)")
_QT_LEVELS = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO, QtMsgType.QtWarningMsg: logging.WARNING}

log = logging.getLogger("gpuops.gui.snapshot")


@contextmanager
def quiet_platform_notices() -> Iterator[None]:
    """Route Qt's messages to the log, minus the offscreen platform's notices (a cron job's mail
    should only say what went wrong)."""

    def handle(kind: QtMsgType, _context: object, message: str) -> None:
        if not _PLATFORM_NOTICE.search(message):
            log.log(_QT_LEVELS.get(kind, logging.ERROR), "Qt: %s", message)

    previous = qInstallMessageHandler(handle)
    try:
        yield
    finally:
        qInstallMessageHandler(previous)


def widget_image(widget: QWidget, scale: float = 1.0) -> QImage:
    """The widget as drawn, at its size in logical pixels times `scale` (2 for a sharp
    high-DPI picture: text and lines are drawn at the higher resolution, not enlarged)."""
    size = widget.size() * scale
    image = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
    image.setDevicePixelRatio(scale)
    image.fill(widget.palette().color(widget.backgroundRole()))
    widget.render(image)
    return image


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise OSError("could not encode the PNG image")
    buffer.close()
    return bytes(data.data())

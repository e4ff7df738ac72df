"""Pictures of the console for snapshots: a widget as PNG (optionally at a high-DPI scale), and a
window built just to show a snapshot, for exports with no console open (cron, the CLI)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QtMsgType, Qt, qInstallMessageHandler
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QWidget

from gpuops.core.snapshot import Snapshot
from gpuops.gui.snapshot_pdf import snapshot_pdf

#: The window size snapshots are drawn at when there is no console to copy (as `gpuops` opens).
HEADLESS_WINDOW_SIZE = (1400, 860)
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


def snapshot_window(snapshot: Snapshot):
    """A console window showing `snapshot`, never on screen and never polling."""
    from gpuops.gui.main_window import MainWindow
    from gpuops.gui.poller import PollResult, SourceInfo

    def no_source():
        raise RuntimeError("a snapshot window does not poll")

    window = MainWindow(no_source, 1.0)
    window.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
    window.resize(*HEADLESS_WINDOW_SIZE)
    window.show()
    window.show_source(SourceInfo(snapshot.source, snapshot.simulated, None))
    window.apply_result(PollResult(snapshot.sample, snapshot.sample.poll_duration_s))
    if snapshot.plots:
        window.select_gpu(snapshot.plots[0].uuid)
    QApplication.processEvents()  # layouts and the grid's view range settle
    return window


def render_snapshot(snapshot: Snapshot, kind: str, *, scale: float = 1.0, view: str = "window") -> bytes:
    """PNG or PDF bytes of `snapshot` drawn in a window of its own (needs a QApplication)."""
    window = snapshot_window(snapshot)
    try:
        if kind == "pdf":
            return snapshot_pdf(snapshot, widget_image(window.grid, 2.0))
        return png_bytes(widget_image(window.grid if view == "grid" else window, scale))
    finally:
        window.close()
        window.deleteLater()

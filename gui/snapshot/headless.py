"""A snapshot drawn with no console open (cron, `gpuops export --format png|pdf`): a console
window built just to show it, never on screen and never polling."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from gpuops.core.snapshot import Snapshot
from gpuops.gui.live.poller import PollResult, SourceInfo
from gpuops.gui.snapshot.pdf import snapshot_pdf
from gpuops.gui.snapshot.render import png_bytes, widget_image
from gpuops.gui.window.main_window import MainWindow

#: The window size snapshots are drawn at when there is no console to copy (as `gpuops` opens).
HEADLESS_WINDOW_SIZE = (1400, 860)


def snapshot_window(snapshot: Snapshot) -> MainWindow:
    """A console window showing `snapshot`, never on screen and never polling."""
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

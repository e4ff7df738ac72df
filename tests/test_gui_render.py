"""The whole window rendered offscreen: right size, and actually drawn (not a blank frame)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from gpuops.gui.live.poller import PollResult, SourceInfo
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, close_windows, make_inventory, make_sample, window_factory

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)


def test_offscreen_render_of_the_main_window(qtbot):
    cleanups: list = []
    try:
        window = window_factory(qtbot, cleanups)(None, start=False, size=(1280, 800))
        gpus = make_inventory(256, gpus_per_node=8)
        window.show_source(SourceInfo("demo:256", True, None))
        for shift in range(3):
            window.apply_result(PollResult(make_sample(gpus, shift=shift, lost=frozenset({5})), 0.02))
        window.select_gpu(gpus[10].uuid)
        QApplication.processEvents()

        pixmap = window.grab()
        assert pixmap.deviceIndependentSize().toSize() == window.size()
        image = pixmap.toImage().convertToFormat(QImage.Format.Format_RGB32)
        pixels = np.frombuffer(image.constBits(), dtype=np.uint32)[: image.width() * image.height()]
        assert len(np.unique(pixels)) > 100, "the frame is (nearly) blank"
    finally:
        close_windows(cleanups)

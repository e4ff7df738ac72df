"""Each operations view rendered offscreen: the right size, and actually drawn (not blank)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from gpuops.gui.live.poller import PollResult
from tests import samples
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, close_windows, window_factory

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)


def distinct_colours(widget) -> int:
    pixmap = widget.grab()
    assert pixmap.deviceIndependentSize().toSize() == widget.size()
    image = pixmap.toImage().convertToFormat(QImage.Format.Format_RGB32)
    pixels = np.frombuffer(image.constBits(), dtype=np.uint32)[: image.width() * image.height()]
    return len(np.unique(pixels))


def test_offscreen_render_of_each_view(qtbot):
    cleanups: list = []
    try:
        window = window_factory(qtbot, cleanups)(None, start=False, size=(1400, 900))
        gpus = samples.make_inventory(512, gpus_per_node=8)
        for k in range(20):
            sample = samples.make_sample(
                gpus=gpus, ts=1_763_798_400.0 + k,
                values={"util_gpu_pct": {i: float((i * 7 + k * 5) % 100) for i in range(len(gpus))},
                        "power_w": {i: 200.0 + (i * 13 + k * 11) % 450 for i in range(len(gpus))}},
                xids=((3, 48),) if k == 5 else (),
            )
            window.apply_result(PollResult(sample, 0.02))
        window.select_gpu(gpus[3].uuid)
        tabs = window.ops.tabs
        views = {"grid": window.grid, "detail": window.detail, "node": window.ops.node_view, "trends": window.ops.trends}
        for name, tab in (("detail", 0), ("node", 1), ("trends", 2)):
            tabs.setCurrentIndex(tab)
            QApplication.processEvents()
            view = views[name]
            assert view.isVisible() and view.width() > 200 and view.height() > 200, name
            assert distinct_colours(view) > 40, f"the {name} view is (nearly) blank"
        assert window.ops.node_view.gpu_count == 8
        assert distinct_colours(views["grid"]) > 40
        window.detail.tabs.setCurrentIndex(1)  # Health: the XID row with its meaning
        QApplication.processEvents()
        assert window.detail.xid_table.rowCount() == 1 and window.detail.xid_table.item(0, 1).text() == "48"
        assert distinct_colours(window.detail) > 40
    finally:
        close_windows(cleanups)

"""Views not visible at start build their plots when first shown, and lose nothing meanwhile."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from gpuops.gui.live.poller import PollResult
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, make_inventory, make_sample, open_windows

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)


def test_fleet_trends_show_every_poll_taken_in_before_the_tab_was_first_opened(qtbot):
    gpus = make_inventory(8, gpus_per_node=4)
    with open_windows(qtbot) as make:
        window = make(FakeSource(8, 4), start=False, interval_s=1.0)
        for k in range(3):
            window.apply_result(
                PollResult(make_sample(gpus, ts=1000.0 + k, lost=frozenset({1}) if k == 2 else frozenset()), 0.01)
            )
        trends = window.ops.trends
        window.ops.tabs.setCurrentWidget(trends)
        QApplication.processEvents()
        assert trends.isVisible()
        ts, ok = trends.curves["n_ok"].getData()
        assert ts.tolist() == [1000.0, 1001.0, 1002.0]
        assert ok.tolist() == [8, 8, 7]
        window.apply_result(PollResult(make_sample(gpus, ts=1003.0), 0.01))
        assert trends.curves["n_lost"].getData()[1].tolist() == [0, 0, 1, 0]

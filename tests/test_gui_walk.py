"""No exception escapes a slot: pytest-qt fails a test on any exception raised in a Qt slot or
virtual method, and on any Qt warning (qt_log_level_fail = WARNING). The walk drives a console
window at 512 GPUs through every tab and sub-page, every kind of selection, every dialog,
replay, each export format and both themes."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from gpuops.core.alerts.model import Alert, AlertState, Severity
from gpuops.gui.alerts.tab import AlertTimeline
from gpuops.gui.alerts.worker import Timeline
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, gpu_uuid

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)

T0 = 1_700_000_000.0


def alert(id_: int, rule: str, severity: Severity, pending_at: float, ended_at: float | None = None) -> Alert:
    return Alert(
        id=id_, rule=rule, key=gpu_uuid(1), severity=severity,
        state=AlertState.FIRING if ended_at is None else AlertState.RESOLVED, labels={"gpu": gpu_uuid(1), "node": "node-000"},
        summary=rule, runbook="", pending_at=pending_at, started_at=pending_at, ended_at=ended_at,
    )


def test_the_timeline_of_a_gpu_without_alerts_is_empty_and_the_next_one_is_drawn(qtbot):
    """pyqtgraph's BarGraphItem raised UnboundLocalError ('pen') for a GPU with no alerts, and
    the timeline stopped updating after it."""
    timeline = AlertTimeline()
    qtbot.addWidget(timeline)
    timeline.resize(600, 200)
    timeline.show()
    qtbot.waitExposed(timeline)
    timeline.show_timeline(Timeline(gpu_uuid(0), T0, T0 + 3600, ()), T0 + 3600)
    timeline.grab()  # paints the empty bars
    assert timeline.rules == [] and len(timeline.bars.opts["x0"]) == 0
    alerts = (
        alert(1, "gpu_hot", Severity.WARNING, T0 + 60, T0 + 600),
        alert(2, "ecc_uncorrectable", Severity.CRITICAL, T0 + 900),
    )
    timeline.show_timeline(Timeline(gpu_uuid(1), T0, T0 + 3600, alerts), T0 + 3600)
    timeline.grab()
    assert timeline.rules == ["ecc_uncorrectable", "gpu_hot"]
    assert timeline.bars.opts["x0"].tolist() == [T0 + 60, T0 + 900]
    timeline.show_timeline(Timeline(gpu_uuid(2), T0, T0 + 3600, ()), T0 + 3600)
    timeline.grab()
    assert timeline.rules == [] and len(timeline.bars.opts["x0"]) == 0
    QApplication.processEvents()

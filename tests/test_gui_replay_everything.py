"""Replay moves more than the grid (issue 14 item 4): the KPI strip counts the replayed instant,
the grid's alert marks are the alerts firing then (not today's), a banner says
"Replay: <UTC time> — Live", and one click on Live brings the live numbers and marks back."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from gpuops.core.alerts.model import Severity
from gpuops.core.sources.base import TelemetrySource
from gpuops.core.telemetry import GpuState
from gpuops.core.timefmt import utc_time
from gpuops.gui.gpu.detail_panel import REPLAY_SPAN_S
from gpuops.gui.live.poller import PollResult
from tests import samples
from tests.alerts_support import collect_with_alerts
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, open_windows

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)

GPUS = samples.make_inventory(16, gpus_per_node=4)
N_POLLS = 30
STEP_S = 30.0
ECC_GPU, ECC_FROM, ECC_UNTIL = 5, 8, 18  # uncorrectable ECC errors in polls 8..17: critical
LOST_GPU, LOST_FROM = 3, 22  # lost from poll 22 on


class RecordedDay(TelemetrySource):
    """Polls 30 s apart ending a few minutes ago: GPU 5's ECC episode, then GPU 3 lost."""

    name = "recorded"

    def __init__(self, times: list[float]) -> None:
        self.times = times
        self.k = 0

    def poll(self):
        k = min(self.k, len(self.times) - 1)
        self.k += 1
        return samples.make_sample(
            gpus=GPUS, ts=self.times[k],
            values={
                "ecc_uncorrected_volatile": {ECC_GPU: 2.0 if ECC_FROM <= k < ECC_UNTIL else 0.0},
                "util_gpu_pct": dict.fromkeys(range(len(GPUS)), 0.0),  # idle: no busy_unallocated
            },
            states={LOST_GPU: GpuState.LOST} if k >= LOST_FROM else None,
        )

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def poll_times() -> list[float]:
    start = round(time.time()) - N_POLLS * STEP_S - 300
    return [start + k * STEP_S for k in range(N_POLLS)]


@pytest.fixture
def history_db(tmp_path: Path, poll_times) -> Path:
    path = tmp_path / "history.sqlite"
    collect_with_alerts(path, RecordedDay(poll_times), N_POLLS)
    return path


@pytest.fixture
def window(qtbot, history_db):
    with open_windows(qtbot) as make:
        yield make(None, history_db=history_db, start=False, size=(1200, 800), read_only=True)
    leftover = [t.name for t in threading.enumerate() if t.name.startswith("gpuops-history")]
    assert not leftover, f"history threads left running: {leftover}"


def replay(qtbot, window, ts: float) -> None:
    bar = window.ops.replay_bar
    shown = window.grid._sample
    bar.show_instant(ts)
    qtbot.waitUntil(lambda: bar.active and window.grid._sample is not shown, timeout=10_000)


def test_replay_moves_the_kpi_strip_alert_marks_and_shows_a_banner(qtbot, window, poll_times) -> None:
    live = samples.make_sample(gpus=GPUS, ts=time.time(), values={"ecc_uncorrected_volatile": {9: 1.0}})
    window.apply_result(PollResult(live, 0.01))
    QApplication.processEvents()
    strip, marks, bar = window.kpi_strip, window.grid.alert_marks, window.ops.replay_bar
    live_marks = {GPUS[9].uuid: Severity.CRITICAL}
    window.grid.set_alert_marks(live_marks)  # as the alert console sets today's
    assert (strip.value_text("critical"), strip.value_text("lost")) == ("1", "0")
    window.select_gpu(GPUS[ECC_GPU].uuid)
    detail = window.detail
    assert detail.picker.current.live

    bar.open()
    qtbot.waitUntil(bar.slider.isVisible, timeout=10_000)
    replay(qtbot, window, poll_times[12] + 1)
    shown = window.grid._sample.ts
    assert bar.label.text().startswith(f"Replay: {utc_time(shown)} — ") and "Live</a>" in bar.label.text()
    assert (strip.value_text("critical"), strip.value_text("lost")) == ("1", "0")  # GPU 5's ECC, not GPU 9
    assert marks.marks == {GPUS[ECC_GPU].uuid: Severity.CRITICAL}
    # The Alerts tab: what was active then, as it stood (firing, though it has ended since).
    tab = window.alerts.tab
    assert not tab.replay_banner.isHidden() and utc_time(shown) in tab.replay_banner.text()
    assert [(a.rule, a.state.value, a.ended_at) for a in active_alerts(tab)] == [("ecc_uncorrectable", "firing", None)]
    # The GPU's plots: the hour around the instant, from the history, the instant marked.
    chosen = detail.picker.current
    assert (chosen.start, chosen.end) == (shown - REPLAY_SPAN_S / 2, shown + REPLAY_SPAN_S / 2)
    assert detail.plots.instant == shown
    assert f"the plots show the hour around the replayed {utc_time(shown)}" in detail.header.text()
    qtbot.waitUntil(lambda: detail.history is not None and detail.history.start == chosen.start, timeout=10_000)
    assert detail.plots.curves["util_gpu_pct"].getOriginalDataset()[0].tolist() == poll_times
    # A live poll and today's alerts arriving meanwhile keep the replay on screen.
    window.apply_result(PollResult(live, 0.01))
    window.grid.set_alert_marks(live_marks)
    assert strip.value_text("critical") == "1" and marks.marks == {GPUS[ECC_GPU].uuid: Severity.CRITICAL}

    # The Node tab: every GPU of the node over the same hour.
    node_view = window.ops.node_view
    window.ops.tabs.setCurrentWidget(node_view)
    qtbot.waitUntil(lambda: node_view.replayed is not None, timeout=10_000)
    column = [g.uuid for g in GPUS if g.node == GPUS[ECC_GPU].node].index(GPUS[ECC_GPU].uuid)
    assert node_view.curve(column, "util_gpu_pct").getOriginalDataset()[0].tolist() == poll_times
    assert "(replay)" in node_view.title.text()
    qtbot.waitUntil(lambda: tab.snapshot is not None, timeout=10_000)
    assert [a.rule for a in tab.snapshot.active] == ["gpu_lost"]  # today's
    tab.show_snapshot(tab.snapshot)  # a live refresh meanwhile leaves the instant's alerts
    assert [a.rule for a in active_alerts(tab)] == ["ecc_uncorrectable"]

    replay(qtbot, window, poll_times[26] + 1)
    assert (strip.value_text("critical"), strip.value_text("lost")) == ("0", "1")
    assert marks.marks == {GPUS[LOST_GPU].uuid: Severity.CRITICAL}, "gpu_lost fired; the ECC alert had ended"
    assert [a.rule for a in active_alerts(tab)] == ["gpu_lost"]

    bar.label.linkActivated.emit("live")  # the banner's Live link
    assert not bar.active
    assert (strip.value_text("critical"), strip.value_text("lost")) == ("1", "0")
    assert marks.marks == live_marks
    assert detail.picker.current.live and detail.plots.instant is None, "the GPU tab's range before the replay"
    assert "replayed" not in detail.header.text()
    assert tab.replay_banner.isHidden()
    assert node_view.replayed is None and "(replay)" not in node_view.title.text()
    assert len(node_view.curve(column, "util_gpu_pct").getOriginalDataset()[0]) <= 2, "the live minutes again"
    assert [a.rule for a in active_alerts(tab)] == ["gpu_lost"]


def active_alerts(tab) -> list:
    model = tab.model
    return [model.alert_at(model.index(r, 0, model.index(g, 0)))
            for g in range(model.rowCount()) for r in range(model.rowCount(model.index(g, 0)))]

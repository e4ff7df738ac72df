"""A lost GPU's detail (issue 14 item 10): when it was lost, what it read last and the XIDs
before, read from the history off the GUI thread (or from memory without one); the plots'
axes start afresh for each GPU; the custom range starts on the last recorded hour."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import pytest
from PySide6.QtWidgets import QApplication

from gpuops.core.store import HistoryWriter
from gpuops.core.telemetry import GpuState
from gpuops.core.timefmt import local_time
from gpuops.gui.live.poller import PollResult
from tests import samples
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, open_windows

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)

GPUS = samples.make_inventory(8, gpus_per_node=4)
LOST = 3
N_POLLS = 40
LOST_AT = 30  # GPU 3 answers no more from this poll on
XID_AT = 27
STEP_S = 30.0
#: The collector stopped this long ago: a console reading an old history.
ENDED_AGO_S = 3 * 3600.0


def util(k: int) -> float:
    return float(10 + k)


@pytest.fixture(scope="module")
def poll_times() -> list[float]:
    start = round(time.time()) - ENDED_AGO_S - N_POLLS * STEP_S
    return [start + k * STEP_S for k in range(N_POLLS)]


@pytest.fixture
def history_db(tmp_path, poll_times):
    """GPU 3 at util 10+k % and 300+k W, an XID 79 at poll 27, lost from poll 30 on."""
    path = tmp_path / "history.sqlite"
    with HistoryWriter(path) as writer:
        for k, ts in enumerate(poll_times):
            sample = samples.make_sample(
                gpus=GPUS,
                ts=ts,
                values={"util_gpu_pct": {LOST: util(k)}, "power_w": {LOST: 300.0 + k}},
                states={LOST: GpuState.LOST} if k >= LOST_AT else None,
                xids=((LOST, 79),) if k == XID_AT else (),
            )
            assert writer.write(sample)
    return path


@pytest.fixture
def make_window(qtbot):
    with open_windows(qtbot) as make:
        yield lambda history_db: make(None, history_db=history_db, start=False, size=(1200, 800))


def feed(window, sample) -> None:
    window.apply_result(PollResult(sample, 0.01))
    QApplication.processEvents()


def test_a_lost_gpu_shows_when_it_was_lost_its_last_values_and_the_xids_before(qtbot, make_window, history_db, poll_times):
    window = make_window(history_db)
    feed(window, samples.make_sample(gpus=GPUS, ts=time.time(), states={LOST: GpuState.LOST}))
    window.select_gpu(GPUS[LOST].uuid)
    detail = window.detail
    assert detail.loss_text.isVisible()
    qtbot.waitUntil(lambda: detail.loss is not None, timeout=10_000)
    loss = detail.loss
    assert loss.lost_ts == poll_times[LOST_AT]
    assert loss.last_ts == poll_times[LOST_AT - 1]
    assert loss.last_values["util_gpu_pct"] == util(LOST_AT - 1)
    assert loss.last_values["power_w"] == 300.0 + LOST_AT - 1
    assert [(e.code, e.ts) for e in loss.xids] == [(79, poll_times[XID_AT])]
    text = detail.loss_text.text()
    assert f"GPU lost at {local_time(poll_times[LOST_AT])}" in text
    assert f"Utilization {util(LOST_AT - 1):,.1f} %" in text and f"Power {300.0 + LOST_AT - 1:,.1f} W" in text
    assert "XID 79" in text and local_time(poll_times[XID_AT], with_date=False) in text
    # A healthy GPU shows no loss.
    window.select_gpu(GPUS[0].uuid)
    assert not detail.loss_text.isVisible() and detail.loss is None


def test_without_history_the_loss_is_told_from_the_minutes_in_memory(qtbot, make_window):
    window = make_window(None)
    now = time.time()
    for k in range(3):
        feed(window, samples.make_sample(gpus=GPUS, ts=now - 10 + k, values={"util_gpu_pct": {LOST: util(k)}}))
    feed(window, samples.make_sample(gpus=GPUS, ts=now - 5, states={LOST: GpuState.LOST}))
    window.select_gpu(GPUS[LOST].uuid)
    text = window.detail.loss_text.text()
    assert window.detail.loss_text.isVisible()
    assert f"GPU lost</b> after {local_time(now - 8)}" in text
    assert f"Utilization {util(2):,.1f} %" in text and "not recorded" in text


def test_the_axes_start_afresh_for_each_gpu(qtbot, make_window):
    """GPU 0 reports an 80 GiB total (memory axis 0-80) and runs hot; GPU 1 reports no total and
    uses 1-2 GiB at 30 °C: its axes must fit its own readings, not GPU 0's."""
    gpus = list(GPUS)
    gpus[1] = replace(gpus[1], mem_total_bytes=None, slowdown_temp_c=None)
    gpus = tuple(gpus)
    window = make_window(None)
    now = time.time()
    for k in range(5):
        feed(window, samples.make_sample(
            gpus=gpus, ts=now - 10 + k,
            values={
                "mem_total_bytes": {1: math.nan},
                "mem_used_bytes": {0: 70 * 2**30, 1: (1 + k / 4) * 2**30},
                "temp_c": {0: 85.0 + k, 1: 30.0 + k / 4},
            },
        ))
    detail = window.detail
    window.select_gpu(gpus[0].uuid)
    QApplication.processEvents()
    (_, mem_top) = detail.plots.plots["mem_used_gib"].viewRange()[1]
    (_, temp_top) = detail.plots.plots["temp_c"].viewRange()[1]
    assert mem_top >= 80 and temp_top >= 87  # the total and the slowdown line are in view
    window.select_gpu(gpus[1].uuid)
    QApplication.processEvents()
    mem_low, mem_top = detail.plots.plots["mem_used_gib"].viewRange()[1]
    temp_low, temp_top = detail.plots.plots["temp_c"].viewRange()[1]
    assert mem_top < 3 and temp_top < 35, (mem_top, temp_top)
    assert mem_low > 0.5 and temp_low > 25
    assert not detail.plots.limits["temp_c"].isVisible() and not detail.plots.limits["mem_used_gib"].isVisible()


def test_the_custom_range_starts_on_the_last_recorded_hour(qtbot, make_window, history_db, poll_times):
    window = make_window(history_db)
    feed(window, samples.make_sample(gpus=GPUS, ts=time.time()))
    window.select_gpu(GPUS[0].uuid)
    picker = window.detail.picker
    picker.choose("Custom")
    end = math.ceil((poll_times[-1] + 1) / 60) * 60
    qtbot.waitUntil(lambda: picker.end_edit.dateTime().toSecsSinceEpoch() == end, timeout=10_000)
    # The history holds 20 minutes, so the hour is cut to where it begins.
    assert picker.start_edit.dateTime().toSecsSinceEpoch() == max(poll_times[0], end - 3600) == poll_times[0]
    picker.apply_button.click()
    qtbot.waitUntil(lambda: window.detail.history is not None, timeout=10_000)
    ts, values = window.detail.plots.curves["util_gpu_pct"].getOriginalDataset()
    assert ts.tolist() == poll_times

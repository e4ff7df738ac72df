"""The console and its history database: the detail range picker reads it, the replay slider
shows the fleet as recorded, and without a collector the console writes it from a worker."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from gpuops.core.store import HistoryReader, HistoryWriter, WriterLock
from gpuops.gui.live.poller import PollResult
from tests import samples
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, open_windows

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)

GPUS = samples.make_inventory(16, gpus_per_node=4)
N_POLLS = 60
STEP_S = 30.0


def util(k: int, i: int) -> float:
    return float((k * 7 + i * 3) % 101)


@pytest.fixture(scope="module")
def poll_times() -> list[float]:
    start = round(time.time()) - N_POLLS * STEP_S - 60
    return [start + k * STEP_S for k in range(N_POLLS)]


@pytest.fixture
def history_db(tmp_path, poll_times):
    """60 polls, 30 s apart, ending a minute ago: utilization per (poll, GPU) known, GPU 3's
    corrected-ECC lifetime counter growing by one per poll, and one XID 79 on GPU 3."""
    path = tmp_path / "history.sqlite"
    with HistoryWriter(path) as writer:
        for k, ts in enumerate(poll_times):
            sample = samples.make_sample(
                gpus=GPUS,
                ts=ts,
                values={"util_gpu_pct": {i: util(k, i) for i in range(len(GPUS))}, "ecc_corrected_aggregate": {3: 10.0 + k}},
                xids=((3, 79),) if k == 20 else (),
            )
            assert writer.write(sample)
    return path


@pytest.fixture
def make_window(qtbot):
    with open_windows(qtbot) as make:
        def make_on_history(history_db, source=None, *, start=False, interval_s=0.05):
            return make(source, history_db=history_db, start=start, interval_s=interval_s, size=(1200, 800))

        yield make_on_history
    leftover = [t.name for t in threading.enumerate() if t.name.startswith("gpuops-history")]
    assert not leftover, f"history threads left running: {leftover}"


def feed_live(window, shift: int = 0) -> None:
    window.apply_result(PollResult(samples.make_sample(gpus=GPUS, ts=time.time() + shift), 0.01))
    QApplication.processEvents()


def test_time_range_picker_loads_the_gpus_history(qtbot, make_window, history_db, poll_times):
    window = make_window(history_db)
    feed_live(window)
    window.select_gpu(GPUS[3].uuid)
    detail = window.detail
    detail.picker.choose("1 h")
    qtbot.waitUntil(lambda: detail.history is not None, timeout=10_000)
    history = detail.history
    assert history.uuid == GPUS[3].uuid and history.resolution == "raw"
    ts, values = detail.plots.curves["util_gpu_pct"].getOriginalDataset()
    stored = ts < poll_times[-1] + 1
    assert ts[stored].tolist() == poll_times
    assert values[stored].tolist() == [util(k, 3) for k in range(N_POLLS)]
    counters = {
        detail.counter_table.item(r, 0).text(): detail.counter_table.item(r, 2).text()
        for r in range(detail.counter_table.rowCount())
    }
    assert counters["ECC corrected (lifetime)"] == f"+{N_POLLS - 1}"
    xids = [[detail.xid_table.item(r, c).text() for c in range(4)] for r in range(detail.xid_table.rowCount())]
    assert len(xids) == 1 and xids[0][1] == "79" and "fallen off the bus" in xids[0][2]
    assert xids[0][3], "the recommended action is spelled out"
    # Back to Live: the in-memory points again.
    detail.picker.choose("Live")
    assert detail.history is None
    assert len(detail.plots.curves["util_gpu_pct"].getOriginalDataset()[0]) == 1


def test_custom_range_and_zoom_ask_again_and_only_the_newest_answer_is_drawn(qtbot, make_window, history_db, poll_times):
    window = make_window(history_db)
    feed_live(window)
    window.select_gpu(GPUS[1].uuid)
    detail = window.detail
    detail.picker.set_custom(poll_times[10], poll_times[20])
    detail.picker.set_custom(poll_times[30], poll_times[40])  # supersedes the first request
    qtbot.waitUntil(lambda: detail.history is not None, timeout=10_000)
    assert (detail.history.start, detail.history.end) == (poll_times[30], poll_times[40])
    ts, values = detail.plots.curves["util_gpu_pct"].getOriginalDataset()
    assert ts.tolist() == poll_times[30:40]
    # Zooming the plot reads the visible range again.
    detail.plots.plots["power_w"].setXRange(poll_times[32], poll_times[35], padding=0)
    qtbot.waitUntil(lambda: abs(detail.history.start - poll_times[32]) < 1e-3, timeout=10_000)
    assert detail.plots.curves["util_gpu_pct"].getOriginalDataset()[1].tolist() == [util(k, 1) for k in range(32, 35)]


def test_without_history_the_picker_says_only_live_is_available(qtbot, make_window):
    window = make_window(None)
    feed_live(window)
    window.select_gpu(GPUS[0].uuid)
    window.detail.picker.choose("24 h")
    assert "only Live" in window.detail.history_status.text()
    assert not window.ops.replay_bar.open_button.isEnabled()


def test_replay_slider_shows_the_fleet_as_it_was(qtbot, make_window, history_db, poll_times):
    window = make_window(history_db)
    feed_live(window)
    bar = window.ops.replay_bar
    bar.open()
    qtbot.waitUntil(bar.slider.isVisible, timeout=10_000)
    bar.show_instant(poll_times[12] + 1)
    qtbot.waitUntil(lambda: bar.active, timeout=10_000)
    grid = window.grid
    assert bar.label.text().startswith("Replay: ")
    shown = grid._sample
    # Exact while the poll is in the store's head; once compacted (the console's own writer
    # maintains the store), the keyframe at or before the instant, at most 60 s older.
    assert shown.ts in poll_times and poll_times[12] - 60 <= shown.ts <= poll_times[12]
    k = poll_times.index(shown.ts)
    position = shown.index_of(GPUS[5].uuid)
    assert shown.metrics["util_gpu_pct"][position] == util(k, 5)
    assert grid.tooltip_text(position).startswith("Replay: ")
    feed_live(window, 1)  # a live poll keeps the replay on screen
    assert grid._sample is shown
    bar.live_button.click()
    assert not bar.active and grid._sample is window.last_sample
    assert "Replay" not in grid.tooltip_text(0)


def test_the_console_collects_history_itself_from_a_worker_thread(qtbot, make_window, tmp_path):
    path = tmp_path / "self.sqlite"
    source = FakeSource(8, 4)
    window = make_window(path, source, start=True)
    recorder = window.ops.recorder
    assert recorder is not None
    qtbot.waitUntil(lambda: recorder.writing, timeout=10_000)
    assert any(t.name == "gpuops-history-writer" for t in threading.enumerate())
    qtbot.waitUntil(lambda: source.polls >= 4 and "last" in window.ops.history_status.text(), timeout=10_000)
    window.close()
    assert recorder.stop()
    with HistoryReader(path) as reader:
        assert len(reader.gpus()) == 8
        first, last = reader.time_range()
        series = reader.fleet_series(first, last + 1, metrics=["n_ok"])
        assert len(series["n_ok"]) >= 3 and np.all(series["n_ok"].avg == 8)


def test_a_running_collector_is_left_to_write(qtbot, make_window, tmp_path):
    path = tmp_path / "collected.sqlite"
    with WriterLock(path):
        window = make_window(path)
        assert window.ops.recorder is None
        assert "gpuops collect" in window.ops.history_status.text()


def test_an_unusable_history_file_is_reported_in_the_status_bar(qtbot, make_window, tmp_path):
    path = tmp_path / "not-a-db.sqlite"
    path.write_bytes(b"certainly not SQLite" * 300)
    window = make_window(path)
    qtbot.waitUntil(lambda: "not a gpuops history" in window.ops.history_status.text(), timeout=10_000)
    assert path.read_bytes() == b"certainly not SQLite" * 300, "the file is left as it was"

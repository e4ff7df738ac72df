"""Polls are graded (health, freshness, KPIs, series) on the poller's worker thread, and the
threads that consume live polls (alerts, allocations) hear of each one only after the window
has taken it in."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from gpuops.gui.live.poll_grading import GradedPoll, PollGrader
from gpuops.gui.live.poller import Poller, PollResult
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, make_inventory, make_sample, open_windows

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)


def test_the_poller_grades_each_poll_on_its_worker_thread(qtbot):
    graded_on: list[str] = []
    results: list[PollResult] = []
    grader = PollGrader(0.05)

    def grade(sample):
        graded_on.append(threading.current_thread().name)
        return grader.grade(sample)

    poller = Poller(lambda: FakeSource(12, 4), 0.05, grade=grade)
    poller.sampleReady.connect(results.append)
    poller.start()
    try:
        qtbot.waitUntil(lambda: len(results) >= 2, timeout=10_000)
    finally:
        assert poller.stop(wait_s=5.0)
    assert set(graded_on) == {"gpuops-poller"}
    assert all(isinstance(r.graded, GradedPoll) for r in results)
    assert results[-1].graded.kpis.total == 12 and results[-1].graded.kpis.answering == 12
    assert results[-1].graded.index.uuids == tuple(g.uuid for g in results[-1].sample.gpus)


def test_a_result_handed_over_ungraded_is_graded_by_the_windows_grader(qtbot):
    gpus = make_inventory(8, gpus_per_node=4)
    with open_windows(qtbot) as make:
        window = make(FakeSource(8, 4), start=False, interval_s=1.0)
        window.apply_result(PollResult(make_sample(gpus, ts=1000.0, lost=frozenset({3})), 0.01))
        graded = window.ops.assessment
        assert graded is not None
        assert graded.health.level[3] > 0 and "lost" in graded.health.reasons[3]
        assert window.kpi_strip.value_text("lost") == "1"
        # Freshness carries over to the next poll, whichever thread grades it.
        later = window.grader.grade(make_sample(gpus, ts=1010.0, stale_nodes=frozenset({"node-001"})))
        assert later.stale.tolist() == [False] * 4 + [True] * 4
        assert np.all(later.last_fresh_ts[:4] == 1010.0) and np.all(later.last_fresh_ts[4:] == 1000.0)


def test_graded_polls_are_not_changed_by_later_polls():
    gpus = make_inventory(4, gpus_per_node=4)
    grader = PollGrader(1.0)
    first = grader.grade(make_sample(gpus, ts=100.0))
    grader.grade(make_sample(gpus, ts=101.0))
    assert first.last_fresh_ts.tolist() == [100.0] * 4


def test_live_poll_consumers_hear_of_a_poll_after_the_window_took_it_in(qtbot):
    seen: list[bool] = []
    with open_windows(qtbot) as make:
        window = make(FakeSource(8, 4), start=False)
        window.pollShown.connect(lambda result: seen.append(window.last_sample is result.sample))
        window.start()
        qtbot.waitUntil(lambda: len(seen) >= 3, timeout=10_000)
        assert all(seen)


def test_every_array_of_a_graded_poll_is_read_only():
    gpus = make_inventory(8, gpus_per_node=4)
    graded = PollGrader(1.0).grade(make_sample(gpus, ts=100.0, lost=frozenset({2})))
    arrays = {
        **{f"series[{name!r}]": column for name, column in graded.series.items()},
        "health.level": graded.health.level,
        "stale": graded.stale,
        "last_fresh_ts": graded.last_fresh_ts,
        "index.mem_total_bytes": graded.index.mem_total_bytes,
        "index.power_limit_w": graded.index.power_limit_w,
        "index.node_number": graded.index.node_number,
    }
    assert "series['mem_used_gib']" in arrays  # computed by the grader, not the sample's own column
    for name, array in arrays.items():
        before = array.copy()
        with pytest.raises(ValueError, match="read-only"):
            array[0] = array[1]
        assert np.array_equal(array, before, equal_nan=True), name

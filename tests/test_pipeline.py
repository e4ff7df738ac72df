"""core.pipeline: one poll's work in one order (history, allocations, alerts), for `gpuops collect`
and the console alike. The console test proves both go through it by what they store: the same
polls give the same history rows, demo book, busy-but-unallocated events and alerts."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from gpuops.core.alerts.persistence import AlertStore
from gpuops.core.allocations.busy import EVENT_KIND
from gpuops.core.pipeline import PollOutcome, PollPipeline
from gpuops.core.sources.base import SourceError
from gpuops.core.sources.demo import DemoSource
from gpuops.core.telemetry import FleetSample
from tests.alerts_support import collect_with_alerts
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, open_windows

SEED = 7
N_GPUS = 64
POLLS = 4
T0 = 1_763_798_400.0
PATIENCE_MS = 20_000
#: What a recorder stores that depends on the polls only (not on the wall clock or the OS user).
COMPARED = {
    "fleet_samples": "SELECT * FROM fleet_samples ORDER BY ts_ms",
    "events": "SELECT * FROM events ORDER BY id",
    "customers": "SELECT * FROM customers ORDER BY id",
    "contracts": "SELECT * FROM contracts ORDER BY id",
    "allocations": "SELECT * FROM allocations ORDER BY id",
    # Not notified_at: the console marks the alerts it shows as a desktop notification.
    "alerts": "SELECT id, rule, key, severity, state, labels, node, gpu_uuid, summary, pending_at, started_at, "
    "last_true_at, ended_at FROM alerts ORDER BY id",
}


class SteppedDemo(DemoSource):
    """The simulated fleet of SEED at T0, T0 + 1 s, ...: the same polls whoever asks. After `polls`
    polls it blocks until `release()` (then fails), so a console records exactly those."""

    def __init__(self, polls: int = POLLS) -> None:
        super().__init__(n_gpus=N_GPUS, seed=SEED)
        self._polls = polls
        self._taken = 0
        self._released = threading.Event()

    def poll(self) -> FleetSample:
        if self._taken == self._polls:
            self._released.wait()
            raise SourceError("the test ended")
        self._taken += 1
        return self.sample_at(T0 + self._taken)

    def release(self) -> None:
        self._released.set()


def _stored(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        return {table: conn.execute(query).fetchall() for table, query in COMPARED.items()}
    finally:
        conn.close()


@pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)
def test_collect_and_the_console_record_the_same_polls_alike(qtbot, tmp_path: Path) -> None:
    collected = tmp_path / "collected.sqlite"
    collect_with_alerts(collected, SteppedDemo(), POLLS, demo_seed=SEED)

    recorded = tmp_path / "recorded.sqlite"
    source = SteppedDemo()
    outcomes: list[PollOutcome] = []
    with open_windows(qtbot) as make_window:
        window = make_window(source, history_db=recorded, demo_seed=SEED, start=False)
        assert window.ops.recorder is not None
        window.ops.recorder.outcomeReady.connect(outcomes.append)
        window.start()
        qtbot.waitUntil(lambda: len(outcomes) == POLLS, timeout=PATIENCE_MS)

    expected = _stored(collected)
    assert len(expected["fleet_samples"]) == POLLS
    assert len(expected["customers"]) == 8 and expected["allocations"], "the demo book was seeded"
    assert any(row for row in expected["events"] if EVENT_KIND in row), "busy-but-unallocated GPUs were recorded"
    assert _stored(recorded) == expected
    # What the console's grid was given is the pipeline's own view of each poll.
    assert all(o.stored for o in outcomes)
    assert outcomes[-1].allocations.customers and outcomes[-1].allocations.busy is not None


def test_the_outcome_says_what_the_poll_did(tmp_path: Path) -> None:
    source = SteppedDemo()
    pipeline = PollPipeline.open(tmp_path / "history.sqlite", poll_interval_s=1.0, demo_seed=SEED)
    try:
        first, second = source.poll(), source.poll()
        done = pipeline.process(first)
        assert done.stored and done.sample is first and done.alerts is not None
        pipeline.process(second)
        again = pipeline.process(first)  # older than the last stored poll: refused, still evaluated
        assert not again.stored and again.alerts is not None
        assert len(again.allocations.customers) > 0  # the demo book, seeded once the fleet was stored
        held = again.allocations
        assert held.allocated is not None and held.busy is not None
        assert not (held.allocated & held.busy.mask).any(), "busy-but-unallocated GPUs are unallocated"
        store = AlertStore(pipeline.alerts.store.conn)
        assert store.rules(), "the built-in rules are seeded into the history it records"
    finally:
        pipeline.close()

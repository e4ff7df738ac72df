"""Writing polls: what goes in comes back out, events are recorded once, and a failing disk,
a read-only file or a clock stepping back never loses more than it must."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gpuops.core.store import CollectorRunning, HistoryReader, HistoryWriter, collector_running
from gpuops.core.store.layout import StoreLayout
from gpuops.core.telemetry import SAMPLE_METRICS, GpuState
from tests.samples import make_inventory, make_sample
from tests.store_support import T0, FailingDisk, fleet_polls, varied_sample


def _drain(writer: HistoryWriter) -> None:
    while writer.maintain(5.0):
        pass


def _stored_ts(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [ts for (ts,) in conn.execute("SELECT ts_ms FROM fleet_samples ORDER BY ts_ms")]
    finally:
        conn.close()


def test_every_value_reads_back_within_its_resolution(tmp_path: Path) -> None:
    """Polls over 12 minutes: the first windows are compacted into chunks, the rest is still in
    the head; both read back the same, NaN as NaN."""
    path = tmp_path / "history.sqlite"
    polls = fleet_polls(6, [T0 + 10 * k + 0.0041 * k for k in range(72)])
    with HistoryWriter(path) as writer:
        for poll in polls:
            assert writer.write(poll)
        _drain(writer)
    layout = StoreLayout()
    with HistoryReader(path) as reader:
        for i, gpu in enumerate(polls[0].gpus):
            table = reader.table(gpu.uuid, T0, T0 + 3600)
            assert np.allclose(table.ts, [p.ts for p in polls], atol=0.0005, rtol=0)
            for metric in SAMPLE_METRICS:
                written = np.array([p.metrics[metric][i] for p in polls])
                read = table.columns[metric]
                assert np.array_equal(np.isnan(read), np.isnan(written)), metric
                step = layout.spec(metric).resolution
                both = ~np.isnan(written)
                assert np.all(np.abs(read[both] - written[both]) <= step / 2 + 1e-9 * np.abs(written[both])), metric
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM samples").fetchone()[0] == 6 * 2  # two complete 5-min windows
    assert conn.execute("SELECT count(*) FROM samples_head").fetchone()[0] > 0
    conn.close()


def test_events_are_recorded_when_things_change_not_on_every_poll(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    gpus = make_inventory(4)
    with HistoryWriter(path) as writer:
        writer.write(make_sample(gpus=gpus, ts=T0, xids=((2, 79),)))
        for k in (1, 2, 3):
            writer.write(make_sample(gpus=gpus, ts=T0 + k, states={2: GpuState.LOST}))
        writer.write(replace(make_sample(gpus=gpus, ts=T0 + 4), errors=("node07: connection refused",)))
        writer.write(replace(make_sample(gpus=gpus, ts=T0 + 5), errors=("node07: connection refused",)))
        writer.record_source_error("NVML: driver not loaded", T0 + 6)
        writer.record_source_error("NVML: driver not loaded", T0 + 7)
        writer.write(make_sample(gpus=gpus, ts=T0 + 8))
    with HistoryReader(path) as reader:
        events = [(e.ts - T0, e.kind, e.uuid, e.code, e.detail) for e in reader.events(T0 - 10, T0 + 10)]
        assert [e.kind for e in reader.events(T0 - 10, T0 + 10, gpu_uuid=gpus[2].uuid)] == ["xid", "gpu_lost", "gpu_recovered"]
    assert events == [
        (0, "xid", gpus[2].uuid, 79, None),
        (1, "gpu_lost", gpus[2].uuid, None, None),
        (4, "gpu_recovered", gpus[2].uuid, None, None),
        (4, "source_error", None, None, "node07: connection refused"),
        (6, "source_error", None, None, "NVML: driver not loaded"),
        (6, "source_error_cleared", None, None, "node07: connection refused"),
        (8, "source_error_cleared", None, None, "NVML: driver not loaded"),
    ]


def test_a_state_seen_before_a_restart_is_remembered(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    gpus = make_inventory(2)
    with HistoryWriter(path) as writer:
        writer.write(make_sample(gpus=gpus, ts=T0, states={0: GpuState.LOST}))
    with HistoryWriter(path) as writer:
        writer.write(make_sample(gpus=gpus, ts=T0 + 1))
    with HistoryReader(path) as reader:
        assert [e.kind for e in reader.events(T0, T0 + 2)] == ["gpu_recovered"]


def test_a_poll_older_than_the_last_stored_one_is_refused_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "history.sqlite"
    gpus = make_inventory(3)
    times = [T0 + k for k in range(10)] + [T0 + 3.5, T0 + 9, T0 + 8.5] + [T0 + 10 + k for k in range(5)]
    with HistoryWriter(path) as writer, caplog.at_level(logging.WARNING, logger="gpuops.store"):
        accepted = [writer.write(varied_sample(gpus, ts, seed=1)) for ts in times[:13]]
        assert accepted == [True] * 10 + [False] * 3
        status = writer.status()
        assert status.rejected_polls == 3 and "clock went" in status.last_error
        assert "behind the last stored poll" in caplog.text and "refused so far" in caplog.text
        assert all(writer.write(varied_sample(gpus, ts, seed=1)) for ts in times[13:])
        assert writer.status().last_error is None
    expected = [round(1000 * ts) for ts in times[:10] + times[13:]]
    assert _stored_ts(path) == expected
    with HistoryReader(path) as reader:
        assert [round(1000 * t) for t in reader.table(gpus[0].uuid, T0, T0 + 60).ts] == expected


def test_the_same_instant_twice_is_stored_once(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    with HistoryWriter(path) as writer:
        assert writer.write(make_sample(2, ts=T0))
        assert not writer.write(make_sample(2, ts=T0))
        assert not writer.write(make_sample(2, ts=T0 + 0.0004))  # the same millisecond
    with HistoryWriter(path) as writer:  # the high-water mark survives a restart
        assert not writer.write(make_sample(2, ts=T0))
    assert _stored_ts(path) == [round(T0 * 1000)]


@pytest.mark.parametrize("mode, message", [("full", "the disk is full"), ("read-only", "read-only")])
def test_polls_wait_in_memory_while_the_database_cannot_be_written(tmp_path: Path, mode: str, message: str) -> None:
    path = tmp_path / "history.sqlite"
    disk = FailingDisk(mode)
    polls = fleet_polls(70, [T0 + k for k in range(30)])  # 70 GPUs: two blocks, blobs of real size
    with HistoryWriter(path, connect=disk) as writer:
        for poll in polls[:5]:
            writer.write(poll)
        disk.fail()
        for poll in polls[5:20]:
            assert writer.write(poll)  # accepted, though not yet stored
        status = writer.status()
        assert message in status.last_error and str(path) in status.last_error
        assert status.backlog_polls > 0 and status.written_polls < 20
        assert not writer.maintain(1.0)  # no background work while writes fail
        disk.recover()
        for poll in polls[20:]:
            writer.write(poll)
        status = writer.status()
        assert status.last_error is None and status.backlog_polls == 0 and status.written_polls == 30
    assert disk.opened > 2
    assert _stored_ts(path) == [round(1000 * p.ts) for p in polls]
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_full_backlog_drops_the_oldest_polls_but_not_their_new_gpus(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    disk = FailingDisk("full")
    small = make_inventory(2)
    grown = make_inventory(3)  # a GPU appears during the outage
    with HistoryWriter(path, connect=disk, backlog_limit_bytes=3000) as writer:
        writer.write(varied_sample(small, T0, seed=2))
        disk.fail()
        writer.write(varied_sample(grown, T0 + 1, seed=2))
        for k in range(2, 40):
            writer.write(varied_sample(grown, T0 + k, seed=2))
        status = writer.status()
        assert status.dropped_polls > 0 and status.backlog_polls < 39
        disk.recover()
        writer.write(varied_sample(grown, T0 + 40, seed=2))
        assert writer.status().backlog_polls == 0
    stored = _stored_ts(path)
    assert stored[0] == round(1000 * T0) and stored[-1] == round(1000 * (T0 + 40))
    assert len(stored) == 41 - status.dropped_polls
    with HistoryReader(path) as reader:
        assert {g.uuid for g in reader.gpus()} == {g.uuid for g in grown}
        assert len(reader.table(grown[2].uuid, T0, T0 + 60).ts) == len(stored) - 1


def test_only_one_writer_per_database(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    assert not collector_running(path)
    with HistoryWriter(path):
        assert collector_running(path)
        with pytest.raises(CollectorRunning, match="already writing"):
            HistoryWriter(path)
        with HistoryReader(path) as reader:  # readers are welcome meanwhile
            assert reader.gpus() == []
    assert not collector_running(path)
    HistoryWriter(path).close()


def test_inventory_changes_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    gpus = make_inventory(2)
    upgraded = (replace(gpus[0], driver_version="590.48.01"), gpus[1])
    with HistoryWriter(path) as writer:
        writer.write(make_sample(gpus=gpus, ts=T0))
        writer.write(make_sample(gpus=upgraded, ts=T0 + 1))
    with HistoryReader(path) as reader:
        assert reader.fleet_at(T0 + 1).gpus[0].driver_version == "590.48.01"


def test_a_problem_that_comes_and_goes_is_logged_once_not_on_every_poll(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "history.sqlite"
    disk = FailingDisk("read-only")
    polls = fleet_polls(4, [T0 + k for k in range(40)])
    with HistoryWriter(path, connect=disk) as writer, caplog.at_level(logging.INFO, logger="gpuops.store"):
        for k, poll in enumerate(polls):
            if k % 2:
                disk.fail()
            else:
                disk.recover()
            writer.write(poll)
            writer.maintain(0.01)
        disk.recover()
        writer.write(varied_sample(polls[0].gpus, T0 + 100, seed=0))
        assert writer.status().last_error is None
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot write the history" in m for m in messages) == 1
    assert sum("writing resumed" in m for m in messages) == 1
    assert len(_stored_ts(path)) == 41

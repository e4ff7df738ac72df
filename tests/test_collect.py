"""`gpuops collect`: one collector per database, a clean stop on SIGTERM/SIGINT, and a loop that
keeps polling whatever fails."""

from __future__ import annotations

import logging
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gpuops.core.alerts.service import AlertService
from gpuops.core.allocations.live import LiveAllocations
from gpuops.core.pipeline import PollPipeline, collect_loop
from gpuops.core.sources.base import SourceError, TelemetrySource
from gpuops.core.sources.demo import DemoSource
from gpuops.core.store import HistoryReader, HistoryWriter, collector_running
from gpuops.core.telemetry import FleetSample
from tests.store_support import FailingDisk

REPO = Path(__file__).resolve().parent.parent


def _start_collector(path: Path, log: Path) -> subprocess.Popen:
    out = open(log, "w")
    child = subprocess.Popen(
        [sys.executable, "-m", "gpuops", "-v", "collect", "--source", "demo:8", "--db", str(path), "--interval", "0.1"],
        cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
    )
    out.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "stored poll at" not in log.read_text():
        assert child.poll() is None, log.read_text()
        time.sleep(0.05)
    return child


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_second_collector_is_refused_and_a_signal_stops_the_first_cleanly(tmp_path: Path, signum: int) -> None:
    path = tmp_path / "history.sqlite"
    first = _start_collector(path, tmp_path / "first.log")
    try:
        assert collector_running(path)
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "gpuops", "collect", "--source", "demo:8", "--db", str(path)],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )
        assert second.returncode == 1
        assert f"already writing to {path}" in second.stderr and f"pid {first.pid}" in second.stderr
        assert time.monotonic() - started < 15  # refused at once (the rest is interpreter start-up)
        with HistoryReader(path) as reader:  # while readers are welcome
            assert len(reader.gpus()) == 8
        sent = time.monotonic()
        first.send_signal(signum)
        assert first.wait(timeout=10) == 0
        assert time.monotonic() - sent < 2.0
    finally:
        if first.poll() is None:
            first.kill()
    assert "stopped:" in (tmp_path / "first.log").read_text()
    assert not collector_running(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM fleet_samples").fetchone()[0] > 0
    conn.close()


class FlakySource(TelemetrySource):
    """The simulated fleet, failing outright on polls 5-7, stopping the loop after `polls`."""

    name = "flaky"

    def __init__(self, stop: threading.Event, polls: int, on_poll) -> None:
        self.inner = DemoSource(n_gpus=8, seed=3)
        self.stop, self.polls, self.on_poll = stop, polls, on_poll
        self.count = 0

    def poll(self) -> FleetSample:
        self.count += 1
        self.on_poll(self.count)
        if self.count == self.polls:
            self.stop.set()
        if 5 <= self.count <= 7:
            raise SourceError("endpoint http://node7:9400/metrics refused the connection")
        return self.inner.poll()


def test_the_loop_keeps_polling_through_source_and_database_failures(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "history.sqlite"
    disk = FailingDisk("full")
    stop = threading.Event()

    def on_poll(count: int) -> None:
        if count == 10:
            disk.fail()
        elif count == 20:
            disk.recover()

    source = FlakySource(stop, polls=30, on_poll=on_poll)
    with HistoryWriter(path, connect=disk) as writer, caplog.at_level(logging.INFO):
        alerts = AlertService.for_collector(path, poll_interval_s=0.01)
        try:
            collect_loop(source, PollPipeline(writer, alerts, LiveAllocations(alerts.store.conn)), 0.01, stop)
        finally:
            alerts.close()
        assert writer.status().last_error is None
    assert source.count == 30
    db_errors = [r for r in caplog.records if "cannot write the history" in r.getMessage()]
    assert len(db_errors) == 1 and "full" in db_errors[0].getMessage()
    assert any("writing resumed" in r.getMessage() for r in caplog.records)
    assert sum("refused the connection" in r.getMessage() for r in caplog.records) == 1
    with HistoryReader(path) as reader:
        conn = sqlite3.connect(path)
        assert conn.execute("SELECT count(*) FROM fleet_samples").fetchone()[0] == 27  # every successful poll
        conn.close()
        kinds = [e.kind for e in reader.events(0, time.time() + 10, kinds=["source_error", "source_error_cleared"])]
        assert kinds == ["source_error", "source_error_cleared"]

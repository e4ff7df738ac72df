"""Quitting loses nothing and waits for nothing it need not: closing the window stores an
allocation still on its way to the allocations worker, and a store worker that is busy reading
(a long usage report over a big fleet) abandons the read, does the writes queued behind it and
ends, instead of leaving them behind after its two-second wait."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.store.writer import HistoryWriter
from gpuops.gui.workers.store_worker import Jobs, StoreWorker
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, make_inventory, make_sample, open_windows

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)

GPUS = make_inventory(16)
HOUR_MS = 3_600_000


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """A few polls and a book with one contract that has room for two GPUs."""
    path = tmp_path / "history.sqlite"
    now = time.time()
    with HistoryWriter(path) as writer:
        for k in range(5, 0, -1):
            writer.write(make_sample(GPUS, ts=now - k))
    repo = AllocationRepository.open(path, user="tester")
    customer = repo.add_customer("Acme")
    repo.add_contract(customer.id, "ACME-1", "reserved", "TEST", 2, round(now * 1000) - HOUR_MS, None, 2.0)
    repo.close()
    return path


def test_closing_the_window_stores_an_allocation_still_on_its_way(qtbot, history: Path) -> None:
    with open_windows(qtbot) as make_window:
        window = make_window(FakeSource(16), history_db=history, size=(1200, 800))
        console = window.allocations
        qtbot.waitUntil(lambda: console.book is not None, timeout=20_000)
        contract = next(c for c in console.book.contracts if c.name == "ACME-1")
        console.worker.query_usage(round(time.time() * 1000) - 30 * 24 * HOUR_MS, round(time.time() * 1000))
        console.worker.allocate(contract.id, (GPUS[8].uuid, GPUS[9].uuid), round(time.time() * 1000), None)
        window.close()  # at once: the write is queued, maybe behind the usage read
        assert console.worker.join(0.0), "the allocations worker ended with the window"
    repo = AllocationRepository.open(history, user="tester", read_only=True)
    try:
        assert sorted(a.gpu_uuid for a in repo.allocations()) == sorted((GPUS[8].uuid, GPUS[9].uuid))
    finally:
        repo.close()


class _Session:
    """Connects on first use and again after a failure, as the real sessions do."""

    def __init__(self, path: Path, watch) -> None:
        self._path, self._watch = path, watch
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            self._watch(self._conn)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None


class _SlowReader(StoreWorker[_Session]):
    """A store worker whose read is one endless SQLite statement, and whose write inserts a row."""

    def __init__(self, path: Path) -> None:
        super().__init__(None, area="test", log=logging.getLogger("test"))
        self.path = path
        self.reading = threading.Event()
        self._start({"count": _dummy_signal(self)}, 3600.0, lambda: None)

    def count_forever(self) -> None:
        self._read("count")

    def add(self, value: int) -> None:
        self._write(value)

    def _open_session(self) -> _Session:
        return _Session(self.path, self.watch)

    def _problem_line(self, exc: Exception) -> str:
        return str(exc)

    unavailable_errors = (sqlite3.Error,)

    def _run(self, session: _Session, jobs: Jobs) -> None:
        for value in jobs.writes:
            session.conn.execute("INSERT INTO t VALUES (?)", (value,))
        if "count" in jobs.reads:
            self.reading.set()
            session.conn.execute(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
            ).fetchone()


def _dummy_signal(worker: StoreWorker) -> object:
    return worker.problem  # answers are never sent in this test


def test_stop_abandons_a_read_under_way_and_does_the_writes_behind_it(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (v INTEGER)")
    worker = _SlowReader(path)
    worker.count_forever()
    assert worker.reading.wait(5.0)
    worker.add(1)
    worker.add(2)
    assert worker.stop(wait_s=5.0), "the endless read was abandoned"
    with sqlite3.connect(path) as conn:
        assert [v for (v,) in conn.execute("SELECT v FROM t ORDER BY v")] == [1, 2]

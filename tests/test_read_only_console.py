"""A console started read-only on an existing history reads it (alerts, notifications, the book,
history queries) and leaves it byte for byte as it found it: no -wal, -shm or -journal appears,
nothing is recorded, seeded or marked notified."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.store.connection import open_database
from tests.alerts_support import collect_with_alerts
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FaultySource, open_windows
from tests.test_gui_alerts import N

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)

PATIENCE_MS = 20_000
SIDE_FILES = ("-wal", "-shm", "-journal")


def state(path: Path) -> tuple[str, list[str]]:
    """The database file's bytes (hashed) and every file in its folder."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), sorted(p.name for p in path.parent.iterdir())


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """Three polls of a fleet with critical alerts nobody was notified of, and a customer."""
    path = tmp_path / "history.sqlite"
    collect_with_alerts(path, FaultySource(N), 3)
    repo = AllocationRepository.open(path)
    repo.add_customer("Acme", "ops@acme.example")
    repo.close()
    conn, _ = open_database(path, create=False)
    try:
        assert conn.execute("SELECT count(*) FROM alerts WHERE notified_at IS NULL AND state = 'firing'").fetchone()[0] >= 2
        assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] > 0
    finally:
        conn.close()
    assert not [s for s in SIDE_FILES if (tmp_path / (path.name + s)).exists()]
    return path


def test_read_only_console_leaves_the_history_byte_for_byte(qtbot, history: Path) -> None:
    before = state(history)
    loaded: list[object] = []
    with open_windows(qtbot) as make_window:
        window = make_window(FaultySource(N), history_db=history, read_only=True, size=(1200, 800))
        # The alert worker has read the alerts and put out the notification it would have
        # marked in the history, the customers worker has read the book, the loader a query.
        qtbot.waitUntil(lambda: window.alerts.tab.title.startswith("Alerts (2 critical"), timeout=PATIENCE_MS)
        qtbot.waitUntil(lambda: "new alerts (critical)" in window.statusBar().currentMessage(), timeout=PATIENCE_MS)
        qtbot.waitUntil(
            lambda: window.allocations.book is not None and bool(window.allocations.book.customers), timeout=PATIENCE_MS
        )
        loader = window.ops.loader
        assert loader is not None
        loader.loaded.connect(lambda resource, result: loaded.append(result) if resource == "probe" else None)
        loader.request("probe", lambda reader: reader.gpus())
        qtbot.waitUntil(lambda: bool(loaded), timeout=PATIENCE_MS)
        assert len(loaded[0]) == N
        qtbot.wait(500)  # further polls and worker refreshes while the console runs
        assert window.ops.recorder is None
        assert not [s for s in SIDE_FILES if (history.parent / (history.name + s)).exists()]
        assert state(history) == before
    assert window.alerts.worker.join(5.0)
    assert not [t.name for t in threading.enumerate() if t.name in ("gpuops-alerts", "gpuops-allocations")]
    assert state(history) == before

"""A running `gpuops collect` keeps its history safe while anything reads it (issue 12, item 1).

Closing any descriptor of the database file in the collector's process would drop SQLite's POSIX
locks; a reader closing its connection could then delete the WAL the collector still writes into,
and the polls the collector logged as stored would be gone after a kill -9. Each run reads with
every read-only command and an external sqlite3 shell while the collector writes, checks the WAL is
never deleted under the collector and that readers see new polls, then kills it and checks every
logged poll is stored.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SQLITE3 = shutil.which("sqlite3")
RUNS = 10


def _gpuops(*args: str) -> list[str]:
    return [sys.executable, "-m", "gpuops", *args]


def _external_command(db: Path) -> list[str]:
    """Count the stored polls as another program does: the sqlite3 shell (Debian package sqlite3,
    read-write as a person would open it), or a separate Python process with the sqlite3 module
    where the shell is not installed."""
    query = "SELECT count(*) FROM fleet_samples"
    if SQLITE3:
        return [SQLITE3, str(db), query]
    script = f"import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute({query!r}).fetchone()[0])"
    return [sys.executable, "-c", script, str(db)]


def _external_count(db: Path) -> int:
    result = subprocess.run(_external_command(db), capture_output=True, text=True, timeout=30, check=True)
    return int(result.stdout.strip())


def _deleted_fds(pid: int) -> list[str]:
    fd_dir = Path(f"/proc/{pid}/fd")
    targets = []
    for fd in fd_dir.iterdir():
        try:
            targets.append(os.readlink(fd))
        except FileNotFoundError:
            continue
    return [target for target in targets if target.endswith("(deleted)")]


def _logged_polls(log: Path) -> set[int]:
    return {
        round(float(line.split("stored poll at ")[1].split()[0]) * 1000)
        for line in log.read_text().splitlines()
        if "stored poll at" in line
    }


def _wait_for(predicate, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("run", range(RUNS))
def test_readers_never_cost_the_collector_a_poll(tmp_path: Path, run: int) -> None:
    db = tmp_path / "history.sqlite"
    log = tmp_path / "collect.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        collector = subprocess.Popen(
            _gpuops("-v", "collect", "--source", "demo:8", "--db", str(db), "--interval", "0.05"),
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    try:
        _wait_for(lambda: len(_logged_polls(log)) >= 2)
        before = _external_count(db)
        readers = [
            _gpuops("alerts", "--db", str(db)),
            _gpuops("export", "--format", "csv", "--db", str(db), "--since", "1h", "-o", str(tmp_path / "out.csv")),
            _gpuops("contracts", "list", "--db", str(db)),
            _gpuops("customers", "export", "--db", str(db), "-o", str(tmp_path / "customers.csv")),
            _external_command(db),
        ]
        running = [subprocess.Popen(r, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in readers]
        while any(p.poll() is None for p in running):
            assert _deleted_fds(collector.pid) == []
            time.sleep(0.01)
        for command, process in zip(readers, running, strict=True):
            _stdout, stderr = process.communicate()
            assert process.returncode == 0, (command, stderr)
        assert _deleted_fds(collector.pid) == []
        # Readers after the readers still see the collector's new polls (not a frozen history).
        after = _external_count(db)
        _wait_for(lambda: _external_count(db) > after)
        assert after > before
        assert _deleted_fds(collector.pid) == []
    finally:
        collector.send_signal(signal.SIGKILL)
        collector.wait(timeout=30)
    logged = _logged_polls(log)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {ts for (ts,) in conn.execute("SELECT ts_ms FROM fleet_samples")}
    finally:
        conn.close()
    assert logged and logged <= stored, sorted(logged - stored)

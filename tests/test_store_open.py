"""Opening the history: only our own files are used, anything else is refused untouched."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gpuops.core.store import HistoryReader, HistoryWriter
from gpuops.core.store import connection as store_connection
from gpuops.core.store.connection import open_database
from gpuops.core.store.errors import DamagedDatabase, DatabaseTooNew, NoHistory, NotAGpuopsDatabase
from gpuops.core.store.fleet import FLEET_METRICS
from gpuops.core.store.identity import APPLICATION_ID
from gpuops.core.store.inventory import DETAIL_FIELDS
from gpuops.core.store.schema import MIGRATIONS
from tests.samples import make_sample


def _digest(path: Path) -> dict[str, str]:
    """Hashes of the file and of any SQLite sidecar next to it."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.parent.iterdir())
        if p.name.startswith(path.name) and not p.name.endswith(".lock")
    }


def _gpuops_db(path: Path, polls: int = 3) -> Path:
    with HistoryWriter(path) as writer:
        for k in range(polls):
            writer.write(make_sample(4, ts=1_763_798_400.0 + k))
    return path


def _garbage(path: Path) -> Path:
    path.write_bytes(os.urandom(5000))
    return path


def _other_app(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('somebody else''s data')")
    conn.commit()
    conn.close()
    return path


def _other_app_with_open_wal(path: Path) -> Path:
    """Another application's database whose last commit is still only in its -wal file."""
    _other_app(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("INSERT INTO notes VALUES ('not checkpointed')")
    conn.commit()
    # Copy the three files while the connection is open, so the WAL is not checkpointed away.
    copy = path.with_name("copy-" + path.name)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").write_bytes(Path(f"{path}{suffix}").read_bytes())
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
        if Path(f"{copy}{suffix}").exists():
            os.rename(f"{copy}{suffix}", f"{path}{suffix}")
    assert Path(f"{path}-wal").stat().st_size > 32
    return path


def _truncated(path: Path) -> Path:
    _gpuops_db(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _header_only(path: Path) -> Path:
    _gpuops_db(path)
    path.write_bytes(path.read_bytes()[:60])
    return path


BAD_FILES = {
    "garbage": (_garbage, NotAGpuopsDatabase),
    "another application's database": (_other_app, NotAGpuopsDatabase),
    "another application's database with an unflushed WAL": (_other_app_with_open_wal, NotAGpuopsDatabase),
    "truncated gpuops history": (_truncated, DamagedDatabase),
    "gpuops history cut inside its header": (_header_only, DamagedDatabase),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("opener", ["writer", "reader"])
def test_a_file_that_is_not_a_usable_history_is_refused_and_left_untouched(tmp_path: Path, case: str, opener: str) -> None:
    make, error = BAD_FILES[case]
    path = make(tmp_path / "history.sqlite")
    before = _digest(path)
    with pytest.raises(error) as raised:
        HistoryWriter(path) if opener == "writer" else HistoryReader(path)
    message = str(raised.value)
    assert str(path) in message and "\n" not in message
    assert _digest(path) == before


def test_a_history_from_a_newer_gpuops_is_refused_untouched(tmp_path: Path) -> None:
    path = _gpuops_db(tmp_path / "history.sqlite")
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.commit()
    conn.close()
    before = _digest(path)
    with pytest.raises(DatabaseTooNew, match="newer gpuops"):
        HistoryWriter(path)
    assert _digest(path) == before


def test_collect_and_export_exit_non_zero_on_a_foreign_file(tmp_path: Path) -> None:
    path = _other_app(tmp_path / "notes.db")
    before = _digest(path)
    for args in (
        ["collect", "--source", "demo:4", "--db", str(path)],
        ["export", "--format", "csv", "--db", str(path), "--since", "1h", "-o", str(tmp_path / "out.csv")],
    ):
        result = subprocess.run([sys.executable, "-m", "gpuops", *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stderr
        assert "not a gpuops history" in result.stderr
    assert _digest(path) == before
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("existing", [False, True])
def test_a_missing_or_empty_path_gets_a_new_history_keeping_a_given_mode(tmp_path: Path, existing: bool) -> None:
    """A file gpuops creates is 0600; an empty file someone else made keeps its mode (gpuops only
    sets the mode of what it created), and SQLite's sidecars follow the database's mode."""
    path = tmp_path / "new" / "dir" / "history.sqlite"
    if existing:
        path.parent.mkdir(parents=True)
        path.touch(mode=0o644)
        os.chmod(path, 0o644)
    expected = 0o644 if existing else 0o600
    with HistoryWriter(path) as writer:
        writer.write(make_sample(2))
        assert stat.S_IMODE(os.stat(f"{path}-wal").st_mode) == expected
    assert stat.S_IMODE(path.stat().st_mode) == expected
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_reading_a_missing_history_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(NoHistory):
        HistoryReader(tmp_path / "nothing.sqlite")
    assert list(tmp_path.iterdir()) == []


def test_a_later_migration_runs_once_on_an_existing_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _gpuops_db(tmp_path / "history.sqlite")
    runs = []

    def add_feature(db) -> None:
        runs.append(1)
        db.create_table("later_feature", {"id": int, "ts_ms": int}, pk="id")

    monkeypatch.setattr(store_connection, "MIGRATIONS", (*MIGRATIONS, add_feature))
    monkeypatch.setattr(store_connection, "SCHEMA_VERSION", len(MIGRATIONS) + 1)
    for _ in range(2):
        conn, _layout = open_database(path, create=False)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) + 1
        assert conn.execute("SELECT count(*) FROM later_feature").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM fleet_samples").fetchone()[0] == 3
        conn.close()
    assert runs == [1]


def test_schema_matches_the_model(tmp_path: Path) -> None:
    """Fleet figures and inventory fields each need a column; a new one needs a migration."""
    conn, _layout = open_database(tmp_path / "history.sqlite", create=True)
    fleet_columns = [row[1] for row in conn.execute("PRAGMA table_info(fleet_samples)")]
    gpu_columns = {row[1] for row in conn.execute("PRAGMA table_info(gpus)")}
    conn.close()
    assert fleet_columns == ["ts_ms", *FLEET_METRICS]
    assert set(DETAIL_FIELDS) <= gpu_columns


def test_reading_an_up_to_date_history_changes_nothing(tmp_path: Path) -> None:
    path = _gpuops_db(tmp_path / "history.sqlite")
    before = _digest(path)
    with HistoryReader(path) as reader:
        assert len(reader.gpus()) == 4
        assert len(reader.series(reader.gpus()[0].uuid, "power_w", 1_763_798_000.0, 1_763_799_000.0)) == 3
    assert _digest(path) == before


def test_another_writer_does_not_stop_a_new_history_switching_to_wal(tmp_path: Path) -> None:
    """A new history is created in rollback-journal mode, then switched to WAL; SQLite refuses
    that switch at once, without waiting, while another connection is in a write transaction (the
    console's recorder and its alert view opening the history at the same moment), so the opener
    retries until the busy timeout instead of failing."""
    path = _gpuops_db(tmp_path / "history.sqlite", polls=1)
    with sqlite3.connect(path, isolation_level=None) as plain:
        assert plain.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # a writer in its transaction
    done = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    done.start()
    try:
        conn, _layout = open_database(path, create=False)
    finally:
        done.join()
        other.close()
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()

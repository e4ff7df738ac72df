"""What gpuops does with files that are not plainly its own (issue 12, items 2, 3, 4 and 10):
one writer per file whatever its name, only regular files used, modes set only on what gpuops
created, a read-only open that changes nothing, and full or read-only disks named as such."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gpuops.core.store import CollectorRunning, HistoryReader, HistoryWriter, NoHistory, StoreError, open_read_only
from gpuops.core.store.errors import DamagedDatabase, NotAGpuopsDatabase
from gpuops.core.store.schema import SCHEMA_VERSION
from tests.samples import make_sample

REPO = Path(__file__).resolve().parent.parent
T0 = 1_763_798_400.0


def _history(path: Path, polls: int = 3, start: float = T0) -> Path:
    with HistoryWriter(path) as writer:
        for k in range(polls):
            writer.write(make_sample(4, ts=start + k))
    return path


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _gpuops(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gpuops", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command's error, which must be a single line and no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@contextlib.contextmanager
def _running_collector(db: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "w") as out:
        collector = subprocess.Popen(
            [sys.executable, "-m", "gpuops", "-v", "collect", "--source", "demo:4", "--db", str(db), "--interval", "0.05"],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + 30
        while "stored poll at" not in log.read_text():
            assert collector.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield collector
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(timeout=30)


# -- item 2: one writer per file, not per path ---------------------------------------------------


def test_a_second_collector_through_a_symlink_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "real" / "history.sqlite"
    db.parent.mkdir()
    link = tmp_path / "alias.sqlite"
    link.symlink_to(db)
    with _running_collector(db, tmp_path / "first.log") as first:
        started = time.monotonic()
        second = _gpuops("collect", "--source", "demo:4", "--db", str(link), "--interval", "0.05", timeout=30)
        assert second.returncode == 1
        assert "already writing" in _one_line(second)
        assert time.monotonic() - started < 20  # refused at once, not after polling
        assert first.poll() is None
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_a_second_collector_through_a_hard_link_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    with _running_collector(db, tmp_path / "first.log") as first:
        link = tmp_path / "other-name.sqlite"
        os.link(db, link)
        second = _gpuops("collect", "--source", "demo:4", "--db", str(link), "--interval", "0.05", timeout=30)
        assert second.returncode == 1
        assert "hard links" in _one_line(second)
        assert first.poll() is None
    assert not Path(f"{link}-wal").exists() and not Path(f"{link}.collector.lock").exists()
    os.unlink(link)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_writers_in_one_process_exclude_each_other_through_a_symlink(tmp_path: Path) -> None:
    db = _history(tmp_path / "history.sqlite")
    link = tmp_path / "alias.sqlite"
    link.symlink_to(db)
    with HistoryWriter(db):
        with pytest.raises(CollectorRunning, match="already writing"):
            HistoryWriter(link)
    with HistoryWriter(link) as writer:  # the lock is free again once the first writer closed
        assert writer.write(make_sample(4, ts=T0 + 10))


# -- item 3: only regular files ------------------------------------------------------------------


def _fifo(path: Path) -> Path:
    os.mkfifo(path, 0o644)
    return path


def _char_device(path: Path) -> Path:
    """A copy of /dev/null (mknod needs root)."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod of a character device is not permitted here")
    os.chmod(path, 0o666)
    return path


def _directory(path: Path) -> Path:
    path.mkdir()
    return path


def _socket(path: Path) -> Path:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()
    return path


NOT_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "fifo": (_fifo, "FIFO"),
    "character device": (_char_device, "character device"),
    "directory": (_directory, "directory"),
    "socket": (_socket, "socket"),
}


@pytest.mark.parametrize("kind", sorted(NOT_FILES))
def test_collect_refuses_a_db_that_is_not_a_regular_file_at_once_and_touches_nothing(tmp_path: Path, kind: str) -> None:
    make, word = NOT_FILES[kind]
    target = make(tmp_path / "history.sqlite")
    mode = _mode(target)
    result = _gpuops("collect", "--source", "demo:4", "--db", str(target), timeout=30)  # a FIFO must not block
    assert result.returncode == 1
    line = _one_line(result)
    assert word in line and str(target) in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.sqlite"]  # no lock, no -journal
    assert _mode(target) == mode


@pytest.mark.parametrize("kind", sorted(set(NOT_FILES) - {"fifo"}))
@pytest.mark.parametrize("opener", [HistoryWriter, HistoryReader, open_read_only])
def test_every_opener_refuses_what_is_not_a_regular_file(tmp_path: Path, kind: str, opener: Callable[[Path], object]) -> None:
    make, word = NOT_FILES[kind]
    target = make(tmp_path / "history.sqlite")
    with pytest.raises(NotAGpuopsDatabase, match=word):
        opener(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.sqlite"]


def test_a_dangling_symlink_is_refused_not_created_through(tmp_path: Path) -> None:
    link = tmp_path / "history.sqlite"
    link.symlink_to(tmp_path / "elsewhere.sqlite")
    with pytest.raises(NotAGpuopsDatabase, match="symlink to a missing file"):
        HistoryWriter(link)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.sqlite"]


def test_the_mode_of_an_existing_history_is_never_changed(tmp_path: Path) -> None:
    db = _history(tmp_path / "history.sqlite")
    os.chmod(db, 0o640)
    with HistoryWriter(db) as writer:
        writer.write(make_sample(4, ts=T0 + 100))
        assert _mode(f"{db}-wal") == 0o640
    with HistoryReader(db) as reader:
        assert reader.gpus()
    assert _mode(db) == 0o640


# -- item 10: private files and folders, full and read-only disks --------------------------------


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def test_files_are_0600_and_folders_0700_even_at_umask_000(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "history.sqlite"
    with _umask(0o000):
        with HistoryWriter(db) as writer:
            writer.write(make_sample(4, ts=T0))
            created = {name: _mode(db.parent / name) for name in os.listdir(db.parent)}
    assert set(created) == {"history.sqlite", "history.sqlite-wal", "history.sqlite-shm", "history.sqlite.collector.lock"}
    assert set(created.values()) == {0o600}, created
    assert _mode(tmp_path / "a") == 0o700 and _mode(tmp_path / "a" / "b") == 0o700


def _mounted(*args: str) -> None:
    try:
        subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount here ({exc}); the full or read-only disk case needs root")


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 200 KiB tmpfs filled to the last byte."""
    folder = tmp_path / "full"
    folder.mkdir()
    _mounted("-t", "tmpfs", "-o", "size=200k", "tmpfs", str(folder))
    try:
        fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True, timeout=30)


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(writable folder, the same folder bind-mounted read-only)."""
    source, view = tmp_path / "source", tmp_path / "view"
    source.mkdir()
    view.mkdir()
    _mounted("--bind", str(source), str(view))
    try:
        _mounted("-o", "remount,bind,ro", str(view))
        yield source, view
    finally:
        subprocess.run(["umount", str(view)], check=True, timeout=30)


def test_a_new_history_on_a_full_disk_is_one_line_naming_the_cause(full_disk: Path) -> None:
    db = full_disk / "history.sqlite"
    with pytest.raises(StoreError, match="the disk is full") as raised:
        HistoryWriter(db)
    assert not isinstance(raised.value, DamagedDatabase)
    result = _gpuops("collect", "--source", "demo:4", "--db", str(db), timeout=30)
    assert result.returncode == 1
    assert "the disk is full" in _one_line(result)


def test_a_history_on_a_read_only_file_system_is_named_so_and_can_still_be_read(
    read_only_folder: tuple[Path, Path],
) -> None:
    source, view = read_only_folder
    _history(source / "history.sqlite")
    db = view / "history.sqlite"
    with pytest.raises(StoreError, match="read-only") as raised:
        HistoryWriter(db)
    assert not isinstance(raised.value, DamagedDatabase)
    result = _gpuops("collect", "--source", "demo:4", "--db", str(db), timeout=30)
    assert result.returncode == 1
    line = _one_line(result)
    assert "read-only" in line and "damaged" not in line
    with HistoryReader(db, read_only=True) as reader:  # nothing to create there, and nothing needed
        assert len(reader.gpus()) == 4


# -- item 4: a read-only open that changes nothing ------------------------------------------------


def test_read_only_open_of_a_missing_history_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(NoHistory):
        open_read_only(tmp_path / "none" / "history.sqlite")
    assert list(tmp_path.iterdir()) == []


def test_read_only_open_of_a_quiet_history_leaves_every_byte_and_creates_no_sidecar(tmp_path: Path) -> None:
    db = _history(tmp_path / "history.sqlite")
    before = _digests(tmp_path)
    conn, layout = open_read_only(db)
    try:
        assert conn.snapshot
        assert conn.execute("SELECT count(*) FROM fleet_samples").fetchone()[0] == 3
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("DELETE FROM fleet_samples")
    finally:
        conn.close()
    with HistoryReader(db, read_only=True) as reader:
        assert len(reader.gpus()) == 4
    assert _digests(tmp_path) == before


def test_read_only_open_beside_a_writer_sees_its_new_polls(tmp_path: Path) -> None:
    db = _history(tmp_path / "history.sqlite")
    with HistoryReader(db, read_only=True) as reader:  # opened while nothing writes: a snapshot
        uuid = reader.gpus()[0].uuid
        with HistoryWriter(db) as writer:
            writer.write(make_sample(4, ts=T0 + 10))
            assert len(reader.series(uuid, "power_w", T0 - 1, T0 + 20)) == 4
            conn, _layout = open_read_only(db)
            try:
                assert not conn.snapshot
                writer.write(make_sample(4, ts=T0 + 11))
                assert conn.execute("SELECT count(*) FROM fleet_samples").fetchone()[0] == 5
            finally:
                conn.close()


def test_read_only_open_refuses_a_history_that_needs_an_upgrade_and_leaves_it(tmp_path: Path) -> None:
    db = _history(tmp_path / "history.sqlite")
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    conn.close()
    before = _digests(tmp_path)
    with pytest.raises(StoreError, match="older than this gpuops"):
        open_read_only(db)
    assert _digests(tmp_path) == before

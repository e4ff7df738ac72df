"""Opening the history database: refuse what is not ours before writing a byte, create what is
missing, bring an older schema up to date, and hand back a connection tuned for WAL.

Every connection is made here and counted per file (device and inode): while this process has one
open, the file is never opened outside SQLite, because closing any descriptor of it would drop the
POSIX locks SQLite holds, and another process could then delete the WAL the writer still uses.
SQLite itself keeps such descriptors open until its last lock on the file is gone.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
import urllib.parse
import weakref
from pathlib import Path

import sqlite_utils

from gpuops.core.store.errors import (
    DamagedDatabase,
    DatabaseTooNew,
    NoHistory,
    NotAGpuopsDatabase,
    StoreError,
    failure_cause,
)
from gpuops.core.store.identity import APPLICATION_ID, FileState, inspect_file, stat_history
from gpuops.core.store.layout import StoreLayout
from gpuops.core.store.paths import create_private_file
from gpuops.core.store.schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger("gpuops.store")

APPLICATION_NAME = "gpuops"
BUSY_TIMEOUT_MS = 5000

_FileKey = tuple[int, int]
_open_files: dict[_FileKey, int] = {}
_open_files_lock = threading.Lock()


def _key(status: os.stat_result) -> _FileKey:
    return (status.st_dev, status.st_ino)


def _forget(key: _FileKey) -> None:
    with _open_files_lock:
        _open_files[key] -= 1
        if not _open_files[key]:
            del _open_files[key]


def _in_use(status: os.stat_result | None) -> bool:
    """True while this process holds a connection to the file."""
    with _open_files_lock:
        return status is not None and _key(status) in _open_files


class HistoryConnection(sqlite3.Connection):
    """A connection counted in this module until it is closed (or collected). `snapshot` is True
    for a read-only connection opened immutable: it does not see later writes."""

    snapshot = False
    _finalizer: weakref.finalize | None = None

    def close(self) -> None:
        super().close()
        if self._finalizer is not None:
            self._finalizer()


def _uri(path: Path, mode: str) -> str:
    return f"file:{urllib.parse.quote(os.path.realpath(path))}?mode={mode}"


def _connect(path: Path, mode: str) -> HistoryConnection:
    """A counted connection to the existing file at `path`; SQLite never creates it (mode rw or ro)."""
    conn = sqlite3.connect(
        _uri(path, mode), uri=True, isolation_level=None, check_same_thread=False,
        timeout=BUSY_TIMEOUT_MS / 1000, factory=HistoryConnection,
    )
    try:
        key = _key(os.stat(path))
    except OSError as exc:
        conn.close()
        raise StoreError(f"cannot open the history {path}: {exc.strerror}") from None
    with _open_files_lock:
        _open_files[key] = _open_files.get(key, 0) + 1
    conn._finalizer = weakref.finalize(conn, _forget, key)
    conn.snapshot = "immutable=1" in mode
    return conn


def _verify(conn: sqlite3.Connection, path: Path) -> int:
    """Check, through SQLite, that `conn` is on a gpuops history of a schema we know; returns its
    schema version."""
    try:
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if application_id != APPLICATION_ID:
            raise NotAGpuopsDatabase(f"{path} is not a gpuops history (application_id {application_id:#x})")
        if version > SCHEMA_VERSION:
            raise DatabaseTooNew(
                f"{path} was written by a newer gpuops (history schema {version}; this version knows up to "
                f"{SCHEMA_VERSION}): upgrade gpuops or pass another --db"
            )
        marker = conn.execute("SELECT value FROM meta WHERE key = 'application'").fetchone()
        if marker is None or marker[0] != APPLICATION_NAME:
            raise NotAGpuopsDatabase(f"{path} is not a gpuops history (its meta table does not say so)")
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_ERROR":  # e.g. no meta table
            raise NotAGpuopsDatabase(f"{path} is not a gpuops history ({exc})") from None
        raise StoreError(f"cannot read the history {path}: {failure_cause(exc, path)}") from None
    except sqlite3.DatabaseError as exc:
        raise DamagedDatabase(f"{path} is damaged and cannot be read: {exc}") from None
    return version


def _check_readable(path: Path) -> None:
    """Confirm, through a read-only connection that cannot write on close, that SQLite sees a
    gpuops history of a schema we know."""
    try:
        conn = sqlite3.connect(_uri(path, "ro"), uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the history {path}: {failure_cause(exc, path)}") from None
    try:
        _verify(conn, path)
    finally:
        conn.close()


def _examine(path: Path) -> FileState:
    """Refuse what must not be used, before any connection of ours: its header bytes are read only
    while this process has no connection to the file."""
    status = stat_history(path)
    return inspect_file(path, status, SCHEMA_VERSION, read_header=not _in_use(status))


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Run the migrations this file has not had, each in its own transaction."""
    db = sqlite_utils.Database(conn)
    # Checked outside a transaction first, so that opening an up-to-date history writes nothing.
    while conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version >= SCHEMA_VERSION:  # another process migrated it meanwhile
                conn.execute("COMMIT")
                return
            if version == 0:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            MIGRATIONS[version](db)
            if version == 0:
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [
                        ("application", APPLICATION_NAME),
                        ("created_at", f"{time.time():.3f}"),
                        ("layout", StoreLayout().to_json()),
                    ],
                )
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
            log.info("history %s: schema %d applied", path, version + 1)
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _load_layout(conn: sqlite3.Connection, *, update: bool = True) -> StoreLayout:
    stored = StoreLayout.from_json(conn.execute("SELECT value FROM meta WHERE key = 'layout'").fetchone()[0])
    layout = stored.with_new_metrics()
    if update and layout != stored:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'layout'", (layout.to_json(),))
    return layout


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch a new history to WAL. SQLite refuses the switch at once, without its busy handler,
    while another connection is writing or switching too (the console's recorder and its alert
    view open a new history at the same moment), so it is retried until the busy timeout, as a
    write would wait; giving up would leave the console without a recorder for the session."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if not getattr(exc, "sqlite_errorname", "").startswith("SQLITE_BUSY") or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def open_database(path: Path, *, create: bool) -> tuple[sqlite3.Connection, StoreLayout]:
    """A connection (autocommit; callers BEGIN/COMMIT themselves) to the gpuops history at `path`.

    Raises NotAGpuopsDatabase / DamagedDatabase / DatabaseTooNew without having written anything
    when the file must not be used, and NoHistory when it is missing and `create` is False.
    """
    path = Path(path)
    if _examine(path) is FileState.NEW:
        if not create:
            raise NoHistory(f"no history at {path}: run `gpuops collect` (or the console) first")
        if not create_private_file(path) and stat.S_IMODE(os.stat(path).st_mode) & 0o077:
            log.warning("history %s: others may read this empty file, which gpuops did not create; its mode is kept", path)
    else:
        _check_readable(path)
    conn: HistoryConnection | None = None
    try:
        conn = _connect(path, "rw")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # The first writer creates the schema in rollback-journal mode, so that another process
        # looking at the file meanwhile sees either nothing or a complete gpuops header.
        _migrate(conn, path)
        _use_wal(conn)
        # NORMAL in WAL survives a killed process (the WAL is in the page cache); only a power
        # cut can lose the last commits, never corrupt.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA cache_size = -32768")
        layout = _load_layout(conn)
    except sqlite3.DatabaseError as exc:
        _close_quietly(conn)
        raise _open_failure(exc, path, "used") from None
    except BaseException:
        _close_quietly(conn)
        raise
    return conn, layout


def open_read_only(path: Path) -> tuple[HistoryConnection, StoreLayout]:
    """A connection that cannot write to the gpuops history at `path`: it never creates a file
    (not the history, not a -wal or -shm), never migrates and never writes, so `--read-only` and a
    read-only console leave the file byte for byte as they found it.

    While something writes (a -wal is there) it is an ordinary read-only connection (mode=ro) that
    sees every commit. When nothing does, it is an immutable snapshot (`conn.snapshot` is True):
    SQLite would otherwise create -wal and -shm files; open again to see later writes.
    Raises NoHistory when there is no history, and a StoreError when the history needs an upgrade
    (a schema older than this gpuops), besides the errors of `open_database`.
    """
    path = Path(path)
    if _examine(path) is FileState.NEW:
        raise NoHistory(f"no history at {path}: run `gpuops collect` (or the console) first")
    real = os.path.realpath(path)
    quiet = not any(os.path.lexists(real + suffix) for suffix in ("-wal", "-journal"))
    conn: HistoryConnection | None = None
    try:
        conn = _connect(path, "ro&immutable=1" if quiet else "ro")
        version = _verify(conn, path)
        if version < SCHEMA_VERSION:
            raise StoreError(
                f"{path} has history schema {version}, older than this gpuops ({SCHEMA_VERSION}); it cannot be "
                "upgraded read-only: open it once without --read-only (e.g. gpuops collect)"
            )
        layout = _load_layout(conn, update=False)
    except sqlite3.DatabaseError as exc:
        _close_quietly(conn)
        raise _open_failure(exc, path, "read") from None
    except BaseException:
        _close_quietly(conn)
        raise
    return conn, layout


def snapshot_outdated(conn: sqlite3.Connection, path: Path) -> bool:
    """True when `conn` is an immutable snapshot (see `open_read_only`) and a writer has started on
    the history at `path` since: open it again to see what it writes."""
    return getattr(conn, "snapshot", False) and os.path.lexists(f"{os.path.realpath(path)}-wal")


def _open_failure(exc: sqlite3.DatabaseError, path: Path, use: str) -> StoreError:
    """What an SQLite error while opening the history at `path` means for the user: a cause we can
    name (busy, full disk, read-only file system) or a damaged file."""
    if isinstance(exc, sqlite3.OperationalError):
        return StoreError(f"cannot open the history {path}: {failure_cause(exc, path)}")
    return DamagedDatabase(f"{path} is damaged and cannot be {use}: {exc}")


def _close_quietly(conn: sqlite3.Connection | None) -> None:
    if conn is not None:
        conn.close()

"""Opening the history database: refuse what is not ours before writing a byte, create what is
missing, bring an older schema up to date, and hand back a connection tuned for WAL."""

from __future__ import annotations

import logging
import sqlite3
import time
import urllib.parse
from pathlib import Path

import sqlite_utils

from gpuops.core.store.errors import DamagedDatabase, DatabaseTooNew, NoHistory, NotAGpuopsDatabase, StoreError
from gpuops.core.store.identity import APPLICATION_ID, FileState, inspect_file
from gpuops.core.store.layout import StoreLayout
from gpuops.core.store.paths import create_private_file
from gpuops.core.store.schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger("gpuops.store")

APPLICATION_NAME = "gpuops"
BUSY_TIMEOUT_MS = 5000


def _uri(path: Path, mode: str) -> str:
    return f"file:{urllib.parse.quote(str(path.resolve()))}?mode={mode}"


def _check_readable(path: Path) -> None:
    """Confirm, through a read-only connection that cannot write on close, that SQLite sees a
    gpuops history of a schema we know."""
    try:
        conn = sqlite3.connect(_uri(path, "ro"), uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the history {path}: {exc}") from None
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
    except sqlite3.DatabaseError as exc:
        raise DamagedDatabase(f"{path} is damaged and cannot be read: {exc}") from None
    finally:
        conn.close()


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


def _load_layout(conn: sqlite3.Connection) -> StoreLayout:
    stored = StoreLayout.from_json(conn.execute("SELECT value FROM meta WHERE key = 'layout'").fetchone()[0])
    layout = stored.with_new_metrics()
    if layout != stored:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'layout'", (layout.to_json(),))
    return layout


def open_database(path: Path, *, create: bool) -> tuple[sqlite3.Connection, StoreLayout]:
    """A connection (autocommit; callers BEGIN/COMMIT themselves) to the gpuops history at `path`.

    Raises NotAGpuopsDatabase / DamagedDatabase / DatabaseTooNew without having written anything
    when the file must not be used, and NoHistory when it is missing and `create` is False.
    """
    path = Path(path)
    state = inspect_file(path, SCHEMA_VERSION)
    if state is FileState.NEW:
        if not create:
            raise NoHistory(f"no history at {path}: run `gpuops collect` (or the console) first")
        create_private_file(path)
    else:
        _check_readable(path)
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # The first writer creates the schema in rollback-journal mode, so that another process
        # looking at the file meanwhile sees either nothing or a complete gpuops header.
        _migrate(conn, path)
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL survives a killed process (the WAL is in the page cache); only a power
        # cut can lose the last commits, never corrupt.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA cache_size = -32768")
        layout = _load_layout(conn)
    except sqlite3.OperationalError as exc:
        _close_quietly(locals().get("conn"))
        raise StoreError(f"cannot open the history {path}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        _close_quietly(locals().get("conn"))
        raise DamagedDatabase(f"{path} is damaged and cannot be used: {exc}") from None
    return conn, layout


def _close_quietly(conn: sqlite3.Connection | None) -> None:
    if conn is not None:
        conn.close()

"""Small persistent counters (watermarks, cursors) kept in the meta table."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


def get_int(conn: sqlite3.Connection, key: str, default: int = 0) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return default if row is None else int(row[0])


def set_int(conn: sqlite3.Connection, key: str, value: int) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, str(int(value))),
    )


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A read transaction: every SELECT inside sees the same committed state (WAL snapshot), so a
    compaction committed meanwhile cannot make a query see rows twice or not at all."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (SQLite may already have rolled back
    on a full disk, hence the check)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid of the row this cursor's INSERT made (sqlite3 leaves lastrowid None only when
    the cursor inserted nothing)."""
    rowid = cursor.lastrowid
    if rowid is None:
        raise sqlite3.InterfaceError("the statement inserted no row")
    return rowid

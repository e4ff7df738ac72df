"""The few things `AlertStore` asks of a database connection, so that one store (one copy of its
SQL) serves the embedded SQLite history and a team's PostgreSQL database
(`core.team.alert_db.PostgresAlertDatabase`).

The store's SQL is written once, with `?` placeholders and in the dialect both engines share
(upserts with ON CONFLICT, RETURNING, CASE instead of two-argument MAX).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from gpuops.core.store.meta import write_transaction


class Rows(Protocol):
    """What a cursor gives back: rows, and how many rows a write touched."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class AlertDatabase(Protocol):
    """A connection as the alert store uses it. `errors`: what a database failure raises (the
    collector logs those and keeps polling)."""

    raw: Any
    errors: tuple[type[BaseException], ...]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...


class SqliteAlertDatabase:
    """An autocommit SQLite connection (as `open_database` returns it); a transaction joins the
    caller's when one is open (e.g. the collector's poll), else is BEGIN IMMEDIATE ... COMMIT."""

    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.raw.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.raw.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.raw.in_transaction:
            yield
            return
        with write_transaction(self.raw):
            yield

    def close(self) -> None:
        self.raw.close()


def alert_database(conn: Any) -> AlertDatabase:
    """The AlertDatabase of `conn`: a SQLite connection, a psycopg connection, or one already wrapped."""
    if isinstance(conn, sqlite3.Connection):
        return SqliteAlertDatabase(conn)
    if hasattr(conn, "transaction") and hasattr(conn, "raw"):
        return conn
    from gpuops.core.team.alert_db import PostgresAlertDatabase

    return PostgresAlertDatabase(conn)

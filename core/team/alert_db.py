"""`AlertStore` on the team database: a psycopg 3 connection behind the store's
`core.alerts.database.AlertDatabase` interface, so the store's SQL exists once for both engines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg


def _placeholders(sql: str) -> str:
    """The store's `?` placeholders as psycopg's `%s` (its SQL has no literal `?` or `%`)."""
    return sql.replace("?", "%s")


class PostgresAlertDatabase:
    """An autocommit psycopg connection; a transaction nests (a savepoint) inside an open one."""

    errors: tuple[type[BaseException], ...] = (psycopg.Error,)

    def __init__(self, conn: psycopg.Connection) -> None:
        if not conn.autocommit:
            raise ValueError("the alert store wants an autocommit connection (it makes its own transactions)")
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor:
        return self.raw.execute(_placeholders(sql), tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.raw.cursor() as cursor:
            cursor.executemany(_placeholders(sql), [tuple(r) for r in rows])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.raw.transaction():
            yield

    def close(self) -> None:
        self.raw.close()

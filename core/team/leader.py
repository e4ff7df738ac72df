"""Which of several collectors on one team database evaluates and forwards alerts: the one holding
a session-level advisory lock, on a connection of its own. The others keep polling and try the
lock once per poll, so when the active one dies (even kill -9: the server ends its session and
releases the lock with it) one takes over at its next poll.

    leadership = Leadership(lambda: connect(team_db, autocommit=True))
    if leadership.check(): ...evaluate and forward...
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg

from gpuops.core.logonce import LastingProblem

log = logging.getLogger("gpuops.team")

#: The advisory lock key of the active collector ("gpuopsAL"; the migrations use another one).
COLLECTOR_LOCK = 0x6770756F70734C


class Leadership:
    """Holds or waits for the collector lock; `check()` once per poll says whether this process is active."""

    def __init__(self, connect: Callable[[], psycopg.Connection]) -> None:
        self._connect = connect
        self._conn: psycopg.Connection | None = None
        self._held = False
        self._problem = LastingProblem(log, logging.WARNING, prefix="team database for the collector lock ")

    @property
    def held(self) -> bool:
        return self._held

    def check(self) -> bool:
        """True while this process holds the lock (taking it if it is free). A lost connection
        means a lost lock: the next call reconnects and tries again."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            if self._held:
                self._conn.execute("SELECT 1")  # still our session, so still our lock
            else:
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (COLLECTOR_LOCK,)).fetchone()
                self._held = bool(row and row[0])
                if self._held:
                    log.info("this collector is now the active one: it evaluates and forwards alerts")
        except psycopg.Error as exc:
            if self._held:
                log.warning("lost the collector lock with the team database connection; standing by")
            self._problem.occur(f"failed: {exc}")
            self._held = False
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            return False
        self._problem.resolve("works again")
        return self._held

    def close(self) -> None:
        """Give the lock up (closing the session releases it)."""
        if self._conn is not None:
            self._conn.close()
        self._conn, self._held = None, False

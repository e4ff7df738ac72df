"""Hearing about changes made at other consoles: LISTEN on `gpuops_changes` (the triggers of
core/team/alert_schema.py NOTIFY it with the changed table's name), on a thread with its own
connection, so a console refreshes within moments of a change without polling the database.

    listener = ChangeListener(lambda tables: ..., connect=lambda: connect(team_db, autocommit=True))
    listener.start(); ...; listener.close()

`on_change` runs on the listener's thread with the set of tables changed (a GUI hands it to its
thread bridge). When the connection drops, the listener reconnects with a growing backoff
(RECONNECT_MIN_S .. RECONNECT_MAX_S) and then reports every table as changed, since
notifications sent meanwhile are lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from gpuops.core.logonce import LastingProblem
from gpuops.core.team.alert_schema import CHANNEL, NOTIFYING_TABLES

log = logging.getLogger("gpuops.team")

RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 30.0
WAKE_S = 0.5  # how often the thread looks whether it should stop


class ChangeListener:
    def __init__(
        self, on_change: Callable[[frozenset[str]], None], *, connect: Callable[[], psycopg.Connection]
    ) -> None:
        self._on_change = on_change
        self._connect = connect
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._problem = LastingProblem(log, logging.WARNING, prefix="listening for team database changes ")
        self._thread = threading.Thread(target=self._run, name="gpuops-team-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait_listening(self, timeout_s: float) -> bool:
        """True once LISTEN is in place (changes committed from now on are heard)."""
        return self._listening.wait(timeout_s)

    def _run(self) -> None:
        backoff_s = RECONNECT_MIN_S
        first = True
        while not self._stop.is_set():
            try:
                conn = self._connect()
            except psycopg.Error as exc:
                self._problem.occur(f"failed: {exc}; retrying in {backoff_s:g} s")
                self._stop.wait(backoff_s)
                backoff_s = min(backoff_s * 2, RECONNECT_MAX_S)
                continue
            try:
                conn.execute(f"LISTEN {CHANNEL}")
                self._listening.set()
                self._problem.resolve("works again")
                backoff_s = RECONNECT_MIN_S
                if not first:  # whatever was notified while we were away is lost
                    self._on_change(frozenset(NOTIFYING_TABLES))
                first = False
                while not self._stop.is_set():
                    for notification in conn.notifies(timeout=WAKE_S):
                        self._on_change(frozenset({notification.payload}))
            except psycopg.Error as exc:
                self._listening.clear()
                self._problem.occur(f"lost the connection: {exc}; reconnecting")
            finally:
                conn.close()

    def close(self, timeout_s: float = 2 * WAKE_S) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

"""Log a problem once, not every poll: a database that refuses writes, a source that is down or a
GPU reading that needs root would otherwise repeat the same line every second and bury the log.

`LastingProblem` is a problem that starts and ends (logged when it starts or changes, and when it
ends); `LoggedOnce` is a condition that stays for the life of the process (logged once per key).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable


class LastingProblem:
    """One problem that may last many polls. Logged at `level` when it starts and whenever its
    message changes; with `remind_after_s`, the same message is logged again at most that often,
    also while the problem comes and goes. `resolve` logs its end, with how long it lasted, if
    this episode was logged. `message` is the current problem (None while all is well)."""

    def __init__(
        self,
        logger: logging.Logger,
        level: int = logging.ERROR,
        *,
        prefix: str = "",
        remind_after_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self.level = level
        self._prefix = prefix
        self._remind_after_s = remind_after_s
        self._clock = clock
        self.message: str | None = None
        self.since = 0.0
        self._told = False
        self._last_logged: dict[str, float] = {}

    def occur(self, message: str, detail: str = "") -> bool:
        """The problem (still) happens; `detail` is logged after the message but is not part of
        it (a count that changes every time). True if this call logged."""
        now = self._clock()
        if self.message is None:
            self.since = now
            self._told = False
        changed = message != self.message
        self.message = message
        if self._remind_after_s is None:
            due = changed
        else:
            last = self._last_logged.get(message)
            due = last is None or now - last >= self._remind_after_s
        if due:
            self._log.log(self.level, "%s%s%s", self._prefix, message, detail)
            if self._remind_after_s is not None:
                self._last_logged[message] = now
            self._told = True
        return due

    def resolve(self, what: str | None = None) -> None:
        """The problem is over (harmless when there was none). `what` says so in the log, at
        WARNING, if its start was logged."""
        if self.message is not None and self._told and what is not None:
            self._log.warning("%s%s after %.0f s", self._prefix, what, self._clock() - self.since)
        self.message = None


class LoggedOnce:
    """Conditions that do not go away while the process runs (a driver that lacks a function, a
    reading that needs more permission): each key is logged the first time only."""

    def __init__(self, logger: logging.Logger, level: int = logging.WARNING) -> None:
        self._log = logger
        self.level = level
        self._seen: set[Hashable] = set()

    def log(self, key: Hashable, message: str, *args: object) -> bool:
        """Log `message % args` unless `key` was logged before; True if this call logged."""
        if key in self._seen:
            return False
        self._seen.add(key)
        self._log.log(self.level, message, *args)
        return True

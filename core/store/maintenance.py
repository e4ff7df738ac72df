"""The writer's background work, in priority order: compact the head (keeps it small), build
1-minute then 1-hour rollups, prune. Each step is one short transaction, so the writer's next poll
and any reader wait at most one step."""

from __future__ import annotations

import sqlite3
import time

from gpuops.core.store.compaction import Compactor
from gpuops.core.store.layout import StoreLayout
from gpuops.core.store.levels import HOUR, MINUTE
from gpuops.core.store.retention import Pruner, RetentionPolicy, RollupBuilder


class Maintenance:
    def __init__(self, layout: StoreLayout, policy: RetentionPolicy) -> None:
        self._compactor = Compactor(layout)
        self._minute = RollupBuilder(layout, MINUTE)
        self._hour = RollupBuilder(layout, HOUR)
        self._pruner = Pruner(layout, policy)

    def run(self, conn: sqlite3.Connection, high_water_ms: int, deadline: float) -> bool:
        """Work until `deadline` (time.monotonic) or until nothing is left; True if work remains.
        At least one step is made, so even a poll interval with no time to spare makes progress."""
        while True:
            if not (
                self._compactor.step(conn, high_water_ms)
                or self._minute.step(conn)
                or self._hour.step(conn)
                or self._pruner.step(conn, high_water_ms)
            ):
                return False
            if time.monotonic() >= deadline:
                return True

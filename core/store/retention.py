"""Rollups and pruning, incremental: every step is a bounded batch in a short transaction.

Rollups: once the level below holds a whole window (raw windows compacted, or 1-minute windows
rolled up), each GPU's part of it is rolled up - a batch of GPUs per transaction, the next GPU id
kept in meta - and finally the fleet figures of the window, which also advances the watermark.

Pruning deletes, in batches, what is older than the retention of its level, measured from the
newest stored poll (so a collector that was off for a week does not come back to an empty history)
- but never data that the next level has not rolled up yet.

Rollup listeners let a feature keep data derived from new rollups (accounting's idle summaries)
in the same transaction, without the store knowing about the feature.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gpuops.core.store import meta
from gpuops.core.store.blobs import decode_rollup_chunk, encode_rollup_chunk
from gpuops.core.store.fleet import FLEET_METRICS
from gpuops.core.store.layout import StoreLayout
from gpuops.core.store.levels import fleet_frame, fleet_rollup_columns, gpu_frame, stat_columns
from gpuops.core.store.rollup import Frame, aggregate

HOUR_S = 3600
DAY_S = 86400

#: GPUs rolled up per transaction: about 25 ms each for a 6-hour window of 1 Hz polls.
ROLLUP_BATCH_GPUS = 4
#: Rows deleted per transaction.
PRUNE_BATCH_ROWS = 500


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each level is kept, in seconds."""

    raw_s: float = 48 * HOUR_S
    rollup_1m_s: float = 90 * DAY_S
    rollup_1h_s: float = 3 * 365 * DAY_S

    def __post_init__(self) -> None:
        for name in ("raw_s", "rollup_1m_s", "rollup_1h_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"retention {name} must be positive, got {getattr(self, name)!r}")


#: listener(conn, layout, level, {gpu_id: frame}) runs inside the transaction that stores new
#: rollup chunks of `level`, with each GPU's frame exactly as it reads back (quantized), so that
#: data derived from it agrees with what later reads of the chunks compute.
RollupListener = Callable[[sqlite3.Connection, StoreLayout, int, dict[int, Frame]], None]
_LISTENERS: list[RollupListener] = []


def add_rollup_listener(listener: RollupListener) -> None:
    """Call `listener` whenever rollup chunks are stored (once, however often it is added)."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


class RollupBuilder:
    """Builds the 1-minute (level 1) or 1-hour (level 2) rollups, one batch per `step()`."""

    def __init__(self, layout: StoreLayout, level: int) -> None:
        self.layout = layout
        self.level = level
        self.lvl = layout.levels[level]
        self.below = layout.levels[level - 1]
        self.metrics = [spec.name for spec in layout.metrics]
        self.columns = stat_columns(layout, self.metrics)

    def step(self, conn: sqlite3.Connection) -> bool:
        window_ms = self.lvl.window_ms
        start = meta.get_int(conn, self.lvl.watermark_key)
        end = start + window_ms
        ready_until = meta.get_int(conn, self.below.watermark_key)
        if ready_until < end:
            return False
        first = conn.execute(
            f"SELECT min(ts_ms) FROM {self.below.fleet_table} WHERE ts_ms >= ?", (start,)
        ).fetchone()[0]
        if first is None or first >= end:
            # Nothing in this window: skip to the window of the next data, or as far as is complete.
            target = ready_until if first is None else min(first, ready_until)
            with meta.write_transaction(conn):
                meta.set_int(conn, self.lvl.watermark_key, target - target % window_ms)
            return True
        cursor = meta.get_int(conn, self.lvl.cursor_key)
        candidates = [
            gpu_id
            for (gpu_id,) in conn.execute(
                "SELECT id FROM gpus WHERE id >= ? AND first_seen_ms < ? AND last_seen_ms >= ? ORDER BY id LIMIT ?",
                (cursor, end, start, ROLLUP_BATCH_GPUS),
            )
        ]
        if not candidates:
            self._finish_window(conn, start, end)
            return True
        chunks = []
        for gpu_id in candidates:
            frame = gpu_frame(conn, self.layout, self.level - 1, gpu_id, start, end, self.metrics)
            if len(frame):
                rolled = aggregate(frame, self.columns, self.lvl.bucket_ms)
                chunks.append((gpu_id, start, len(rolled), encode_rollup_chunk(rolled, self.layout)))
        stored = (
            {gpu_id: decode_rollup_chunk(blob, self.layout, self.columns) for gpu_id, _, _, blob in chunks} if _LISTENERS else {}
        )
        with meta.write_transaction(conn):
            conn.executemany(f"INSERT INTO {self.lvl.table} (gpu_id, t0_ms, n, data) VALUES (?, ?, ?, ?)", chunks)
            meta.set_int(conn, self.lvl.cursor_key, candidates[-1] + 1)
            for listener in _LISTENERS:
                listener(conn, self.layout, self.level, stored)
        return True

    def _finish_window(self, conn: sqlite3.Connection, start: int, end: int) -> None:
        """Roll up the fleet figures of the window and move the watermark past it."""
        below = fleet_frame(conn, self.layout, self.level - 1, start, end, FLEET_METRICS)
        columns = fleet_rollup_columns(FLEET_METRICS)
        rolled = aggregate(below, columns, self.lvl.bucket_ms)
        names = ["ts_ms", "n", *(f"{m}_{stat.value}" for m, stat in columns)]
        rows = (
            np.column_stack([rolled.ts_ms, rolled.count, *(rolled.columns[c] for c in columns)])
            if len(rolled)
            else np.empty((0, len(names)))
        )
        with meta.write_transaction(conn):
            conn.executemany(
                f"INSERT INTO {self.lvl.fleet_table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                [(int(r[0]), int(r[1]), *map(float, r[2:])) for r in rows],
            )
            meta.set_int(conn, self.lvl.watermark_key, end)
            meta.set_int(conn, self.lvl.cursor_key, 0)


class Pruner:
    """Deletes expired rows, one bounded batch per `step()`."""

    def __init__(self, layout: StoreLayout, policy: RetentionPolicy) -> None:
        self.layout = layout
        self.policy = policy

    def _targets(self, conn: sqlite3.Connection, high_water_ms: int) -> list[tuple[str, str, int]]:
        """(table, time column, delete rows with time < this) for every prunable table."""
        raw, minute, hour = self.layout.levels
        rolled_1m = meta.get_int(conn, minute.watermark_key)
        rolled_1h = meta.get_int(conn, hour.watermark_key)
        raw_cut = high_water_ms - int(self.policy.raw_s * 1000)
        minute_cut = high_water_ms - int(self.policy.rollup_1m_s * 1000)
        hour_cut = high_water_ms - int(self.policy.rollup_1h_s * 1000)
        # A chunk is deleted only once its whole window is past the cut.
        return [
            ("samples", "t0_ms", min(raw_cut, rolled_1m) - raw.window_ms + 1),
            ("fleet_samples", "ts_ms", min(raw_cut, rolled_1m)),
            ("keyframes", "ts_ms", raw_cut),
            ("rollup_1m", "t0_ms", min(minute_cut, rolled_1h) - minute.window_ms + 1),
            ("fleet_1m", "ts_ms", min(minute_cut, rolled_1h)),
            ("rollup_1h", "t0_ms", hour_cut - hour.window_ms + 1),
            ("fleet_1h", "ts_ms", hour_cut),
            ("events", "ts_ms", hour_cut),
        ]

    def step(self, conn: sqlite3.Connection, high_water_ms: int) -> bool:
        """Delete one batch from the first table that has expired rows; False when none has."""
        if not high_water_ms:
            return False
        for table, column, cut in self._targets(conn, high_water_ms):
            if conn.execute(f"SELECT 1 FROM {table} WHERE {column} < ? LIMIT 1", (cut,)).fetchone() is None:
                continue
            with meta.write_transaction(conn):
                conn.execute(
                    f"DELETE FROM {table} WHERE rowid IN "
                    f"(SELECT rowid FROM {table} WHERE {column} < ? ORDER BY {column} LIMIT ?)",
                    (cut, PRUNE_BATCH_ROWS),
                )
            return True
        return False

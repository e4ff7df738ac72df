"""Turning the head (one blob per poll and block of GPUs) into per-GPU raw chunks.

Raw windows are aligned on `raw_window_ms`. Once a poll at or after a window's end is stored, no
sample can enter that window any more (the writer refuses polls that go back in time), so it can be
compacted: one block of GPUs per transaction, until the head holds nothing of the window. The polls
marked as keyframes move to the keyframes table for replay; the other head rows are deleted.
"""

from __future__ import annotations

import sqlite3

import numpy as np

from gpuops.core.store import meta
from gpuops.core.store.blobs import encode_raw_chunk
from gpuops.core.store.blocks import decode_block
from gpuops.core.store.layout import StoreLayout


class Compactor:
    """Compacts one block of one window per `step()`. The block cursor only saves work: a block
    already compacted has no head rows left in the window, so restarting from 0 is harmless."""

    def __init__(self, layout: StoreLayout) -> None:
        self.layout = layout
        self._next_block = 0

    def step(self, conn: sqlite3.Connection, high_water_ms: int) -> bool:
        """Do one unit of work; False when there is nothing to compact."""
        window_ms = self.layout.raw_window_ms
        key = self.layout.levels[0].watermark_key
        start = meta.get_int(conn, key)
        end = start + window_ms
        if high_water_ms < end:
            return False
        first = conn.execute("SELECT min(ts_ms) FROM fleet_samples WHERE ts_ms >= ?", (start,)).fetchone()[0]
        if first is None or first >= end:
            # Nothing was polled in this window: skip to the window of the next poll.
            target = high_water_ms if first is None else first
            with meta.write_transaction(conn):
                meta.set_int(conn, key, target - target % window_ms)
            self._next_block = 0
            return True
        max_gpu_id = conn.execute("SELECT max(id) FROM gpus").fetchone()[0] or 0
        while self._next_block <= max_gpu_id // self.layout.block_size:
            block = self._next_block
            self._next_block += 1
            rows = conn.execute(
                "SELECT ts_ms, data FROM samples_head WHERE block = ? AND ts_ms < ? ORDER BY ts_ms", (block, end)
            ).fetchall()
            if rows:
                self._compact_block(conn, block, start, end, rows)
                return True
        with meta.write_transaction(conn):
            meta.set_int(conn, key, end)
        self._next_block = 0
        return True

    def _compact_block(self, conn: sqlite3.Connection, block: int, start: int, end: int, rows: list[tuple]) -> None:
        decoded = [decode_block(data) for _, data in rows]
        ids = np.concatenate([d[0] for d in decoded])
        codes = np.vstack([d[1] for d in decoded])
        ts = np.repeat(np.array([r[0] for r in rows], dtype=np.int64), [len(d[0]) for d in decoded])
        order = np.argsort(ids, kind="stable")  # by GPU, and by time within a GPU
        ids, codes, ts = ids[order], codes[order], ts[order]
        bounds = np.flatnonzero(np.diff(ids)) + 1
        chunks, seen = [], []
        for part in np.split(np.arange(len(ids)), bounds):
            gpu_id = int(ids[part[0]])
            chunks.append((gpu_id, start, len(part), encode_raw_chunk(ts[part], codes[part])))
            seen.append((int(ts[part[-1]]), gpu_id))
        with meta.write_transaction(conn):
            conn.executemany("INSERT INTO samples (gpu_id, t0_ms, n, data) VALUES (?, ?, ?, ?)", chunks)
            conn.execute(
                "INSERT INTO keyframes (block, ts_ms, data) "
                "SELECT block, ts_ms, data FROM samples_head WHERE block = ? AND ts_ms < ? AND keyframe = 1",
                (block, end),
            )
            conn.execute("DELETE FROM samples_head WHERE block = ? AND ts_ms < ?", (block, end))
            conn.executemany(
                "UPDATE gpus SET last_seen_ms = max(coalesce(last_seen_ms, 0), ?) WHERE id = ?", seen
            )
            conn.execute(
                "UPDATE nodes SET last_seen_ms = max(coalesce(last_seen_ms, 0), ?) "
                "WHERE id IN (SELECT node_id FROM gpus WHERE id >= ? AND id < ?)",
                (int(ts.max()), block * self.layout.block_size, (block + 1) * self.layout.block_size),
            )

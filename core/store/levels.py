"""Reading one GPU's (or the fleet's) history at one level, whatever state the data is in.

The newest data of a level may not be in its table yet: raw samples sit in the head until their
window is compacted, and a rollup window is only built once the level below has it complete. The
readers here therefore return, for level L, the stored rows before L's watermark plus the level
below rolled up on the fly after it - so queries and the rollup builder see one consistent series.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import numpy as np

from gpuops.core.store import meta
from gpuops.core.store.blobs import block_codes_to_frame, decode_raw_chunk, decode_rollup_chunk
from gpuops.core.store.blocks import decode_block
from gpuops.core.store.columns import STATS_OF_KIND, Kind, Stat
from gpuops.core.store.layout import StoreLayout
from gpuops.core.store.rollup import Frame, aggregate, concat_frames, empty_frame

RAW, MINUTE, HOUR = 0, 1, 2


def stat_columns(layout: StoreLayout, metrics: Sequence[str]) -> list[tuple[str, Stat]]:
    """The rollup statistics kept for these GPU metrics, e.g. power_w min/avg/max, energy_j last."""
    return [(m, stat) for m in metrics for stat in STATS_OF_KIND[layout.spec(m).kind]]


def _window_floor(ms: int, window_ms: int) -> int:
    return ms - ms % window_ms


def raw_chunks(
    conn: sqlite3.Connection, layout: StoreLayout, gpu_id: int, start_ms: int, end_ms: int, metrics: Sequence[str]
) -> Frame:
    rows = conn.execute(
        "SELECT data FROM samples WHERE gpu_id = ? AND t0_ms >= ? AND t0_ms < ? ORDER BY t0_ms",
        (gpu_id, _window_floor(start_ms, layout.raw_window_ms), end_ms),
    ).fetchall()
    frame = concat_frames([decode_raw_chunk(data, layout, metrics) for (data,) in rows], metrics, raw=True)
    return frame.between(start_ms, end_ms)


def head_rows(
    conn: sqlite3.Connection, layout: StoreLayout, gpu_id: int, start_ms: int, end_ms: int, metrics: Sequence[str]
) -> Frame:
    """This GPU's polls still in the head (not compacted yet)."""
    rows = conn.execute(
        "SELECT ts_ms, data FROM samples_head WHERE block = ? AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms",
        (gpu_id // layout.block_size, start_ms, end_ms),
    ).fetchall()
    positions = [i for i, spec in enumerate(layout.metrics) if spec.name in metrics]
    ts, codes = [], []
    for ts_ms, data in rows:
        ids, block_codes = decode_block(data, positions)
        i = int(np.searchsorted(ids, gpu_id))
        if i < len(ids) and ids[i] == gpu_id:
            ts.append(ts_ms)
            codes.append(block_codes[i])
    if not ts:
        return empty_frame(metrics, raw=True)
    # Re-spread the decoded subset into full-width rows so names map to layout positions.
    full = np.zeros((len(ts), len(layout.metrics)), dtype=np.int64)
    full[:, positions] = np.vstack(codes)
    return block_codes_to_frame(np.asarray(ts, dtype=np.int64), full, layout, metrics)


def _stored_rollups_of(
    conn: sqlite3.Connection,
    layout: StoreLayout,
    level: int,
    gpu_ids: Sequence[int],
    start_ms: int,
    end_ms: int,
    columns: Sequence[tuple[str, Stat]],
) -> dict[int, Frame]:
    """The stored rollup rows of each GPU between start and end: one query per 500 GPUs, not per GPU."""
    lvl = layout.levels[level]
    blobs: dict[int, list[bytes]] = {gpu_id: [] for gpu_id in gpu_ids}
    ids = sorted(blobs)
    for at in range(0, len(ids), 500):
        batch = ids[at : at + 500]
        rows = conn.execute(
            f"SELECT gpu_id, data FROM {lvl.table} WHERE gpu_id IN ({', '.join('?' * len(batch))}) AND t0_ms >= ? AND t0_ms < ? "
            "ORDER BY gpu_id, t0_ms",
            (*batch, _window_floor(start_ms, lvl.window_ms), end_ms),
        )
        for gpu_id, data in rows:
            blobs[gpu_id].append(data)
    return {
        gpu_id: concat_frames(
            [decode_rollup_chunk(data, layout, columns) for data in found], columns, raw=False
        ).between(start_ms, end_ms)
        for gpu_id, found in blobs.items()
    }


def gpu_frames(
    conn: sqlite3.Connection,
    layout: StoreLayout,
    level: int,
    gpu_ids: Sequence[int],
    start_ms: int,
    end_ms: int,
    metrics: Sequence[str],
) -> dict[int, Frame]:
    """gpu_frame of each of `gpu_ids` at a rollup level (MINUTE or HOUR), reading the stored
    rollups of all of them at once: what a report over a whole fleet needs."""
    lvl = layout.levels[level]
    columns = stat_columns(layout, metrics)
    start_ms = _window_floor(start_ms, lvl.bucket_ms)  # the bucket holding `start` is included
    watermark = meta.get_int(conn, lvl.watermark_key)
    stored = (
        _stored_rollups_of(conn, layout, level, gpu_ids, start_ms, min(end_ms, watermark), columns)
        if start_ms < watermark
        else {}
    )
    tail_start = max(start_ms, watermark)
    frames = {}
    for gpu_id in gpu_ids:
        parts = [stored[gpu_id]] if gpu_id in stored else []
        if tail_start < end_ms:
            below = gpu_frame(conn, layout, level - 1, gpu_id, tail_start, end_ms, metrics)
            parts.append(aggregate(below, columns, lvl.bucket_ms))
        frames[gpu_id] = concat_frames(parts, columns, raw=False)
    return frames


def gpu_frame(
    conn: sqlite3.Connection, layout: StoreLayout, level: int, gpu_id: int, start_ms: int, end_ms: int, metrics: Sequence[str]
) -> Frame:
    """GPU `gpu_id` between start and end at `level` (RAW, MINUTE or HOUR)."""
    if level == RAW:
        return concat_frames(
            [
                raw_chunks(conn, layout, gpu_id, start_ms, end_ms, metrics),
                head_rows(conn, layout, gpu_id, start_ms, end_ms, metrics),
            ],
            metrics,
            raw=True,
        )
    return gpu_frames(conn, layout, level, [gpu_id], start_ms, end_ms, metrics)[gpu_id]


def _fleet_rows(conn: sqlite3.Connection, table: str, names: Sequence[str], start_ms: int, end_ms: int) -> list[tuple]:
    return conn.execute(
        f"SELECT ts_ms, {', '.join(names)} FROM {table} WHERE ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms", (start_ms, end_ms)
    ).fetchall()


def _as_columns(rows: list[tuple], width: int) -> np.ndarray:
    return np.array(rows, dtype=np.float64).reshape(len(rows), width)


def fleet_frame(
    conn: sqlite3.Connection, layout: StoreLayout, level: int, start_ms: int, end_ms: int, metrics: Sequence[str]
) -> Frame:
    """Fleet figures (FLEET_METRICS names) between start and end at `level`."""
    lvl = layout.levels[level]
    if level == RAW:
        table = _as_columns(_fleet_rows(conn, lvl.fleet_table, metrics, start_ms, end_ms), len(metrics) + 1)
        ts = table[:, 0].astype(np.int64)
        return Frame(ts, np.ones(len(ts), np.int64), {m: table[:, i + 1] for i, m in enumerate(metrics)}, raw=True)
    columns = fleet_rollup_columns(metrics)
    start_ms = _window_floor(start_ms, lvl.bucket_ms)
    watermark = meta.get_int(conn, lvl.watermark_key)
    parts = []
    if start_ms < watermark:
        names = ["n", *(f"{m}_{stat.value}" for m, stat in columns)]
        table = _as_columns(_fleet_rows(conn, lvl.fleet_table, names, start_ms, min(end_ms, watermark)), len(names) + 1)
        counts = table[:, 1].astype(np.int64)
        parts.append(Frame(table[:, 0].astype(np.int64), counts, {c: table[:, i + 2] for i, c in enumerate(columns)}, raw=False))
    tail_start = max(start_ms, watermark)
    if tail_start < end_ms:
        below = fleet_frame(conn, layout, level - 1, tail_start, end_ms, metrics)
        parts.append(aggregate(below, columns, lvl.bucket_ms))
    return concat_frames(parts, columns, raw=False)


def fleet_rollup_columns(metrics: Sequence[str]) -> list[tuple[str, Stat]]:
    """Every fleet figure rolls up as a gauge."""
    return [(m, stat) for m in metrics for stat in STATS_OF_KIND[Kind.GAUGE]]

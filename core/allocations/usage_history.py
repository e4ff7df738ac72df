"""What the history knows about one GPU over a span, at the resolution accounting needs.

A month of 1,000 GPUs is 43 million minute buckets, too many to decode for a report. So whole
hours come from the 1-hour rollups, and only where an hour cannot be judged from its own min/max
(some minutes under the idle threshold and some over it), is cut by the span's ends, or touches a
lost/faulty interval are its minutes read from the 1-minute rollups (or, once those are pruned,
the hour is taken as it is). Both come through the store's level readers, which also
roll up on the fly what maintenance has not rolled up yet.

Lost and faulty intervals come from the store's events: `gpu_lost` until `gpu_recovered`, and a
critical XID for the hour the health model keeps it (core/health.py).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np

from core.health import Health, xid_severity
from core.store import meta
from core.store.columns import Stat
from core.store.layout import StoreLayout
from core.store.levels import HOUR, MINUTE, gpu_frame
from core.store.rollup import Frame

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
METRICS = ("util_gpu_pct", "energy_j", "power_w")
#: How long a critical XID marks its GPU faulty, as in HealthModel's default xid_window_s.
XID_FAULTY_MS = 3_600_000


@dataclass(frozen=True)
class Buckets:
    """Time-ordered, non-overlapping buckets of one GPU: [start_ms, end_ms), util avg/min/max
    (NaN = no reading), the energy counter's last value and the average power. An hour whose
    minutes cross the idle threshold carries its idle summary (`idle_head_ms` >= 0): idle time
    at its start and end, and the total of idle windows inside it; -1 elsewhere."""

    start_ms: np.ndarray
    end_ms: np.ndarray
    util_avg: np.ndarray
    util_min: np.ndarray
    util_max: np.ndarray
    energy_last_j: np.ndarray
    power_avg_w: np.ndarray
    idle_head_ms: np.ndarray
    idle_tail_ms: np.ndarray
    idle_inner_ms: np.ndarray

    def __len__(self) -> int:
        return len(self.start_ms)


def _columns(frame: Frame, bucket_ms: int) -> tuple[np.ndarray, ...]:
    c = frame.columns
    none = np.full(len(frame), -1, dtype=np.int64)
    return (
        frame.ts_ms,
        frame.ts_ms + bucket_ms,
        c[("util_gpu_pct", Stat.AVG)],
        c[("util_gpu_pct", Stat.MIN)],
        c[("util_gpu_pct", Stat.MAX)],
        c[("energy_j", Stat.LAST)],
        c[("power_w", Stat.AVG)],
        none,
        none,
        none,
    )


def _concat(parts: list[tuple[np.ndarray, ...]]) -> Buckets:
    if not parts:
        return Buckets(*(np.empty(0, np.int64),) * 2, *(np.empty(0),) * 5, *(np.empty(0, np.int64),) * 3)
    columns = [np.concatenate([p[i] for p in parts]) for i in range(10)]
    order = np.argsort(columns[0], kind="stable")
    return Buckets(*(col[order] for col in columns))


def idle_summary(minute_start_ms: np.ndarray, idle: np.ndarray, hour_ms: int, window_ms: int) -> tuple[int, int, int]:
    """(head, tail, inner) of one hour from its idle minutes: idle time from the hour's start,
    idle time up to its end, and the total of idle runs of at least `window_ms` touching neither.
    A minute with no bucket is not idle (a gap ends a window, as it does between minute buckets)."""
    slots = np.zeros(HOUR_MS // MINUTE_MS, dtype=bool)
    slots[((minute_start_ms - hour_ms) // MINUTE_MS)[idle]] = True
    if slots.all():
        return HOUR_MS, 0, 0
    head = int(np.argmin(slots))
    tail = int(np.argmin(slots[::-1]))
    inner = slots[head : len(slots) - tail]
    edges = np.flatnonzero(np.diff(np.concatenate(([0], inner.astype(np.int8), [0]))))
    lengths = (edges[1::2] - edges[::2]) * MINUTE_MS
    return head * MINUTE_MS, tail * MINUTE_MS, int(lengths[lengths >= window_ms].sum())


class UsageHistory:
    """Reads through one connection to the history (the allocation repository's), and keeps the
    idle summaries of final hours in `idle_hours`."""

    def __init__(self, conn: sqlite3.Connection, *, idle_threshold_pct: float, idle_window_ms: int) -> None:
        self.conn = conn
        self.idle_threshold_pct = idle_threshold_pct
        self.idle_window_ms = idle_window_ms
        row = conn.execute("SELECT value FROM meta WHERE key = 'layout'").fetchone()
        self.layout = StoreLayout.from_json(row[0]).with_new_metrics()
        self.gpu_ids: dict[str, int] = dict(conn.execute("SELECT uuid, id FROM gpus"))
        self.minutes_final_ms = meta.get_int(conn, self.layout.levels[MINUTE].watermark_key)

    def buckets(
        self, uuid: str, start_ms: int, end_ms: int, unavailable: list[tuple[int, int]] = (), cuts: list[int] = ()
    ) -> Buckets:
        """Buckets covering [start_ms, end_ms) (edge buckets may reach past it), plus the hour
        (or the minutes) just before start_ms when there are some, so the first energy delta is known.

        Whole hours come from the hourly rollup when their own min/max (or a stored idle summary)
        says all that accounting needs. The minutes are read for the others: hours cut by the ends
        or by a `cuts` instant (allocation boundaries), hours touching an `unavailable` interval (a
        rollup's average skips the minutes a lost GPU did not answer, which must count as unused),
        and hours crossing the idle threshold with no summary yet. A GPU the history never saw
        has no buckets."""
        gpu_id = self.gpu_ids.get(uuid)
        if gpu_id is None or end_ms <= start_ms:
            return _concat([])
        # From the hour before: its energy counter is the baseline of the first delta.
        first_hour = start_ms - start_ms % HOUR_MS - HOUR_MS
        h = list(_columns(gpu_frame(self.conn, self.layout, HOUR, gpu_id, first_hour, end_ms, METRICS), HOUR_MS))
        baseline = h[1] <= start_ms
        clean = (h[0] >= start_ms) & (h[1] <= end_ms) | baseline
        for lo, hi in unavailable:
            clean &= (h[1] <= lo) | (h[0] >= hi)
        for cut in cuts:
            clean &= ~((h[0] < cut) & (cut < h[1]))
        judged = (h[4] < self.idle_threshold_pct) | (h[3] >= self.idle_threshold_pct) | np.isnan(h[2])
        mixed = clean & ~judged
        if mixed.any():
            self._attach_summaries(gpu_id, h, mixed)
        keep = clean & (judged | (h[7] >= 0) | baseline)
        parts = [tuple(col[keep] for col in h)]
        # Minutes of everything else (an edge hour's include those before start).
        need = _merge([(int(s), int(e)) for s, e in zip(h[0][~keep], h[1][~keep])])
        starts = np.array([a for a, _ in need], dtype=np.int64)
        ends = np.array([b for _, b in need], dtype=np.int64)
        # One read per run of whole 1-minute chunk windows: each chunk is decoded once.
        window = self.layout.levels[MINUTE].window_ms
        for lo, hi in _merge([(lo - lo % window, hi - hi % window + window) for lo, hi in need]):
            minutes = _columns(gpu_frame(self.conn, self.layout, MINUTE, gpu_id, lo, min(hi, end_ms), METRICS), MINUTE_MS)
            at = np.searchsorted(starts, minutes[0], side="right") - 1
            wanted = (at >= 0) & (minutes[0] < ends[np.maximum(at, 0)])
            parts.append(tuple(col[wanted] for col in minutes))
        minute_ts = np.concatenate([p[0] for p in parts[1:]]) if len(parts) > 1 else np.empty(0, np.int64)
        order = np.argsort(minute_ts, kind="stable")
        minute_ts = minute_ts[order]
        refined = np.flatnonzero(~keep)
        lo_at = np.searchsorted(minute_ts, h[0][refined])
        hi_at = np.searchsorted(minute_ts, h[1][refined])
        if len(parts) > 1:
            minute_util = np.concatenate([p[2] for p in parts[1:]])[order]
            self._store_summaries(gpu_id, h, refined[mixed[refined]], minute_ts, minute_util)
        # Hours whose minutes were pruned (1-minute rollups are kept for less time than hourly
        # ones) are taken from the hourly rollup after all.
        fallback = refined[hi_at <= lo_at]
        parts.append(tuple(col[fallback] for col in h))
        return _concat(parts)

    def _attach_summaries(self, gpu_id: int, h: list[np.ndarray], mixed: np.ndarray) -> None:
        rows = self.conn.execute(
            "SELECT hour_ms, head_ms, tail_ms, inner_ms FROM idle_hours WHERE gpu_id = ? AND hour_ms >= ? AND hour_ms <= ?",
            (gpu_id, int(h[0][mixed].min()), int(h[0][mixed].max())),
        ).fetchall()
        if not rows:
            return
        known = np.array(rows, dtype=np.int64)
        at = np.searchsorted(known[:, 0], h[0])
        at_ok = np.minimum(at, len(known) - 1)
        found = mixed & (at < len(known)) & (known[at_ok, 0] == h[0])
        for column, source in ((7, 1), (8, 2), (9, 3)):
            h[column] = np.where(found, known[at_ok, source], h[column])

    def _store_summaries(self, gpu_id: int, h: list[np.ndarray], hours: np.ndarray, minute_ts: np.ndarray, minute_util: np.ndarray) -> None:
        """Remember the idle summary of mixed hours whose minute rollups are final."""
        rows = []
        for i in hours:
            hour_ms = int(h[0][i])
            if h[1][i] > self.minutes_final_ms:
                continue
            lo, hi = np.searchsorted(minute_ts, [hour_ms, hour_ms + HOUR_MS])
            if hi <= lo:
                continue
            util = minute_util[lo:hi]
            idle = ~np.isnan(util) & (util < self.idle_threshold_pct)
            rows.append((gpu_id, hour_ms, *idle_summary(minute_ts[lo:hi], idle, hour_ms, self.idle_window_ms)))
        if rows:
            with meta.write_transaction(self.conn):
                self.conn.executemany(
                    "INSERT OR REPLACE INTO idle_hours (gpu_id, hour_ms, head_ms, tail_ms, inner_ms) VALUES (?, ?, ?, ?, ?)", rows
                )

    def unavailable_intervals(self, start_ms: int, end_ms: int) -> dict[str, list[tuple[int, int]]]:
        """Per GPU UUID, merged [from, to) intervals in which it was lost or faulty."""
        rows = self.conn.execute(
            "SELECT gpus.uuid, events.ts_ms, events.kind, events.code FROM events JOIN gpus ON gpus.id = events.gpu_id "
            "WHERE events.kind IN ('gpu_lost', 'gpu_recovered', 'xid') AND events.ts_ms < ? AND events.ts_ms >= ? "
            "ORDER BY events.ts_ms, events.id",
            (end_ms, start_ms - 7 * 86_400_000),
        ).fetchall()
        spans: dict[str, list[tuple[int, int]]] = {}
        lost_since: dict[str, int] = {}
        for uuid, ts, kind, code in rows:
            if kind == "gpu_lost":
                lost_since.setdefault(uuid, ts)
            elif kind == "gpu_recovered":
                if uuid in lost_since:
                    spans.setdefault(uuid, []).append((lost_since.pop(uuid), ts))
            elif code is not None and xid_severity(int(code)) is Health.CRITICAL:
                spans.setdefault(uuid, []).append((ts, ts + XID_FAULTY_MS))
        for uuid, since in lost_since.items():
            spans.setdefault(uuid, []).append((since, end_ms))
        return {uuid: [(max(lo, start_ms), min(hi, end_ms)) for lo, hi in _merge(items) if hi > start_ms and lo < end_ms] for uuid, items in spans.items()}


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted union of [lo, hi) intervals; touching ones join."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(i for i in intervals if i[1] > i[0]):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged

"""What the history knows about one GPU over a span, at the resolution accounting needs.

A month of 1,000 GPUs is 43 million minute buckets, too many to decode for a report. So whole
hours come from the 1-hour rollups, and only where an hour cannot be judged from its own min/max
(some minutes under the idle threshold and some over it), is cut by the span's ends, touches a
lost/faulty interval or may hold faulty readings are its minutes read from the 1-minute rollups
(or, once those are pruned, the hour is taken as it is). Both come through the store's level
readers, which also roll up on the fly what maintenance has not rolled up yet.

Lost and faulty intervals come from the store's events: `gpu_lost` until `gpu_recovered`, and a
critical XID for the hour the health model keeps it (core/health.py).

Faulty readings come from the same rollups, as core/health.py judges a live GPU: uncorrectable
ECC errors or a row remap failure (counters: the bucket's LAST > 0, so the GPU stays faulty until
the counter reads 0 again after a reset/RMA), or the GPU temperature at or over its inventory
slowdown threshold (the bucket's temp_c MAX). A bucket with a faulty reading counts faulty for
its whole length: a minute by the minute. An hour that is faulty, or follows a faulty one (the
episode may end inside it), is read by the minute; only where those minutes are pruned does the
whole hour count. An episode that starts and ends inside one hour whose neighbours read clean is
invisible to the hourly counters' LAST, and is not counted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gpuops.core.health import Health, xid_severity
from gpuops.core.store import meta
from gpuops.core.store.columns import Stat
from gpuops.core.store.layout import StoreLayout
from gpuops.core.store.levels import HOUR, MINUTE, gpu_frame, gpu_frames
from gpuops.core.store.rollup import Frame

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
METRICS = ("util_gpu_pct", "energy_j", "power_w", "ecc_uncorrected_volatile", "remapped_rows_failure", "temp_c")
#: A minute is idle under this utilization; idle time counts in windows of at least IDLE_WINDOW_MS.
IDLE_THRESHOLD_PCT = 5.0
IDLE_WINDOW_MS = 30 * 60_000
#: How long a critical XID marks its GPU faulty, as in HealthModel's default xid_window_s.
XID_FAULTY_MS = 3_600_000


@dataclass(frozen=True)
class Buckets:
    """Time-ordered, non-overlapping buckets of one GPU: [start_ms, end_ms), util avg/min/max
    (NaN = no reading), the energy counter's last value and the average power. An hour whose
    minutes cross the idle threshold carries its idle summary (`idle_head_ms` >= 0): idle time
    at its start and end, and the total of idle windows inside it; -1 elsewhere. `faulty`: the
    bucket holds a faulty reading (module docstring); none are when it is not given."""

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
    faulty: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.faulty is None:
            object.__setattr__(self, "faulty", np.zeros(len(self.start_ms), dtype=bool))

    def __len__(self) -> int:
        return len(self.start_ms)


def _columns(frame: Frame, bucket_ms: int, slowdown_c: float) -> tuple[np.ndarray, ...]:
    c = frame.columns
    none = np.full(len(frame), -1, dtype=np.int64)
    faulty = (
        (c[("ecc_uncorrected_volatile", Stat.LAST)] > 0)
        | (c[("remapped_rows_failure", Stat.LAST)] > 0)
        | (c[("temp_c", Stat.MAX)] >= slowdown_c)
    )
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
        faulty,
    )


def _concat(parts: list[tuple[np.ndarray, ...]]) -> Buckets:
    if not parts:
        return Buckets(*(np.empty(0, np.int64),) * 2, *(np.empty(0),) * 5, *(np.empty(0, np.int64),) * 3, np.empty(0, bool))
    columns = [np.concatenate([p[i] for p in parts]) for i in range(11)]
    order = np.argsort(columns[0], kind="stable")
    return Buckets(*(col[order] for col in columns))


def idle_summary(minute_start_ms: np.ndarray, idle: np.ndarray, hour_ms: int, window_ms: int) -> tuple[int, int, int]:
    """(head, tail, inner) of one hour from its idle minutes: idle time from the hour's start,
    idle time up to its end, and the total of idle runs of at least `window_ms` touching neither.
    A minute with no bucket is not idle (a gap ends a window, as it does between minute buckets)."""
    head, tail, inner = idle_summaries(minute_start_ms, idle, np.array([hour_ms]), window_ms)[0].tolist()
    return int(head), int(tail), int(inner)


def idle_summaries(minute_start_ms: np.ndarray, idle: np.ndarray, hours_ms: np.ndarray, window_ms: int) -> np.ndarray:
    """idle_summary of each hour in `hours_ms` (n x 3: head, tail, inner), all hours at once."""
    hour_of = np.searchsorted(hours_ms, minute_start_ms, side="right") - 1
    slot = (minute_start_ms - hours_ms[np.maximum(hour_of, 0)]) // MINUTE_MS
    inside = idle & (hour_of >= 0) & (slot < HOUR_MS // MINUTE_MS)
    slots = np.zeros((len(hours_ms), HOUR_MS // MINUTE_MS), dtype=bool)
    slots[hour_of[inside], slot[inside]] = True
    whole = slots.all(axis=1)
    head = np.where(whole, HOUR_MS // MINUTE_MS, np.argmin(slots, axis=1))
    tail = np.where(whole, 0, np.argmin(slots[:, ::-1], axis=1))
    # Runs of idle minutes: edges of each hour's row padded with a busy minute on both sides.
    padded = np.zeros((len(hours_ms), slots.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = slots
    rise_hour, rise_at = np.nonzero(np.diff(padded, axis=1) == 1)
    _, fall_at = np.nonzero(np.diff(padded, axis=1) == -1)
    length_ms = (fall_at - rise_at) * MINUTE_MS
    inner = (rise_at > 0) & (fall_at < slots.shape[1]) & (length_ms >= window_ms)
    inner_ms = np.bincount(rise_hour[inner], weights=length_ms[inner], minlength=len(hours_ms)).astype(np.int64)
    return np.column_stack((head * MINUTE_MS, tail * MINUTE_MS, inner_ms)).astype(np.int64)


def mixed_hours(frame: Frame, threshold_pct: float) -> np.ndarray:
    """Start of each hour of a 1-minute frame whose minutes cross `threshold_pct` (its hourly min
    under it, its max not), the hours whose idle time the hourly rollup cannot tell."""
    if not len(frame):
        return np.empty(0, np.int64)
    hour = frame.ts_ms - frame.ts_ms % HOUR_MS
    starts = np.flatnonzero(np.concatenate(([True], hour[1:] != hour[:-1])))
    low = np.fmin.reduceat(frame.columns[("util_gpu_pct", Stat.MIN)], starts)
    high = np.fmax.reduceat(frame.columns[("util_gpu_pct", Stat.MAX)], starts)
    measured = np.logical_or.reduceat(~np.isnan(frame.columns[("util_gpu_pct", Stat.AVG)]), starts)
    return hour[starts][(low < threshold_pct) & (high >= threshold_pct) & measured]


def summary_rows(
    gpu_id: int, hours_ms: np.ndarray, minute_ts: np.ndarray, minute_util: np.ndarray, threshold_pct: float, window_ms: int
) -> list[tuple]:
    """idle_hours rows of these hours of one GPU, from its minute averages."""
    if not len(hours_ms):
        return []
    idle = ~np.isnan(minute_util) & (minute_util < threshold_pct)
    found = idle_summaries(minute_ts, idle, hours_ms, window_ms)
    return [
        (gpu_id, hour, head, tail, inner) for hour, (head, tail, inner) in zip(hours_ms.tolist(), found.tolist(), strict=True)
    ]


def keep_idle_summaries(conn: sqlite3.Connection, layout: StoreLayout, level: int, frames: dict[int, Frame]) -> None:
    """Rollup listener (core/store/retention.py): store the idle summaries of the hours of new
    1-minute rollups as they are made, so that reports never decode minutes of finished hours."""
    if level != MINUTE:
        return
    rows = []
    for gpu_id, frame in frames.items():
        hours = mixed_hours(frame, IDLE_THRESHOLD_PCT)
        rows += summary_rows(
            gpu_id, hours, frame.ts_ms, frame.columns[("util_gpu_pct", Stat.AVG)], IDLE_THRESHOLD_PCT, IDLE_WINDOW_MS
        )
    conn.executemany(
        "INSERT OR REPLACE INTO idle_hours (gpu_id, hour_ms, head_ms, tail_ms, inner_ms) VALUES (?, ?, ?, ?, ?)", rows
    )


@dataclass(frozen=True)
class Request:
    """What one GPU's buckets are wanted for (see UsageHistory.buckets)."""

    start_ms: int
    end_ms: int
    unavailable: tuple[tuple[int, int], ...] = ()
    cuts: tuple[int, ...] = ()


class UsageHistory:
    """Reads through one connection to the history (the allocation repository's), and keeps the
    idle summaries of final hours in `idle_hours` (maintenance stores them as it rolls up; hours
    rolled up without them get them here, the first time a report needs them)."""

    def __init__(self, conn: sqlite3.Connection, *, idle_threshold_pct: float, idle_window_ms: int) -> None:
        self.conn = conn
        self.idle_threshold_pct = idle_threshold_pct
        self.idle_window_ms = idle_window_ms
        row = conn.execute("SELECT value FROM meta WHERE key = 'layout'").fetchone()
        self.layout = StoreLayout.from_json(row[0]).with_new_metrics()
        self.gpu_ids: dict[str, int] = dict(conn.execute("SELECT uuid, id FROM gpus"))
        # NaN where the inventory has no threshold: no temperature is then at it.
        self.slowdown_c: dict[int, float] = {
            gpu_id: np.nan if limit is None else float(limit)
            for gpu_id, limit in conn.execute("SELECT id, slowdown_temp_c FROM gpus")
        }
        self.minutes_final_ms = meta.get_int(conn, self.layout.levels[MINUTE].watermark_key)

    def buckets(
        self, uuid: str, start_ms: int, end_ms: int, unavailable: Sequence[tuple[int, int]] = (), cuts: Sequence[int] = ()
    ) -> Buckets:
        """Buckets covering [start_ms, end_ms) (edge buckets may reach past it), plus the hour
        (or the minutes) just before start_ms when there are some, so the first energy delta is known.

        Whole hours come from the hourly rollup when their own min/max (or a stored idle summary)
        says all that accounting needs. The minutes are read for the others: hours cut by the ends
        or by a `cuts` instant (allocation boundaries), hours touching an `unavailable` interval (a
        rollup's average skips the minutes a lost GPU did not answer, which must count as unused),
        hours that are faulty or follow a faulty one, and hours crossing the idle threshold with
        no summary yet. A GPU the history never saw
        has no buckets."""
        return self.buckets_of({uuid: Request(start_ms, end_ms, tuple(unavailable), tuple(cuts))})[uuid]

    def buckets_of(self, requests: dict[str, Request]) -> dict[str, Buckets]:
        """`buckets` of many GPUs, reading the hourly rollups and idle summaries of GPUs with the
        same span together (a fleet report reads the whole fleet in a few queries)."""
        out = {uuid: _concat([]) for uuid, r in requests.items() if self.gpu_ids.get(uuid) is None or r.end_ms <= r.start_ms}
        spans: dict[tuple[int, int], list[str]] = {}
        for uuid, r in requests.items():
            if uuid not in out:
                # From the hour before: its energy counter is the baseline of the first delta.
                spans.setdefault((r.start_ms - r.start_ms % HOUR_MS - HOUR_MS, r.end_ms), []).append(uuid)
        for (first_hour, end_ms), uuids in spans.items():
            ids = [self.gpu_ids[uuid] for uuid in uuids]
            frames = gpu_frames(self.conn, self.layout, HOUR, ids, first_hour, end_ms, METRICS)
            summaries = self._summaries(ids, first_hour, end_ms)
            for uuid, gpu_id in zip(uuids, ids, strict=True):
                hours = list(_columns(frames[gpu_id], HOUR_MS, self.slowdown_c[gpu_id]))
                out[uuid] = self._refine(gpu_id, hours, requests[uuid], summaries.get(gpu_id))
        return out

    def _refine(self, gpu_id: int, h: list[np.ndarray], request: Request, summaries: np.ndarray | None) -> Buckets:
        """One GPU's buckets from its hours `h`: minutes where the hours do not say enough."""
        start_ms, end_ms = request.start_ms, request.end_ms
        baseline = h[1] <= start_ms
        clean = (h[0] >= start_ms) & (h[1] <= end_ms) | baseline
        for lo, hi in request.unavailable:
            clean &= (h[1] <= lo) | (h[0] >= hi)
        for cut in request.cuts:
            clean &= ~((h[0] < cut) & (cut < h[1]))
        clean &= baseline | ~(h[10] | np.concatenate(([False], h[10][:-1])))
        judged = (h[4] < self.idle_threshold_pct) | (h[3] >= self.idle_threshold_pct) | np.isnan(h[2])
        mixed = clean & ~judged
        if mixed.any() and summaries is not None:
            _attach(h, mixed, summaries)
        keep = clean & (judged | (h[7] >= 0) | baseline)
        parts = [tuple(col[keep] for col in h)]
        if keep.all():
            return _concat(parts)
        # Minutes of everything else (an edge hour's include those before start).
        need = _merge([(int(s), int(e)) for s, e in zip(h[0][~keep], h[1][~keep], strict=True)])
        starts = np.array([a for a, _ in need], dtype=np.int64)
        ends = np.array([b for _, b in need], dtype=np.int64)
        # One read per run of whole 1-minute chunk windows: each chunk is decoded once.
        window = self.layout.levels[MINUTE].window_ms
        for lo, hi in _merge([(lo - lo % window, hi - hi % window + window) for lo, hi in need]):
            minutes = _columns(
                gpu_frame(self.conn, self.layout, MINUTE, gpu_id, lo, min(hi, end_ms), METRICS),
                MINUTE_MS,
                self.slowdown_c[gpu_id],
            )
            at = np.searchsorted(starts, minutes[0], side="right") - 1
            wanted = (at >= 0) & (minutes[0] < ends[np.maximum(at, 0)])
            parts.append(tuple(col[wanted] for col in minutes))
        minute_ts = np.concatenate([p[0] for p in parts[1:]])
        order = np.argsort(minute_ts, kind="stable")
        minute_ts = minute_ts[order]
        refined = np.flatnonzero(~keep)
        lo_at = np.searchsorted(minute_ts, h[0][refined])
        hi_at = np.searchsorted(minute_ts, h[1][refined])
        minute_util = np.concatenate([p[2] for p in parts[1:]])[order]
        self._store_summaries(gpu_id, h, refined[mixed[refined]], minute_ts, minute_util)
        # Hours whose minutes were pruned (1-minute rollups are kept for less time than hourly
        # ones) are taken from the hourly rollup after all.
        fallback = refined[hi_at <= lo_at]
        parts.append(tuple(col[fallback] for col in h))
        return _concat(parts)

    def _summaries(self, gpu_ids: list[int], first_hour: int, end_ms: int) -> dict[int, np.ndarray]:
        """Stored idle summaries of these GPUs' hours in the span: per GPU, rows of hour_ms, head_ms,
        tail_ms, inner_ms in time order."""
        rows = self.conn.execute(
            "SELECT gpu_id, hour_ms, head_ms, tail_ms, inner_ms FROM idle_hours WHERE hour_ms >= ? AND hour_ms < ? "
            "ORDER BY gpu_id, hour_ms",
            (first_hour, end_ms),
        ).fetchall()
        if not rows:
            return {}
        table = np.array(rows, dtype=np.int64)
        wanted = set(gpu_ids)
        cuts = np.flatnonzero(np.diff(table[:, 0])) + 1
        return {int(part[0, 0]): part[:, 1:] for part in np.split(table, cuts) if int(part[0, 0]) in wanted}

    def _store_summaries(
        self, gpu_id: int, h: list[np.ndarray], hours: np.ndarray, minute_ts: np.ndarray, minute_util: np.ndarray
    ) -> None:
        """Remember the idle summary of mixed hours whose minute rollups are final."""
        final = hours[h[1][hours] <= self.minutes_final_ms]
        present = final[np.searchsorted(minute_ts, h[1][final]) > np.searchsorted(minute_ts, h[0][final])]
        rows = summary_rows(gpu_id, h[0][present], minute_ts, minute_util, self.idle_threshold_pct, self.idle_window_ms)
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
        return {
            uuid: [(max(lo, start_ms), min(hi, end_ms)) for lo, hi in _merge(items) if hi > start_ms and lo < end_ms]
            for uuid, items in spans.items()
        }


def unavailable_spans(lost_or_faulty: list[tuple[int, int]], b: Buckets) -> list[tuple[int, int]]:
    """Merged [from, to) intervals of one GPU that are lost/faulty by its events or faulty by its
    readings (`b.faulty`): time in both counts once."""
    return _merge(list(lost_or_faulty) + list(zip(b.start_ms[b.faulty].tolist(), b.end_ms[b.faulty].tolist(), strict=True)))


def _attach(h: list[np.ndarray], mixed: np.ndarray, known: np.ndarray) -> None:
    """Give the `mixed` hours of `h` their stored idle summaries (`known`: hour, head, tail, inner)."""
    at = np.searchsorted(known[:, 0], h[0])
    at_ok = np.minimum(at, len(known) - 1)
    found = mixed & (at < len(known)) & (known[at_ok, 0] == h[0])
    for column, source in ((7, 1), (8, 2), (9, 3)):
        h[column] = np.where(found, known[at_ok, source], h[column])


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted union of [lo, hi) intervals; touching ones join."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(i for i in intervals if i[1] > i[0]):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged

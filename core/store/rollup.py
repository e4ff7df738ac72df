"""Bucketing a time series into coarser buckets: the one piece of arithmetic behind the 1-minute
and 1-hour rollups, the fleet rollups, the rollups computed on the fly for the newest (not yet
rolled up) data, and the min/max-preserving downsampling of query results."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from gpuops.core.store.columns import Stat

Column = tuple[str, Stat]


@dataclass(frozen=True)
class Frame:
    """A time-ordered table of one GPU (or the fleet) at one resolution.

    Raw frames (`raw=True`) hold one value per metric per sample, keyed by metric name; rollup
    frames hold bucket statistics keyed by (metric, stat). `count` is samples per row (1 when raw).
    """

    ts_ms: np.ndarray
    count: np.ndarray
    columns: dict
    raw: bool

    def __len__(self) -> int:
        return len(self.ts_ms)

    def values(self, metric: str, stat: Stat) -> np.ndarray:
        """The input for `stat` of `metric`: every stat of a raw sample is its value."""
        return self.columns[metric] if self.raw else self.columns[(metric, stat)]

    def between(self, start_ms: int, end_ms: int) -> Frame:
        """Rows with start_ms <= ts < end_ms."""
        lo, hi = np.searchsorted(self.ts_ms, [start_ms, end_ms])
        return Frame(self.ts_ms[lo:hi], self.count[lo:hi], {k: v[lo:hi] for k, v in self.columns.items()}, self.raw)


def empty_frame(columns: Iterable, raw: bool) -> Frame:
    return Frame(np.empty(0, np.int64), np.empty(0, np.int64), {c: np.empty(0) for c in columns}, raw)


def concat_frames(frames: list[Frame], columns: Iterable, raw: bool) -> Frame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_frame(columns, raw)
    if len(frames) == 1:
        return frames[0]
    return Frame(
        np.concatenate([f.ts_ms for f in frames]),
        np.concatenate([f.count for f in frames]),
        {c: np.concatenate([f.columns[c] for f in frames]) for c in frames[0].columns},
        raw,
    )


def _last_valid(values: np.ndarray, valid: np.ndarray, starts: np.ndarray) -> np.ndarray:
    position = np.where(valid, np.arange(len(values)), -1)
    last = np.maximum.reduceat(position, starts)
    out = values[np.maximum(last, 0)].astype(np.float64)
    out[last < 0] = np.nan
    return out


def aggregate(frame: Frame, columns: Iterable[Column], bucket_ms: int, origin_ms: int = 0) -> Frame:
    """Roll `frame` up into buckets of `bucket_ms` aligned on `origin_ms`: min of mins, max of
    maxes, averages weighted by sample count, the last valid value, the OR of bitmasks. NaN is
    ignored, and a bucket with no valid value of a column gets NaN. Empty buckets are left out.
    The sample count per bucket is `count`; a ("n", ...) entry in `columns` is skipped."""
    columns = tuple(columns)
    if not len(frame):
        return empty_frame(columns, raw=False)
    bucket = (frame.ts_ms - origin_ms) // bucket_ms
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    out: dict[Column, np.ndarray] = {}
    for metric, stat in columns:
        if metric == "n":
            continue
        values = frame.values(metric, stat)
        valid = ~np.isnan(values)
        if stat is Stat.MIN:
            out[(metric, stat)] = np.fmin.reduceat(values, starts)
        elif stat is Stat.MAX:
            out[(metric, stat)] = np.fmax.reduceat(values, starts)
        elif stat is Stat.AVG:
            weight = np.where(valid, frame.count, 0)
            total = np.add.reduceat(np.where(valid, values, 0.0) * weight, starts)
            weights = np.add.reduceat(weight, starts)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[(metric, stat)] = np.where(weights > 0, total / np.maximum(weights, 1), np.nan)
        elif stat is Stat.LAST:
            out[(metric, stat)] = _last_valid(values, valid, starts)
        else:
            bits = np.bitwise_or.reduceat(np.where(valid, values, 0).astype(np.int64), starts).astype(np.float64)
            bits[~np.logical_or.reduceat(valid, starts)] = np.nan
            out[(metric, stat)] = bits
    return Frame(origin_ms + bucket[starts] * bucket_ms, np.add.reduceat(frame.count, starts), out, raw=False)

"""Reading the history: per-GPU series, fleet series, the whole fleet at a past instant, events.

A `HistoryReader` has its own connection; in WAL mode the writer never blocks it and it never
blocks the writer. Every call reads one consistent snapshot. Methods may be called from any one
thread at a time (calls are serialized by a lock); keep them off the GUI thread.

Resolution is picked per call: the coarsest level (raw, 1 m, 1 h) that still gives about
`max_points` points over the range and holds data back to its start; results are then cut down
to at most `max_points` buckets keeping each bucket's min and max, so a one-second spike stays
visible in a month-long plot.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gpuops.core.store import meta
from gpuops.core.store.blocks import decode_block
from gpuops.core.store.columns import STATS_OF_KIND, Kind, Stat, dequantize
from gpuops.core.store.connection import open_database, open_read_only, snapshot_outdated
from gpuops.core.store.errors import StoreError
from gpuops.core.store.fleet import FLEET_METRICS
from gpuops.core.store.inventory import SELECT_INVENTORY, inventory_from_row
from gpuops.core.store.levels import fleet_frame, fleet_rollup_columns, gpu_frame, stat_columns
from gpuops.core.store.rollup import Frame, aggregate
from gpuops.core.telemetry import SAMPLE_METRICS, FleetSample, GpuInventory, GpuState

RESOLUTIONS: tuple[str, ...] = ("raw", "1m", "1h")
DEFAULT_MAX_POINTS = 2000
#: How far before the asked instant a GPU's last values still count as its state.
DEFAULT_STALENESS_S = 120.0


@dataclass(frozen=True)
class Series:
    """One metric over time: per point its min, avg and max (equal for raw points); counters
    carry their last value and bitmasks the OR of the bucket in all three. ts in epoch seconds,
    the start of each point's bucket (the sample time for raw points)."""

    ts: np.ndarray
    min: np.ndarray
    avg: np.ndarray
    max: np.ndarray
    resolution: str

    def __len__(self) -> int:
        return len(self.ts)


@dataclass(frozen=True)
class HistoryTable:
    """Rows of one GPU at one resolution: raw columns are named like the metrics; rollup columns
    are `<metric>_min/_avg/_max` for gauges, `<metric>_last` for counters, `<metric>_or` for bitmasks."""

    ts: np.ndarray
    columns: dict[str, np.ndarray]


@dataclass(frozen=True)
class GpuRecord:
    uuid: str
    node: str
    name: str
    first_seen: float | None
    last_seen: float | None


@dataclass(frozen=True)
class HistoryEvent:
    ts: float
    kind: str  # xid, gpu_lost, gpu_recovered, source_error, source_error_cleared
    uuid: str | None
    code: int | None
    detail: str | None


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _rollup_coverage(first_window_ms: int | None, finer_since_ms: int | None, window_ms: int) -> int | None:
    """Since when a rollup level has data. Its rows are keyed by storage windows (hours long), so
    its first window starts up to a window before the first poll it holds: while the finer level
    still starts inside that window the two hold the same data, and the rollup reaches no further;
    only a window wholly before the finer level's data (pruned there since) reaches back more."""
    if first_window_ms is None or finer_since_ms is None:
        return finer_since_ms if first_window_ms is None else first_window_ms
    return first_window_ms if first_window_ms + window_ms <= finer_since_ms else finer_since_ms


def choose_level(span_ms: int, max_points: int, start_ms: int, coverage: Sequence[int | None], bucket_ms: Sequence[int]) -> int:
    """The level to read: the coarsest whose buckets are at most twice the width that `max_points`
    allows and whose data reaches back to `start_ms`; if none reaches back that far, the finest
    that does; if none does, the one reaching back furthest."""
    desired = span_ms / max(max_points, 1)
    levels = range(len(bucket_ms))
    fine_enough = [lv for lv in levels if bucket_ms[lv] <= 2 * desired]
    reaching = [lv for lv in levels if (since := coverage[lv]) is not None and since <= start_ms]
    both = [lv for lv in fine_enough if lv in reaching]
    if both:
        return max(both)
    if reaching:
        return min(reaching)
    known = [lv for lv in levels if coverage[lv] is not None]
    if not known:
        return max(fine_enough)
    earliest = min(since for lv in known if (since := coverage[lv]) is not None)
    tied = [lv for lv in known if coverage[lv] == earliest]
    preferred = [lv for lv in tied if lv in fine_enough]
    return max(preferred) if preferred else min(tied)


def _stat_triple(frame: Frame, metric: str, kind: Kind) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if frame.raw:
        values = frame.columns[metric]
        return values, values, values
    if kind is Kind.GAUGE:
        return frame.columns[(metric, Stat.MIN)], frame.columns[(metric, Stat.AVG)], frame.columns[(metric, Stat.MAX)]
    only = frame.columns[(metric, STATS_OF_KIND[kind][0])]
    return only, only, only


def _downsample(frame: Frame, columns: Sequence[tuple[str, Stat]], end_ms: int, max_points: int) -> Frame:
    if len(frame) <= max_points:
        return frame
    origin = int(frame.ts_ms[0])
    bucket = math.ceil((end_ms - origin) / max_points)
    return aggregate(frame, columns, bucket, origin_ms=origin)


class HistoryReader:
    """Read access to a history database; raises NoHistory if there is none at `path`.

    `read_only` opens it with `open_read_only`: nothing is created, written or migrated. Its
    connection is an immutable snapshot while nothing writes; once a writer has started (a -wal
    appeared) the next call reopens it, so later polls are seen."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self._read_only = read_only
        self._conn: sqlite3.Connection
        self._conn, self.layout = open_read_only(self.path) if read_only else open_database(self.path, create=False)
        self._lock = threading.Lock()
        self._inventory: dict[int, GpuInventory] = {}
        self._gpu_ids: dict[str, int] = {}

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """One consistent read, under the lock, on a connection that sees the latest commits."""
        with self._lock:
            if snapshot_outdated(self._conn, self.path):
                fresh, self.layout = open_read_only(self.path)
                self._conn.close()
                self._conn = fresh
            with meta.snapshot(self._conn) as conn:
                yield conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> HistoryReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- inventory -------------------------------------------------------------------------------

    def _refresh_inventory(self) -> None:
        for row in self._conn.execute(SELECT_INVENTORY):
            gpu_id, uuid, index, node = row[:4]
            self._inventory[gpu_id] = inventory_from_row(uuid, index, node, row[4:])
            self._gpu_ids[uuid] = gpu_id

    def _gpu_id(self, uuid: str) -> int:
        if uuid not in self._gpu_ids:
            self._refresh_inventory()
        try:
            return self._gpu_ids[uuid]
        except KeyError:
            raise StoreError(f"no GPU {uuid} in the history {self.path}") from None

    def gpus(self) -> list[GpuRecord]:
        """Every GPU ever recorded, by node and index. last_seen lags by up to one raw window."""
        with self._reading():
            rows = self._conn.execute(
                "SELECT gpus.uuid, nodes.name, gpus.name, gpus.first_seen_ms, gpus.last_seen_ms "
                "FROM gpus JOIN nodes ON nodes.id = gpus.node_id ORDER BY nodes.name, gpus.gpu_index"
            ).fetchall()
        return [
            GpuRecord(uuid, node, name, first / 1000 if first else None, last / 1000 if last else None)
            for uuid, node, name, first, last in rows
        ]

    def time_range(self) -> tuple[float, float] | None:
        """(oldest, newest) time with any fleet data, epoch seconds; None for an empty history."""
        with self._reading():
            firsts, lasts = [], []
            for table in ("fleet_samples", "fleet_1m", "fleet_1h"):
                first, last = self._conn.execute(f"SELECT min(ts_ms), max(ts_ms) FROM {table}").fetchone()
                if first is not None:
                    firsts.append(first)
                    lasts.append(last)
        return (min(firsts) / 1000, max(lasts) / 1000) if firsts else None

    # -- series ----------------------------------------------------------------------------------

    def _gpu_coverage(self, gpu_id: int) -> list[int | None]:
        first_raw = [
            v
            for v in (
                self._conn.execute("SELECT min(t0_ms) FROM samples WHERE gpu_id = ?", (gpu_id,)).fetchone()[0],
                self._conn.execute(
                    "SELECT min(ts_ms) FROM samples_head WHERE block = ?", (gpu_id // self.layout.block_size,)
                ).fetchone()[0],
            )
            if v is not None
        ]
        coverage: list[int | None] = [min(first_raw) if first_raw else None]
        for lvl in self.layout.levels[1:]:
            first = self._conn.execute(f"SELECT min(t0_ms) FROM {lvl.table} WHERE gpu_id = ?", (gpu_id,)).fetchone()[0]
            coverage.append(_rollup_coverage(first, coverage[-1], lvl.window_ms))
        return coverage

    def _fleet_coverage(self) -> list[int | None]:
        coverage: list[int | None] = []
        for lvl in self.layout.levels:
            first = self._conn.execute(f"SELECT min(ts_ms) FROM {lvl.fleet_table}").fetchone()[0]
            known = [v for v in (first, coverage[-1] if coverage else None) if v is not None]
            coverage.append(min(known) if known else None)
        return coverage

    def _level(self, resolution: str | None, span_ms: int, max_points: int, start_ms: int, coverage: list[int | None]) -> int:
        if resolution is not None:
            if resolution not in RESOLUTIONS:
                raise ValueError(f"unknown resolution {resolution!r}: expected one of {', '.join(RESOLUTIONS)}")
            return RESOLUTIONS.index(resolution)
        return choose_level(span_ms, max_points, start_ms, coverage, [lvl.bucket_ms for lvl in self.layout.levels])

    def series(
        self,
        gpu_uuid: str,
        metric: str,
        start: float,
        end: float,
        max_points: int = DEFAULT_MAX_POINTS,
        resolution: str | None = None,
    ) -> Series:
        """`metric` of one GPU over [start, end) in at most `max_points` points (see module doc)."""
        if max_points < 1:
            raise ValueError("max_points must be at least 1")
        kind = self.layout.spec(metric).kind
        start_ms, end_ms = _ms(start), _ms(end)
        with self._reading():
            gpu_id = self._gpu_id(gpu_uuid)
            level = self._level(resolution, end_ms - start_ms, max_points, start_ms, self._gpu_coverage(gpu_id))
            frame = gpu_frame(self._conn, self.layout, level, gpu_id, start_ms, end_ms, [metric])
        frame = _downsample(frame, stat_columns(self.layout, [metric]), end_ms, max_points)
        low, mean, high = _stat_triple(frame, metric, kind)
        return Series(frame.ts_ms / 1000, low, mean, high, RESOLUTIONS[level])

    def fleet_series(
        self,
        start: float,
        end: float,
        max_points: int = DEFAULT_MAX_POINTS,
        metrics: Sequence[str] = FLEET_METRICS,
        resolution: str | None = None,
    ) -> dict[str, Series]:
        """Fleet figures over [start, end): mean utilization (util_gpu_mean_pct), total power
        (power_total_w), GPUs by state (n_ok, n_lost, n_unknown) and the rest of FLEET_METRICS."""
        unknown = sorted(set(metrics) - set(FLEET_METRICS))
        if unknown:
            raise ValueError(f"unknown fleet metric(s) {', '.join(unknown)}")
        start_ms, end_ms = _ms(start), _ms(end)
        with self._reading():
            level = self._level(resolution, end_ms - start_ms, max_points, start_ms, self._fleet_coverage())
            frame = fleet_frame(self._conn, self.layout, level, start_ms, end_ms, list(metrics))
        columns = fleet_rollup_columns(metrics)
        frame = _downsample(frame, columns, end_ms, max_points)
        return {m: Series(frame.ts_ms / 1000, *_stat_triple(frame, m, Kind.GAUGE), RESOLUTIONS[level]) for m in metrics}

    def table(
        self, gpu_uuid: str, start: float, end: float, resolution: str = "raw", metrics: Sequence[str] = SAMPLE_METRICS
    ) -> HistoryTable:
        """Every row of one GPU over [start, end) at `resolution`, not downsampled (for exports)."""
        level = RESOLUTIONS.index(resolution)
        with self._reading():
            frame = gpu_frame(self._conn, self.layout, level, self._gpu_id(gpu_uuid), _ms(start), _ms(end), list(metrics))
        if frame.raw:
            columns = dict(frame.columns)
        else:
            columns = {f"{m}_{stat.value}": values for (m, stat), values in frame.columns.items()}
        return HistoryTable(frame.ts_ms / 1000, columns)

    # -- the fleet at an instant -----------------------------------------------------------------

    def fleet_at(self, t: float, staleness_s: float = DEFAULT_STALENESS_S) -> FleetSample | None:
        """The fleet as last recorded at or before `t` (no older than `staleness_s`), as a
        FleetSample for replay; None if nothing was recorded in that window. Recent polls (still
        in the head) are exact; older ones come from keyframes, one per keyframe interval (60 s by
        default). Processes are not part of the history (every GPU has none); XID events are in
        `events()`."""
        t_ms = _ms(t)
        low_ms = t_ms - _ms(staleness_s)
        layout = self.layout
        with self._reading():
            max_id = self._conn.execute("SELECT max(id) FROM gpus").fetchone()[0]
            frames = []
            for block in range(0 if max_id is None else max_id // layout.block_size + 1):
                best = None
                for table in ("samples_head", "keyframes"):
                    row = self._conn.execute(
                        f"SELECT ts_ms, data FROM {table} WHERE block = ? AND ts_ms <= ? AND ts_ms >= ? "
                        "ORDER BY ts_ms DESC LIMIT 1",
                        (block, t_ms, low_ms),
                    ).fetchone()
                    if row is not None and (best is None or row[0] > best[0]):
                        best = row
                if best is not None:
                    frames.append(best)
            if not frames:
                return None
            decoded = [decode_block(data) for _, data in frames]
            ids = np.concatenate([d[0] for d in decoded])
            if any(int(i) not in self._inventory for i in ids):
                self._refresh_inventory()
        codes = np.vstack([d[1] for d in decoded])
        metrics = {}
        state = np.full(len(ids), GpuState.UNKNOWN, dtype=np.uint8)
        for j, spec in enumerate(layout.metrics):
            values = dequantize(codes[:, j], spec.resolution)
            if spec.name == "state":
                state[~np.isnan(values)] = values[~np.isnan(values)].astype(np.uint8)
            elif spec.name in SAMPLE_METRICS:
                metrics[spec.name] = values
        for name in SAMPLE_METRICS:
            metrics.setdefault(name, np.full(len(ids), np.nan))
        return FleetSample(
            ts=max(ts for ts, _ in frames) / 1000,
            gpus=tuple(self._inventory[int(i)] for i in ids),
            metrics=metrics,
            state=state,
            processes=((),) * len(ids),
        )

    # -- events ----------------------------------------------------------------------------------

    def events(
        self, start: float, end: float, gpu_uuid: str | None = None, kinds: Iterable[str] | None = None
    ) -> list[HistoryEvent]:
        """Events in [start, end), oldest first."""
        sql = (
            "SELECT events.ts_ms, events.kind, gpus.uuid, events.code, events.detail FROM events "
            "LEFT JOIN gpus ON gpus.id = events.gpu_id WHERE events.ts_ms >= ? AND events.ts_ms < ?"
        )
        params: list = [_ms(start), _ms(end)]
        with self._reading():
            if gpu_uuid is not None:
                sql += " AND events.gpu_id = ?"
                params.append(self._gpu_id(gpu_uuid))
            if kinds is not None:
                kinds = list(kinds)
                sql += f" AND events.kind IN ({', '.join('?' * len(kinds))})"
                params.extend(kinds)
            rows = self._conn.execute(sql + " ORDER BY events.ts_ms, events.id", params).fetchall()
        return [HistoryEvent(ts / 1000, kind, uuid, code, detail) for ts, kind, uuid, code, detail in rows]

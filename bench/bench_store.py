"""Cost and size of the history store (core/store), on the simulated fleet in fast-forward time.

Three generated databases (the first two cached under the temp dir, keyed by GENERATION):

- "recent64": 64 demo GPUs written through the real writer at 1 Hz (a few ms of jitter) for
  5 h 57 min, ending just before a 6-hour rollup window closes - the worst case for a 24 h query,
  whose newest 6 h must be rolled up from raw chunks and head at read time - preceded by 24 h of
  1-minute rollup chunks generated directly from a per-minute sample of the same fleet (rows and
  chunks are what the rollup builder writes; their values are the minute's sample). Bytes per
  value are measured on its raw part, as it was when the raw polls were written.
- "fleet1000": the fleet tables only - 30 days of 1-minute fleet rows and the newest 6 h of
  per-poll fleet rows at 1 Hz, with the figures of the 1,000-GPU demo fleet sampled every
  10 minutes, written directly. Fleet curves read these tables only, never per-GPU data, so the
  query cost does not depend on the fleet size.
- "fleet10k" / "fleet1k" (rebuilt each run): 10,000 and 1,000 demo GPUs written through the real
  writer every 10 s for 12 minutes (the first two 5-minute windows compacted); poll writes are
  timed here, and the fleet state at a past instant is read back from keyframes and head.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from gpuops.core.sources.demo import DemoSource
from gpuops.core.store import HistoryReader, HistoryWriter
from gpuops.core.store.blobs import encode_rollup_chunk
from gpuops.core.store.columns import Kind, Stat
from gpuops.core.store.connection import open_database
from gpuops.core.store.fleet import FLEET_METRICS, fleet_row
from gpuops.core.store.layout import StoreLayout
from gpuops.core.store.rollup import Frame
from gpuops.core.telemetry import SAMPLE_METRICS

GENERATION = "v2"  # bump when the storage format changes, to rebuild the cached databases
CACHE = Path(tempfile.gettempdir()) / f"gpuops-bench-store-{GENERATION}"

HOUR, DAY = 3600.0, 86400.0
END = 1_767_225_600.0 - 180.0  # 2026-01-01T00:00Z minus 3 min: 6-hour window nearly complete
WINDOW_START = 1_767_225_600.0 - 6 * HOUR
SEED = 7


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm the page cache and the reader's inventory
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations) * 1e3


def _minute_frame(samples: list, gpu: int, layout: StoreLayout) -> Frame:
    """A 1-minute rollup frame whose every bucket is one per-minute sample of GPU `gpu`."""
    ts = np.array([round(s.ts * 1000) for s in samples], dtype=np.int64)
    columns = {}
    for spec in layout.metrics:
        if spec.name == "state":
            values = np.array([float(s.state[gpu]) for s in samples])
        else:
            values = np.array([s.metrics[spec.name][gpu] for s in samples])
        stats = {Kind.GAUGE: (Stat.MIN, Stat.AVG, Stat.MAX), Kind.COUNTER: (Stat.LAST,), Kind.BITMASK: (Stat.OR,)}[spec.kind]
        columns.update({(spec.name, stat): values for stat in stats})
    return Frame(ts, np.full(len(ts), 60, dtype=np.int64), columns, raw=False)


def _build_recent64(path: Path) -> dict:
    source = DemoSource(64, seed=SEED, start_ts=WINDOW_START - 30 * DAY)
    rng = np.random.default_rng(SEED)
    polls = int(END - WINDOW_START)
    with HistoryWriter(path) as writer:
        for k in range(polls):
            writer.write(source.sample_at(WINDOW_START + k + rng.normal(0, 0.003)))
            writer.maintain(0.005)
        while writer.maintain(5.0):
            pass
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    chunk_bytes = conn.execute("SELECT sum(length(data)) FROM samples").fetchone()[0]
    conn.close()
    values = polls * 64 * len(SAMPLE_METRICS)
    sizes = {"polls": polls, "values": values, "file_bytes": path.stat().st_size, "chunk_bytes": chunk_bytes}

    # 24 h of 1-minute rollups before the raw part, as the rollup builder would have stored them.
    conn, layout = open_database(path, create=False)
    ids = dict(conn.execute("SELECT uuid, id FROM gpus"))
    minute = layout.levels[1]
    minute_source = DemoSource(64, seed=SEED, start_ts=WINDOW_START - 30 * DAY)
    chunk_rows, fleet_rows = [], []
    for window in range(4):
        t0 = WINDOW_START - (4 - window) * minute.window_ms / 1000
        samples = [minute_source.sample_at(t0 + 60 * m) for m in range(360)]
        for gpu, inventory in enumerate(samples[0].gpus):
            chunk_rows.append(
                (ids[inventory.uuid], round(t0 * 1000), 360, encode_rollup_chunk(_minute_frame(samples, gpu, layout), layout))
            )
        for s in samples:
            figures = fleet_row(s)
            fleet_rows.append((round(s.ts * 1000), 60, *(v for f in figures for v in (f, f, f))))
    names = ["ts_ms", "n", *(f"{m}_{stat}" for m in FLEET_METRICS for stat in ("min", "avg", "max"))]
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO rollup_1m (gpu_id, t0_ms, n, data) VALUES (?, ?, ?, ?)", chunk_rows)
    conn.executemany(f"INSERT INTO fleet_1m ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", fleet_rows)
    conn.execute("COMMIT")
    conn.close()
    return sizes


def _build_fleet1000(path: Path) -> None:
    conn, layout = open_database(path, create=True)
    source = DemoSource(1000, seed=SEED, start_ts=END - 31 * DAY)
    start = WINDOW_START - 30 * DAY + 6 * HOUR
    every = 600
    figures = {round(t): fleet_row(source.sample_at(t)) for t in np.arange(start, END + every, every)}

    def at(ts: float) -> tuple:
        return figures[round(ts - (ts - start) % every)]

    names = ["ts_ms", "n", *(f"{m}_{stat}" for m in FLEET_METRICS for stat in ("min", "avg", "max"))]
    minute_rows = [
        (round(ts * 1000), 60, *(v for f in at(ts) for v in (f, f, f))) for ts in np.arange(start, WINDOW_START, 60.0)
    ]
    raw_rows = [(round(ts * 1000), *at(ts)) for ts in np.arange(WINDOW_START, END, 1.0)]
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(f"INSERT INTO fleet_1m ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", minute_rows)
    conn.executemany(
        f"INSERT INTO fleet_samples (ts_ms, {', '.join(FLEET_METRICS)}) VALUES ({', '.join('?' * (len(FLEET_METRICS) + 1))})",
        raw_rows,
    )
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (layout.levels[1].watermark_key, str(round(WINDOW_START * 1000))))
    conn.execute("COMMIT")
    conn.close()


def _cached(name: str, build) -> tuple[Path, dict]:
    """The database `name`, built once per GENERATION; returns its path and build notes."""
    path = CACHE / name / "history.sqlite"
    notes = path.with_name("notes.json")
    if not notes.exists():
        shutil.rmtree(path.parent, ignore_errors=True)
        path.parent.mkdir(parents=True)
        notes.write_text(json.dumps(build(path) or {}))
    return path, json.loads(notes.read_text())


def _write_fleet(n_gpus: int, directory: Path) -> dict:
    """Write a fleet every 10 s for 12 minutes; time the writes and the background steps."""
    path = directory / f"fleet{n_gpus}.sqlite"
    source = DemoSource(n_gpus, seed=SEED, start_ts=END - DAY)
    start = END - 12 * 60
    writes, steps = [], []
    with HistoryWriter(path) as writer:
        for k in range(72):
            sample = source.sample_at(start + 10 * k)
            started = time.perf_counter()
            writer.write(sample)
            writes.append(time.perf_counter() - started)
            while True:  # background work, one step (one transaction) at a time
                started = time.perf_counter()
                more = writer.maintain(0.0)
                steps.append(time.perf_counter() - started)
                if not more:
                    break
    return {
        "path": path,
        "first_ms": writes[0] * 1e3,
        "writes_ms": [w * 1e3 for w in writes[1:]],
        "longest_step_ms": max(steps) * 1e3,
    }


def run() -> list[dict]:
    rows = []
    work = Path(tempfile.mkdtemp(prefix="gpuops-bench-store-"))
    try:
        for n_gpus, target in ((10_000, "<= 100"), (1_000, "measure and report")):
            written = _write_fleet(n_gpus, work)
            ms = written["writes_ms"]
            rows.append(
                {
                    "measure": f"write one poll, {n_gpus:,} GPUs",
                    "value": statistics.median(ms),
                    "unit": "ms",
                    "target": target,
                    "p95_ms": float(np.percentile(ms, 95)),
                    "max_ms": max(ms),
                    "first_poll_ms": written["first_ms"],
                    "longest_background_step_ms": written["longest_step_ms"],
                }
            )
            if n_gpus == 10_000:
                with HistoryReader(written["path"]) as reader:
                    past = END - 12 * 60 + 95  # compacted: read from the keyframe of that minute
                    assert len(reader.fleet_at(past)) == n_gpus
                    rows.append(
                        {
                            "measure": "fleet state at a past instant, 10,000 GPUs",
                            "value": _median_ms(lambda past=past: reader.fleet_at(past), 10),
                            "unit": "ms",
                            "target": "<= 100",
                            "from_head_ms": _median_ms(lambda: reader.fleet_at(END - 15), 10),
                        }
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    recent, sizes = _cached("recent64", _build_recent64)
    rows.append(
        {
            "measure": "storage per stored value (64 GPUs, 1 Hz, 6 h)",
            "value": sizes["file_bytes"] / sizes["values"],
            "unit": "bytes/value",
            "target": "<= 2.5",
            "raw_chunks_only": sizes["chunk_bytes"] / sizes["values"],
            "file_bytes": sizes["file_bytes"],
            "values": sizes["values"],
        }
    )
    with HistoryReader(recent) as reader:
        uuid = reader.gpus()[0].uuid
        day = reader.series(uuid, "power_w", END - DAY, END, max_points=2000)
        assert 1300 < len(day) <= 2000 and day.resolution == "1m"
        rows.append(
            {
                "measure": "24 h series of one GPU, <= 2,000 points",
                "value": _median_ms(lambda: reader.series(uuid, "power_w", END - DAY, END, max_points=2000), 20),
                "unit": "ms",
                "target": "<= 50",
                "points": len(day),
                "one_hour_raw_ms": _median_ms(lambda: reader.series(uuid, "power_w", END - HOUR, END, max_points=2000), 20),
            }
        )

    fleet, _ = _cached("fleet1000", _build_fleet1000)
    with HistoryReader(fleet) as reader:
        curve = reader.fleet_series(END - 30 * DAY, END, max_points=2000, metrics=["util_gpu_mean_pct"])["util_gpu_mean_pct"]
        assert 1000 < len(curve) <= 2000
        rows.append(
            {
                "measure": "30-day fleet utilization curve, 1,000 GPUs",
                "value": _median_ms(
                    lambda: reader.fleet_series(END - 30 * DAY, END, max_points=2000, metrics=["util_gpu_mean_pct"]), 10
                ),
                "unit": "ms",
                "target": "<= 200",
                "points": len(curve),
                "resolution": curve.resolution,
            }
        )
    return rows

"""Fleets with values that change every poll, for the history store tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gpuops.core.store.columns import Stat
from gpuops.core.store.connection import open_database
from gpuops.core.telemetry import FleetSample, GpuInventory, GpuState
from tests.samples import edited, make_inventory, make_sample

#: Midnight UTC, so 1-minute and 6-hour windows line up with round times in the tests.
T0 = 1_763_769_600.0


def varied_sample(gpus: tuple[GpuInventory, ...], ts: float, seed: int, *, lost: Sequence[int] = ()) -> FleetSample:
    """A poll whose gauges are random and whose energy counter grows with time; GPU 1 does not
    report mem_temp_c (NaN), GPUs in `lost` are lost (all NaN)."""
    rng = np.random.default_rng([seed, round(ts * 1000)])
    sample = make_sample(gpus=gpus, ts=ts, states={i: GpuState.LOST for i in lost})
    n = len(gpus)
    ok = sample.state == GpuState.OK

    def vary(metrics: dict[str, np.ndarray]) -> None:
        metrics["util_gpu_pct"][ok] = rng.integers(0, 101, n)[ok]
        metrics["power_w"][ok] = np.round(rng.uniform(60, 700, n), 3)[ok]
        metrics["temp_c"][ok] = rng.integers(30, 90, n)[ok]
        metrics["energy_j"][ok] = (1e6 + 400.0 * (ts - T0) + np.arange(n))[ok]
        metrics["throttle_reasons_mask"][ok] = rng.choice([0, 0, 0, 4, 32], n)[ok]
        if n > 1:
            metrics["mem_temp_c"][1] = np.nan

    return edited(sample, vary)


def fleet_polls(n_gpus: int, times: Sequence[float], seed: int = 0) -> list[FleetSample]:
    gpus = make_inventory(n_gpus)
    return [varied_sample(gpus, ts, seed) for ts in times]


def bucket_stats(times: np.ndarray, values: np.ndarray, bucket_s: float, stat: Stat) -> dict[float, float]:
    """Expected rollup of plain (time, value) pairs, computed the obvious way, NaN ignored."""
    out: dict[float, float] = {}
    for start in np.unique(np.floor(times / bucket_s) * bucket_s):
        inside = values[(times >= start) & (times < start + bucket_s)]
        inside = inside[~np.isnan(inside)]
        if not len(inside):
            out[float(start)] = float("nan")
        elif stat is Stat.MIN:
            out[float(start)] = float(inside.min())
        elif stat is Stat.MAX:
            out[float(start)] = float(inside.max())
        elif stat is Stat.AVG:
            out[float(start)] = float(inside.mean())
        elif stat is Stat.LAST:
            out[float(start)] = float(inside[-1])
        else:
            out[float(start)] = float(np.bitwise_or.reduce(inside.astype(np.int64)))
    return out


class FailingDisk:
    """Opens the real database; `fail()` then makes the open connection, and every one opened
    until `recover()`, fail like a full disk (a page budget of what the file already has:
    SQLITE_FULL) or a read-only file (query_only: SQLITE_READONLY)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.failing = False
        self.opened = 0
        self.conn: sqlite3.Connection | None = None

    def __call__(self, path: Path):
        self.opened += 1
        self.conn, layout = open_database(path, create=True)
        if self.failing:
            self._break(self.conn)
        return self.conn, layout

    def _break(self, conn: sqlite3.Connection) -> None:
        if self.mode == "full":
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages}")
        else:
            conn.execute("PRAGMA query_only = ON")

    def fail(self) -> None:
        self.failing = True
        self._break(self.conn)

    def recover(self) -> None:
        self.failing = False

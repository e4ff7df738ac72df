"""Capacity planning per GPU model: GPUs under contract over time against the supply, and the
first instant demand exceeds it.

Supply is the healthy GPUs in production now, plus those in burn-in, repair or RMA from the date
they are expected back (the lifecycle's expected return); a GPU draining, in maintenance, or out
without a date is not counted. Demand is a step function that changes only when a contract starts
or ends, so the series is exact (no sampling) and the crunch date is the start of the first
contract that tips it over (supply only grows, so a shortfall can only begin where demand does).
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gpuops.core.allocations.model import Contract, ContractStatus, gpu_model_of
from gpuops.core.health import FleetHealth, Health
from gpuops.core.lifecycle.book import expected_returns, gpu_states
from gpuops.core.lifecycle.states import State
from gpuops.core.telemetry import FleetSample, GpuState

#: Contracts that hold capacity; ended and cancelled ones do not.
HOLDING = frozenset({ContractStatus.ACTIVE, ContractStatus.SUSPENDED})


@dataclass(frozen=True)
class CapacitySeries:
    """Demand for one model as a step function: `contracted[i]` GPUs from `ts_ms[i]` until
    `ts_ms[i + 1]` (the last step lasts to the horizon). `supply` is the healthy fleet in
    production now, `returning_ms` when each GPU out of production is expected back (sorted)."""

    model: str
    ts_ms: np.ndarray
    contracted: np.ndarray
    supply: int
    first_shortfall_ms: int | None
    returning_ms: tuple[int, ...] = ()

    @property
    def peak(self) -> int:
        return int(self.contracted.max()) if len(self.contracted) else 0

    def supply_at(self, ts_ms: int) -> int:
        """GPUs available at `ts_ms`: production now plus those back by then."""
        return self.supply + int(np.searchsorted(np.asarray(self.returning_ms, dtype=np.int64), ts_ms, side="right"))


def healthy_supply(
    sample: FleetSample, health: FleetHealth | None = None, states: Mapping[str, State] | None = None
) -> dict[str, int]:
    """Healthy GPUs per model in a live sample: answering, not critical when health is known, and
    in production by `states` (UUID -> lifecycle state; absent = production)."""
    ok = sample.state == GpuState.OK
    if health is not None:
        ok &= health.level < Health.CRITICAL
    states = states or {}
    return dict(Counter(
        gpu_model_of(g.name) for g, good in zip(sample.gpus, ok, strict=True)
        if good and states.get(g.uuid, State.PRODUCTION) is State.PRODUCTION
    ))


def stored_supply(conn: sqlite3.Connection) -> dict[str, int]:
    """Healthy GPUs in production per model as the history last saw them (headless, without a live poll)."""
    states = gpu_states(conn)
    rows = conn.execute("SELECT uuid, name FROM gpus WHERE last_state = ?", (int(GpuState.OK),))
    return dict(Counter(gpu_model_of(name or "") for uuid, name in rows if states.get(uuid) is State.PRODUCTION))


def returning_supply(conn: sqlite3.Connection, now_ms: int | None = None) -> dict[str, tuple[int, ...]]:
    """Per model, when each GPU in burn-in, repair or RMA with an expected return comes back (sorted).
    A return already overdue at `now_ms` (default: the wall clock) is not counted: it is late, and
    when it will come is no longer known."""
    now_ms = round(time.time() * 1000) if now_ms is None else now_ms
    names = dict(conn.execute("SELECT uuid, coalesce(name, '') FROM gpus"))
    back: dict[str, list[int]] = defaultdict(list)
    for uuid, ts_ms in expected_returns(conn).items():
        if ts_ms > now_ms:
            back[gpu_model_of(names[uuid])].append(ts_ms)
    return {model: tuple(sorted(times)) for model, times in back.items()}


def book_supply(
    conn: sqlite3.Connection, sample: FleetSample | None = None, health: FleetHealth | None = None,
    now_ms: int | None = None,
) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    """The supply now (from a live `sample` when there is one, else as stored) and what returns when,
    for `capacity_plan`."""
    now = stored_supply(conn) if sample is None else healthy_supply(sample, health, gpu_states(conn))
    return now, returning_supply(conn, now_ms)


def capacity_plan(
    contracts: Iterable[Contract], supply: Mapping[str, int], start_ms: int, end_ms: int, models: Sequence[str] | None = None,
    *, returning: Mapping[str, Sequence[int]] | None = None,
) -> list[CapacitySeries]:
    """One series per model (those in contracts, supply or `returning`, or `models`) over
    [start_ms, end_ms); `returning`: per model, when GPUs out of production are expected back."""
    returning = returning or {}
    steps: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for c in contracts:
        if c.status not in HOLDING or c.end_or_open_ms <= start_ms or c.start_ms >= end_ms:
            continue
        steps[c.gpu_model.upper()].append((max(c.start_ms, start_ms), c.gpu_count))
        if c.end_or_open_ms < end_ms and c.end_ms is not None:
            steps[c.gpu_model.upper()].append((c.end_ms, -c.gpu_count))
    names = sorted(set(models) if models is not None else set(steps) | set(supply) | set(returning))
    plan = []
    for model in names:
        changes = sorted(steps.get(model, []))
        ts = [start_ms]
        level = [0]
        for t, delta in changes:
            if t == ts[-1]:
                level[-1] += delta
            else:
                ts.append(t)
                level.append(level[-1] + delta)
        back = np.array(sorted(returning.get(model, ())), dtype=np.int64)
        have = int(supply.get(model, 0))
        over = [t for t, n in zip(ts, level, strict=True) if n > have + int(np.searchsorted(back, t, side="right"))]
        plan.append(CapacitySeries(
            model, np.array(ts, dtype=np.int64), np.array(level, dtype=np.int64), have, over[0] if over else None,
            tuple(int(t) for t in back),
        ))
    return plan

"""Capacity planning per GPU model: GPUs under contract over time against healthy GPUs in the
fleet, and the first instant demand exceeds supply.

Demand is a step function that changes only when a contract starts or ends, so the series is
exact (no sampling) and the crunch date is the start of the first contract that tips it over.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gpuops.core.allocations.model import Contract, ContractStatus, gpu_model_of
from gpuops.core.health import FleetHealth, Health
from gpuops.core.telemetry import FleetSample, GpuState

#: Contracts that hold capacity; ended and cancelled ones do not.
HOLDING = frozenset({ContractStatus.ACTIVE, ContractStatus.SUSPENDED})


@dataclass(frozen=True)
class CapacitySeries:
    """Demand for one model as a step function: `contracted[i]` GPUs from `ts_ms[i]` until
    `ts_ms[i + 1]` (the last step lasts to the horizon). `supply` is the healthy fleet now."""

    model: str
    ts_ms: np.ndarray
    contracted: np.ndarray
    supply: int
    first_shortfall_ms: int | None

    @property
    def peak(self) -> int:
        return int(self.contracted.max()) if len(self.contracted) else 0


def healthy_supply(sample: FleetSample, health: FleetHealth | None = None) -> dict[str, int]:
    """Healthy GPUs per model in a live sample: answering, and not critical when health is known."""
    ok = sample.state == GpuState.OK
    if health is not None:
        ok &= health.level < Health.CRITICAL
    return dict(Counter(gpu_model_of(g.name) for g, good in zip(sample.gpus, ok, strict=True) if good))


def stored_supply(conn: sqlite3.Connection) -> dict[str, int]:
    """Healthy GPUs per model as the history last saw them (for headless use, without a live poll)."""
    rows = conn.execute("SELECT name FROM gpus WHERE last_state = ?", (int(GpuState.OK),))
    return dict(Counter(gpu_model_of(name or "") for (name,) in rows))


def capacity_plan(
    contracts: Iterable[Contract], supply: Mapping[str, int], start_ms: int, end_ms: int, models: Sequence[str] | None = None
) -> list[CapacitySeries]:
    """One series per model (those in contracts or supply, or `models`) over [start_ms, end_ms)."""
    steps: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for c in contracts:
        if c.status not in HOLDING or c.end_or_open_ms <= start_ms or c.start_ms >= end_ms:
            continue
        steps[c.gpu_model.upper()].append((max(c.start_ms, start_ms), c.gpu_count))
        if c.end_or_open_ms < end_ms and c.end_ms is not None:
            steps[c.gpu_model.upper()].append((c.end_ms, -c.gpu_count))
    names = sorted(set(models) if models is not None else set(steps) | set(supply))
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
        have = int(supply.get(model, 0))
        over = [t for t, n in zip(ts, level, strict=True) if n > have]
        plan.append(
            CapacitySeries(model, np.array(ts, dtype=np.int64), np.array(level, dtype=np.int64), have, over[0] if over else None)
        )
    return plan

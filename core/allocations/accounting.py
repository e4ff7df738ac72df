"""Invoice-grade usage per customer (and contract) for any period, from allocations and history.

For each allocation clipped to the period:
- allocated GPU-hours: its length; revenue: that times the contract's price per GPU-hour;
- measured GPU-hours: allocated time with a utilization reading (before the history began, or
  while nothing was recorded, there is none: that time is unmeasured, neither used nor idle);
- used GPU-hours: measured time weighted by the GPU's average utilization; utilization is
  used over measured time, and coverage is measured over allocated time;
- idle GPU-hours: time in windows of at least IDLE_WINDOW_MS where utilization stayed below
  IDLE_THRESHOLD_PCT (a shorter dip is a pause, not waste);
- energy: deltas of the GPU's energy counter, or its average power times time where the counter
  is missing or went backwards (driver reload);
- unavailable GPU-hours: allocated time while the GPU was lost or faulty, the input to SLA credits:
  lost from `gpu_lost` to `gpu_recovered`, faulty for an hour after a critical XID, and faulty in
  every bucket of its history holding uncorrectable ECC errors or a row remap failure (until the
  counter reads 0 again) or a GPU temperature at or over its slowdown threshold, by the minute
  where the minutes are kept (rule in core/allocations/usage_history.py), and in repair or RMA by
  its lifecycle (core/lifecycle); time that is several of these counts once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np

from gpuops.core.allocations.model import Allocation, Contract, Customer
from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.allocations.usage_history import (
    IDLE_THRESHOLD_PCT,
    IDLE_WINDOW_MS,
    Buckets,
    Request,
    UsageHistory,
    unavailable_spans,
)
from gpuops.core.lifecycle.book import state_intervals
from gpuops.core.lifecycle.states import UNAVAILABLE

HOUR_MS = 3_600_000
J_PER_KWH = 3.6e6


class GpuHistory(Protocol):
    """Where the GPUs' readings come from: the local history (UsageHistory) or Prometheus."""

    def unavailable_intervals(self, start_ms: int, end_ms: int) -> dict[str, list[tuple[int, int]]]: ...

    def buckets_of(self, requests: dict[str, Request]) -> dict[str, Buckets]: ...


@dataclass(frozen=True)
class Usage:
    allocated_gpu_hours: float = 0.0
    used_gpu_hours: float = 0.0
    idle_gpu_hours: float = 0.0
    energy_kwh: float = 0.0
    revenue: float = 0.0
    unavailable_gpu_hours: float = 0.0
    measured_gpu_hours: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def utilization_pct(self) -> float | None:
        """Average utilization over the measured time (None: nothing measured)."""
        return None if not self.measured_gpu_hours else 100.0 * self.used_gpu_hours / self.measured_gpu_hours

    @property
    def coverage_pct(self) -> float | None:
        """Share of allocated time with readings: how much of the period the figures stand on."""
        return None if not self.allocated_gpu_hours else 100.0 * self.measured_gpu_hours / self.allocated_gpu_hours

    @property
    def availability_pct(self) -> float | None:
        """Share of allocated time the GPUs were neither lost nor faulty."""
        if not self.allocated_gpu_hours:
            return None
        return 100.0 * (1 - self.unavailable_gpu_hours / self.allocated_gpu_hours)


@dataclass(frozen=True)
class CustomerUsage:
    customer: Customer
    usage: Usage
    by_contract: tuple[tuple[Contract, Usage], ...]

    def as_dict(self) -> dict:
        """The `gpuops usage --format json` object of this customer (schema in README)."""
        u = self.usage
        return {
            "customer": self.customer.name,
            "allocated_gpu_hours": round(u.allocated_gpu_hours, 6),
            "measured_gpu_hours": round(u.measured_gpu_hours, 6),
            "coverage_pct": None if u.coverage_pct is None else round(u.coverage_pct, 3),
            "used_gpu_hours": round(u.used_gpu_hours, 6),
            "idle_gpu_hours": round(u.idle_gpu_hours, 6),
            "energy_kwh": round(u.energy_kwh, 6),
            "revenue": round(u.revenue, 2),
            "unavailable_gpu_hours": round(u.unavailable_gpu_hours, 6),
            "utilization_pct": None if u.utilization_pct is None else round(u.utilization_pct, 3),
            "availability_pct": None if u.availability_pct is None else round(u.availability_pct, 4),
            "contracts": [
                {"contract": c.name, "type": c.type.value, "price_per_gpu_hour": c.price_per_gpu_hour,
                 "allocated_gpu_hours": round(cu.allocated_gpu_hours, 6),
                 "measured_gpu_hours": round(cu.measured_gpu_hours, 6),
                 "coverage_pct": None if cu.coverage_pct is None else round(cu.coverage_pct, 3),
                 "used_gpu_hours": round(cu.used_gpu_hours, 6),
                 "idle_gpu_hours": round(cu.idle_gpu_hours, 6), "energy_kwh": round(cu.energy_kwh, 6),
                 "revenue": round(cu.revenue, 2), "unavailable_gpu_hours": round(cu.unavailable_gpu_hours, 6)}
                for c, cu in self.by_contract
            ],
        }


def usage_report(
    repo: AllocationRepository, start_ms: int, end_ms: int, *, customer: str | None = None, search: str | None = None,
    history: GpuHistory | None = None,
) -> list[CustomerUsage]:
    """Usage of every customer over [start_ms, end_ms), by customer name: only the one named
    `customer`, or those whose name contains `search` (any case), when given. The GPUs' readings
    come from `history` (default: the book's own database; `gpuops usage --history prometheus:`
    passes core.sources.prometheus_history's)."""
    customers = repo.customers()
    if customer is not None:
        customers = [c for c in customers if c.name == customer]
    if search:
        customers = [c for c in customers if search.casefold() in c.name.casefold()]
    wanted = {c.id for c in customers}
    contracts = {c.id: c for c in repo.contracts() if c.customer_id in wanted}
    allocations = [a for a in repo.allocations(start_ms=start_ms, end_ms=end_ms) if a.contract_id in contracts]
    per_contract = contract_usage(repo, allocations, contracts, start_ms, end_ms, history)
    report = []
    for c in customers:
        rows = tuple((k, per_contract.get(k.id, Usage())) for k in contracts.values() if k.customer_id == c.id)
        report.append(CustomerUsage(c, sum((u for _, u in rows), Usage()), rows))
    return report


def contract_usage(
    repo: AllocationRepository, allocations: Iterable[Allocation], contracts: dict[int, Contract], start_ms: int, end_ms: int,
    history: GpuHistory | None = None,
) -> dict[int, Usage]:
    """Usage per contract id of `allocations` clipped to [start_ms, end_ms)."""
    if history is None:
        history = UsageHistory(repo.conn, idle_threshold_pct=IDLE_THRESHOLD_PCT, idle_window_ms=IDLE_WINDOW_MS)
    unavailable = history.unavailable_intervals(start_ms, end_ms)
    # Repair and RMA are in the book, whichever history the readings come from.
    for uuid, spans in state_intervals(repo.conn, start_ms, end_ms, UNAVAILABLE).items():
        unavailable[uuid] = [*unavailable.get(uuid, ()), *spans]
    by_gpu: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for a in allocations:
        lo, hi = max(a.start_ms, start_ms), min(a.end_or_open_ms, end_ms)
        if hi > lo:
            by_gpu[a.gpu_uuid].append((lo, hi, a.contract_id))
    requests = {}
    for uuid, windows in by_gpu.items():
        cuts = sorted({edge for lo, hi, _ in windows for edge in (lo, hi)})
        requests[uuid] = Request(cuts[0], cuts[-1], tuple(unavailable.get(uuid, ())), tuple(cuts))
    all_buckets = history.buckets_of(requests)
    totals: dict[int, Usage] = defaultdict(Usage)
    for uuid, windows in by_gpu.items():
        buckets = all_buckets[uuid]
        down = unavailable_spans(unavailable.get(uuid, []), buckets)
        for lo, hi, contract_id in windows:
            hours = (hi - lo) / HOUR_MS
            totals[contract_id] += Usage(
                allocated_gpu_hours=hours,
                revenue=hours * contracts[contract_id].price_per_gpu_hour,
                unavailable_gpu_hours=_overlap_ms(down, lo, hi) / HOUR_MS,
                **window_usage(buckets, lo, hi),
            )
    return dict(totals)


def _overlap_ms(intervals: Iterable[tuple[int, int]], lo: int, hi: int) -> int:
    return sum(max(0, min(b, hi) - max(a, lo)) for a, b in intervals)


def window_usage(b: Buckets, lo: int, hi: int) -> dict[str, float]:
    """measured_gpu_hours, used_gpu_hours, idle_gpu_hours and energy_kwh of one GPU over [lo, hi)."""
    inside = np.flatnonzero((b.end_ms > lo) & (b.start_ms < hi))
    if not len(inside):
        return {"measured_gpu_hours": 0.0, "used_gpu_hours": 0.0, "idle_gpu_hours": 0.0, "energy_kwh": 0.0}
    start = np.maximum(b.start_ms[inside], lo)
    end = np.minimum(b.end_ms[inside], hi)
    span_ms = (end - start).astype(np.float64)
    share = span_ms / (b.end_ms[inside] - b.start_ms[inside])
    util = b.util_avg[inside]
    used_ms = np.nansum(np.where(np.isnan(util), 0.0, util / 100.0) * span_ms)
    measured_ms = float(span_ms[~np.isnan(util)].sum())

    idle_ms = _idle_ms(b, inside, start, end)

    previous = inside - 1
    before = np.where(previous >= 0, b.energy_last_j[np.maximum(previous, 0)], np.nan)
    delta = b.energy_last_j[inside] - before
    from_counter = ~np.isnan(delta) & (delta >= 0)
    fallback = (
        np.where(np.isnan(b.power_avg_w[inside]), 0.0, b.power_avg_w[inside]) * (b.end_ms[inside] - b.start_ms[inside]) / 1000
    )
    energy_j = np.sum(np.where(from_counter, delta, fallback) * share)
    return {"measured_gpu_hours": measured_ms / HOUR_MS, "used_gpu_hours": used_ms / HOUR_MS,
            "idle_gpu_hours": idle_ms / HOUR_MS, "energy_kwh": energy_j / J_PER_KWH}


def _idle_ms(b: Buckets, inside: np.ndarray, start: np.ndarray, end: np.ndarray) -> float:
    """Idle time in windows of at least IDLE_WINDOW_MS over the clipped buckets `inside`.

    A minute is idle if its average is under the threshold; an hour from the hourly rollup is
    idle if even its maximum is, and an hour with an idle summary is split into its idle head,
    its busy middle and its idle tail, the windows inside it added as they are (such an hour is
    never clipped: allocation boundaries inside an hour make it read by the minute)."""
    util = b.util_avg[inside]
    is_hour = (b.end_ms[inside] - b.start_ms[inside]) > 60_000
    idle = np.where(is_hour, b.util_max[inside] < IDLE_THRESHOLD_PCT, util < IDLE_THRESHOLD_PCT) & ~np.isnan(util)
    summarized = b.idle_head_ms[inside] >= 0
    if summarized.any():
        head, tail = b.idle_head_ms[inside][summarized], b.idle_tail_ms[inside][summarized]
        s, e = start[summarized], end[summarized]
        start = np.concatenate((start[~summarized], s, s + head, e - tail))
        end = np.concatenate((end[~summarized], s + head, e - tail, e))
        idle = np.concatenate((idle[~summarized], np.ones(len(s), bool), np.zeros(len(s), bool), np.ones(len(s), bool)))
        nonempty = end > start
        order = np.argsort(start[nonempty], kind="stable")
        start, end, idle = start[nonempty][order], end[nonempty][order], idle[nonempty][order]
    inner = float(b.idle_inner_ms[inside][summarized].sum())
    return _long_runs_ms(idle, start, end, (end - start).astype(np.float64)) + inner


def _long_runs_ms(idle: np.ndarray, start: np.ndarray, end: np.ndarray, span_ms: np.ndarray) -> float:
    """Total length of runs of idle, back-to-back buckets lasting at least IDLE_WINDOW_MS."""
    if not idle.any():
        return 0.0
    joined = np.concatenate(([False], (start[1:] == end[:-1]) & idle[1:] & idle[:-1]))
    run_id = np.cumsum(~joined)
    lengths = np.bincount(run_id, weights=np.where(idle, span_ms, 0.0))
    is_idle_run = np.bincount(run_id, weights=idle.astype(np.float64)) > 0
    return float(lengths[is_idle_run & (lengths >= IDLE_WINDOW_MS)].sum())

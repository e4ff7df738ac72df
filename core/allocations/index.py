"""Who holds which GPU at a given instant: a frozen snapshot of all allocations, looked up per
sample without touching the database (the console asks it every poll, for 10,000 GPUs)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from gpuops.core.allocations.model import OPEN_END_MS
from gpuops.core.telemetry import FleetSample


@dataclass(frozen=True)
class Holder:
    contract_id: int
    contract: str
    customer: str


@dataclass(frozen=True)
class AllocationIndex:
    """Per GPU UUID, its allocations as parallel tuples sorted by start (they never overlap)."""

    _by_gpu: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[Holder, ...]]]

    @classmethod
    def build(cls, rows: Iterable[tuple[str, int, int | None, int, str, str]]) -> AllocationIndex:
        """From (gpu_uuid, start_ms, end_ms, contract_id, contract name, customer name) rows."""
        grouped: dict[str, list[tuple[int, int, Holder]]] = {}
        for uuid, start, end, contract_id, contract, customer in rows:
            grouped.setdefault(uuid, []).append(
                (start, OPEN_END_MS if end is None else end, Holder(contract_id, contract, customer))
            )
        by_gpu = {}
        for uuid, items in grouped.items():
            items.sort(key=lambda item: item[0])
            starts, ends, holders = zip(*items, strict=True)
            by_gpu[uuid] = (starts, ends, holders)
        return cls(by_gpu)

    def holder(self, uuid: str, ts_ms: int) -> Holder | None:
        entry = self._by_gpu.get(uuid)
        if entry is None:
            return None
        starts, ends, holders = entry
        i = bisect_right(starts, ts_ms) - 1
        return holders[i] if i >= 0 and ts_ms < ends[i] else None

    def customer_of(self, uuids: Sequence[str], now_s: float) -> list[str | None]:
        """The customer holding each GPU at `now_s` (UTC epoch seconds), None where unallocated."""
        ts_ms = round(now_s * 1000)
        return [None if (h := self.holder(uuid, ts_ms)) is None else h.customer for uuid in uuids]

    def allocated_mask(self, sample: FleetSample, now_s: float | None = None) -> np.ndarray:
        """True for each GPU of `sample` allocated at `now_s` (default: the sample's time)."""
        ts_ms = round((sample.ts if now_s is None else now_s) * 1000)
        return np.fromiter((self.holder(g.uuid, ts_ms) is not None for g in sample.gpus), dtype=bool, count=len(sample))

"""GPUs doing work nobody pays for: busy (processes, or utilization over BUSY_UTIL_PCT) while no
contract holds them. Flagged per sample with numpy masks, and recorded once per episode as a
`busy_unallocated` event in the history so that alerts can raise it and people can look it up."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass

import numpy as np

from gpuops.core.store import meta
from gpuops.core.telemetry import FleetSample

log = logging.getLogger("gpuops.allocations")

BUSY_UTIL_PCT = 10.0
EVENT_KIND = "busy_unallocated"


@dataclass(frozen=True)
class BusyUnallocated:
    """`mask[i]` is True when GPU i of the sample is busy and unallocated; `reason(i)` says why.
    Reasons are worded on demand: thousands may be flagged per poll, few are ever read."""

    sample: FleetSample
    mask: np.ndarray
    has_work: np.ndarray
    hot: np.ndarray

    def reason(self, i: int) -> str:
        """Why GPU i is flagged ("" where it is not)."""
        if not self.mask[i]:
            return ""
        parts = []
        if self.has_work[i]:
            n = len(self.sample.processes[i])
            parts.append(f"{n} process{'es' if n != 1 else ''}" if n else "a workload")
        if self.hot[i]:
            parts.append(f"{self.sample.metrics['util_gpu_pct'][i]:.0f} % utilization")
        return f"busy ({', '.join(parts)}) but not allocated to any contract"


def busy_mask(sample: FleetSample) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(busy, has processes or workloads, utilization over the threshold) per GPU."""
    has_work = np.fromiter((len(p) > 0 for p in sample.processes), dtype=bool, count=len(sample))
    if sample.workloads:
        has_work |= np.fromiter((any(w.pod for w in ws) for ws in sample.workloads), dtype=bool, count=len(sample))
    with np.errstate(invalid="ignore"):
        hot = sample.metrics["util_gpu_pct"] > BUSY_UTIL_PCT
    return has_work | hot, has_work, hot


def find_busy_unallocated(sample: FleetSample, allocated: np.ndarray) -> BusyUnallocated:
    """Busy GPUs of `sample` outside `allocated` (the caller's mask, e.g. from
    `AllocationIndex.allocated_mask`, which it usually has already)."""
    busy, has_work, hot = busy_mask(sample)
    return BusyUnallocated(sample, busy & ~allocated, has_work, hot)


class BusyUnallocatedRecorder:
    """Writes one event when a GPU becomes busy-but-unallocated, not one per poll."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._flagged: set[str] = set()

    def record(self, sample: FleetSample, found: BusyUnallocated) -> list[str]:
        """Record the GPUs newly flagged in this sample; returns their UUIDs."""
        now_flagged = {sample.gpus[i].uuid: int(i) for i in np.flatnonzero(found.mask)}
        new = [uuid for uuid in now_flagged if uuid not in self._flagged]
        self._flagged = set(now_flagged)
        if new:
            reasons = {uuid: found.reason(now_flagged[uuid]) for uuid in new}
            ids = dict(self.conn.execute(
                f"SELECT uuid, id FROM gpus WHERE uuid IN ({', '.join('?' * len(new))})", new
            ).fetchall())
            ts_ms = round(sample.ts * 1000)
            with meta.write_transaction(self.conn):
                self.conn.executemany(
                    "INSERT INTO events (ts_ms, kind, gpu_id, code, detail) VALUES (?, ?, ?, NULL, ?)",
                    [
                        (ts_ms, EVENT_KIND, ids.get(uuid), reasons[uuid] if uuid in ids else f"{uuid}: {reasons[uuid]}")
                        for uuid in new
                    ],
                )
            log.info("%d GPU(s) busy but not allocated", len(new))
        return new

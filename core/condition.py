"""The one health vocabulary every view speaks: ok, stale, unknown, warning, critical, lost.

The health model grades ok / warning / critical; three things operators must never confuse
with a grade come on top: a lost GPU, a GPU whose numbers are stale (no fresh data for several
polls), and one whose state the driver left unknown. Each GPU has exactly one condition, counted
by `count_conditions` for the KPI strip, the snapshot exports and the PDF alike, and matched by
the grid's `health:` filter. Codes are ordered by how urgently they need a look, so a node's
condition is the maximum of its GPUs'.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from gpuops.core.health import Health
from gpuops.core.telemetry import GpuState


class Condition(IntEnum):
    OK = 0
    STALE = 1
    UNKNOWN = 2
    WARNING = 3
    CRITICAL = 4
    LOST = 5

    @property
    def label(self) -> str:
        return self.name.lower()


def conditions(level: np.ndarray | None, state: np.ndarray, stale: np.ndarray | None) -> np.ndarray:
    """Per-GPU Condition codes (uint8) from health levels, GPU states and the stale mask.
    Lost wins over everything (a lost GPU is news even when old); stale hides the grade of old
    data; an unknown state is shown as such unless the health model found something worse."""
    out = np.zeros(len(state), dtype=np.uint8)
    out[state == GpuState.UNKNOWN] = Condition.UNKNOWN
    if level is not None:
        out[level == Health.WARNING] = Condition.WARNING
        out[level == Health.CRITICAL] = Condition.CRITICAL
    if stale is not None:
        out[stale] = Condition.STALE
    out[state == GpuState.LOST] = Condition.LOST
    return out


def count_conditions(codes: np.ndarray) -> dict[Condition, int]:
    """How many GPUs are in each condition (every condition present, zero included)."""
    counts = np.bincount(codes, minlength=len(Condition))
    return {condition: int(counts[condition]) for condition in Condition}

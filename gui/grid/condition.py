"""What the console shows for each GPU's health at a glance: one of five conditions.

The health model grades OK / warning / critical; the console adds two things operators must
never confuse with a grade: a lost GPU, and a GPU whose numbers are stale (no fresh data for
several polls). Codes are ordered by how urgently they need a look, so a node's condition is
the maximum of its GPUs'.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from gpuops.core.health import Health
from gpuops.core.telemetry import GpuState


class Condition(IntEnum):
    OK = 0
    STALE = 1
    WARNING = 2
    CRITICAL = 3
    LOST = 4

    @property
    def label(self) -> str:
        return self.name.lower()


def conditions(level: np.ndarray | None, state: np.ndarray, stale: np.ndarray | None) -> np.ndarray:
    """Per-GPU Condition codes (uint8) from health levels, GPU states and the stale mask.
    Lost wins over stale (a lost GPU is news even when old); stale hides the grade of old data."""
    out = np.zeros(len(state), dtype=np.uint8)
    if level is not None:
        out[level == Health.WARNING] = Condition.WARNING
        out[level == Health.CRITICAL] = Condition.CRITICAL
    if stale is not None:
        out[stale] = Condition.STALE
    out[state == GpuState.LOST] = Condition.LOST
    return out

"""Grading each poll on the poller's worker thread, so the GUI thread only draws.

At 10,000 GPUs the health model, per-GPU freshness, the fleet KPIs and the plotted series cost
tens of milliseconds of Python and numpy. Done on the GUI thread, while the history writer and
the alert and allocation workers hold the GIL in turn, that work stretched the sample-handling
slot past 50 ms. The poller runs `PollGrader.grade` right after each poll and hands the frozen
`GradedPoll` over with the sample; a sample that arrives without one (tests, snapshots) is
graded on the spot by the same grader, so there is one health and freshness history either way.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from gpuops.core.condition import conditions
from gpuops.core.health import FleetHealth, HealthModel
from gpuops.core.telemetry import FleetSample, read_only
from gpuops.gui.live.fleet_index import FleetIndex
from gpuops.gui.live.freshness import Freshness
from gpuops.gui.live.recent_history import sample_series
from gpuops.gui.window.kpi_strip import FleetKpis, fleet_kpis


@dataclass(frozen=True)
class GradedPoll:
    """One poll graded: its inventory index, plotted series, health per GPU, stale mask,
    last-fresh times (UTC epoch seconds) and the fleet's headline numbers. Never mutated: its
    arrays are made read-only here, since the window, the alerts and the customers consoles read
    them on their own threads."""

    index: FleetIndex
    series: dict[str, np.ndarray]
    health: FleetHealth
    stale: np.ndarray
    last_fresh_ts: np.ndarray
    kpis: FleetKpis

    def __post_init__(self) -> None:
        for array in (*self.series.values(), self.health.level, self.stale, self.last_fresh_ts):
            read_only(array)


class PollGrader:
    """Keeps the health model's XID memory and each GPU's freshness across polls. Called from
    the poller's worker thread (and, for samples handed over directly, the GUI thread): a lock
    keeps the two from interleaving."""

    def __init__(self, interval_s: float) -> None:
        self._lock = threading.Lock()
        self._health_model = HealthModel()
        self._freshness = Freshness(interval_s)
        self._index: FleetIndex | None = None

    def grade(self, sample: FleetSample) -> GradedPoll:
        with self._lock:
            if self._index is None or not self._index.matches(sample.gpus):
                self._index = FleetIndex(sample.gpus)
            health = self._health_model.assess(sample)
            stale = self._freshness.update(sample, self._index)
            return GradedPoll(
                index=self._index,
                series=sample_series(sample),
                health=health,
                stale=stale,
                last_fresh_ts=self._freshness.last_fresh_ts.copy(),  # the grader keeps updating its own
                kpis=fleet_kpis(sample, conditions(health.level, sample.state, stale)),
            )

"""`gpuops_node_lifecycle{node, state}` for the agent: each node's lifecycle state as Prometheus
writes an enum, one series per state, 1 for the node's current one and 0 for the others (so
`gpuops_node_lifecycle{state="rma"} == 1` selects the nodes in RMA).

The agent is often on a node without the book: nothing recorded there means production, as
`gpuops status` says. Where a history is given, its states are read again at most every
`refresh_s`, read-only; an unusable history leaves the family out (logged once while it lasts)
rather than claim production.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from prometheus_client.metrics_core import GaugeMetricFamily

from gpuops.core.lifecycle.states import DEFAULT_STATE, State
from gpuops.core.logonce import LastingProblem

log = logging.getLogger("gpuops.lifecycle")

NODE_LIFECYCLE = "gpuops_node_lifecycle"
REFRESH_S = 10.0


def lifecycle_family(nodes: Iterable[str], states: Mapping[str, State]) -> GaugeMetricFamily:
    """Every state of every node in `nodes`, 1 for the one it is in (`states`; production when absent)."""
    family = GaugeMetricFamily(
        NODE_LIFECYCLE, "The node's lifecycle state (burn_in, production, draining, ...): 1 for the current one.",
        labels=("node", "state"),
    )
    for node in sorted(set(nodes)):
        current = states.get(node, DEFAULT_STATE)
        for state in State:
            family.add_metric([node, state.value], 1.0 if state is current else 0.0)
    return family


class LifecycleFollower:
    """The node states of the history at `path`, read again at most every `refresh_s`. `states()`
    is None while the history cannot be read."""

    def __init__(self, path: Path, *, refresh_s: float = REFRESH_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self._refresh_s = refresh_s
        self._clock = clock
        self._states: dict[str, State] | None = None
        self._read_at: float | None = None
        self._problem = LastingProblem(log, logging.WARNING, prefix=f"lifecycle states from {self.path}: ")

    def states(self) -> dict[str, State] | None:
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._refresh_s:
            from gpuops.core.lifecycle.book import recorded_view
            from gpuops.core.store.errors import StoreError

            self._read_at = now
            try:
                view = recorded_view(self.path)
            except StoreError as exc:
                self._problem.occur(str(exc))
                self._states = None
            else:
                self._problem.resolve()
                self._states = {node: record.state for node, record in view.nodes.items()}
        return self._states

"""When each GPU last had fresh data, so that old numbers are never shown as live.

A GPU's reading is fresh when the GPU answered this poll (its state is not unknown) and the
source did not mark its node stale. A GPU without fresh data for `STALE_AFTER_INTERVALS` poll
intervals is stale (core.health.stale_mask); a node the source marks stale is stale at once.
"""

from __future__ import annotations

import numpy as np

from gpuops.core.health import stale_mask
from gpuops.core.telemetry import FleetSample, GpuState
from gpuops.gui.live.fleet_index import FleetIndex


class Freshness:
    """Per-GPU time of the last fresh reading (UTC epoch seconds), following inventory changes."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._index: FleetIndex | None = None
        self.last_fresh_ts = np.zeros(0)
        self.stale = np.zeros(0, dtype=bool)

    def update(self, sample: FleetSample, index: FleetIndex) -> np.ndarray:
        """Take in a poll; returns the per-GPU stale mask (also kept in `stale`)."""
        if index is not self._index:
            carried = np.full(len(index), sample.ts)  # a GPU first seen now counts as fresh
            if self._index is not None:
                for new, uuid in enumerate(index.uuids):
                    old = self._index.position(uuid)
                    if old is not None:
                        carried[new] = self.last_fresh_ts[old]
            self.last_fresh_ts, self._index = carried, index
        node_stale = index.stale_mask(sample.stale_nodes)
        fresh = sample.state != GpuState.UNKNOWN
        if node_stale is not None:
            fresh &= ~node_stale
        self.last_fresh_ts[fresh] = sample.ts
        stale = stale_mask(self.last_fresh_ts, sample.ts, self.interval_s)
        self.stale = stale if node_stale is None else stale | node_stale
        return self.stale

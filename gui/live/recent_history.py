"""Recent history kept in memory for the live plots.

`FleetHistory` keeps the last few minutes of every GPU in one columnar ring (one float32 row per
poll), so selecting another GPU shows its history at once. `TraceRing` holds the selected GPU's
copy in a doubled buffer: each sample is written twice, so the visible window is always one
contiguous slice that the plots can take without copying.
"""

from __future__ import annotations

import numpy as np

from gpuops.core.telemetry import FleetSample
from gpuops.gui.live.fleet_index import FleetIndex

#: The plotted series, with the units in their names.
HISTORY_SERIES: tuple[str, ...] = ("util_gpu_pct", "mem_used_gib", "temp_c", "power_w")

_BYTES_PER_GIB = float(1 << 30)


def sample_series(sample: FleetSample) -> dict[str, np.ndarray]:
    """This poll's value of every plotted series, one float64 column each (NaN = missing)."""
    return {
        "util_gpu_pct": sample.metrics["util_gpu_pct"],
        "mem_used_gib": sample.metrics["mem_used_bytes"] / _BYTES_PER_GIB,
        "temp_c": sample.metrics["temp_c"],
        "power_w": sample.metrics["power_w"],
    }


class FleetHistory:
    """The last `capacity` polls of every GPU of one inventory."""

    def __init__(self, index: FleetIndex, capacity: int) -> None:
        if capacity < 2:
            raise ValueError(f"history capacity must be at least 2 polls, got {capacity}")
        self.index = index
        self.capacity = capacity
        self.count = 0
        self._next = 0
        self._ts = np.zeros(capacity, dtype=np.float64)
        self._series = {
            name: np.full((capacity, len(index)), np.nan, dtype=np.float32) for name in HISTORY_SERIES
        }

    def append(self, sample: FleetSample, series: dict[str, np.ndarray]) -> None:
        """Record one poll; `series` is `sample_series(sample)` for this inventory."""
        row = self._next
        self._ts[row] = sample.ts
        for name, column in series.items():
            self._series[name][row] = column
        self._next = (row + 1) % self.capacity
        self.count = min(self.count + 1, self.capacity)

    def _order(self) -> np.ndarray:
        """Ring rows from oldest to newest."""
        return (np.arange(self.count) + self._next - self.count) % self.capacity

    def gpu(self, position: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Timestamps and every series of one GPU, oldest first (copies)."""
        rows = self._order()
        return self._ts[rows], {name: data[rows, position] for name, data in self._series.items()}

    def carried_to(self, index: FleetIndex) -> FleetHistory:
        """A history for a changed inventory keeping what is known of GPUs still present."""
        moved = FleetHistory(index, self.capacity)
        rows = self._order()
        moved.count = self.count
        moved._next = self.count % self.capacity
        moved._ts[: self.count] = self._ts[rows]
        pairs = [(new, self.index.position(uuid)) for new, uuid in enumerate(index.uuids)]
        kept = [(new, old) for new, old in pairs if old is not None]
        if kept:
            new_cols, old_cols = (np.array(c) for c in zip(*kept, strict=True))
            for name, data in self._series.items():
                moved._series[name][: self.count, new_cols] = data[rows][:, old_cols]
        return moved


class TraceRing:
    """A doubled ring of one GPU's series: `window()` is a contiguous view, never a copy."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.count = 0
        self._next = 0
        self._ts = np.zeros(2 * capacity, dtype=np.float64)
        self._series = {name: np.full(2 * capacity, np.nan, dtype=np.float32) for name in HISTORY_SERIES}

    def load(self, ts: np.ndarray, series: dict[str, np.ndarray]) -> None:
        """Replace the contents with the newest `capacity` points of a history."""
        n = min(len(ts), self.capacity)
        for buffer, values in [(self._ts, ts)] + [(self._series[k], v) for k, v in series.items()]:
            buffer[:n] = buffer[self.capacity : self.capacity + n] = values[len(values) - n :]
        self.count = n
        self._next = n % self.capacity

    def append(self, ts: float, values: dict[str, float]) -> None:
        slot, mirror = self._next, self._next + self.capacity
        self._ts[slot] = self._ts[mirror] = ts
        for name, value in values.items():
            data = self._series[name]
            data[slot] = data[mirror] = value
        self._next = (slot + 1) % self.capacity
        self.count = min(self.count + 1, self.capacity)

    def window(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Views of the points held, oldest first."""
        end = self._next + self.capacity
        start = end - self.count
        return self._ts[start:end], {name: data[start:end] for name, data in self._series.items()}

"""The failing GPUs of the simulated fleet: when they are lost, their error counters and the
XID events they raise, all as functions of time so any span can be replayed exactly.

- lost GPUs fall off the bus (XID 79) and stay lost for hours until the node is power-cycled;
  two of them are half a cycle apart, so one is always down;
- ECC GPUs collect corrected errors and, ever more rarely, uncorrectable ones (XID 48, then
  94 contained or 95 uncontained, then 63 for the row remap that is now pending);
- XID GPUs run applications that keep crashing with XID 13, 31 or 43.

Volatile counters start at zero at the source's start time (driver load); aggregate counters
add a lifetime history from before it.
"""

from __future__ import annotations

import numpy as np

from gpuops.core.sources.demo_fleet import Failure, FleetLayout
from gpuops.core.sources.demo_random import Hasher
from gpuops.core.sources.demo_workloads import DAY_S, HOUR_S

LOST_PERIOD_S = 8 * HOUR_S
LOST_UP_SHARE = 1 / 8  # back for an hour after each power cycle, then off the bus again
XID_FELL_OFF_BUS = 79

# Uncorrectable error k arrives at start + spacing * k**2: bursts early, rarer with time.
ECC_UNCORRECTABLE_SPACING_S = (1500.0, 3000.0)
ECC_CORRECTED_PER_SQRT_MINUTE = (3.0, 9.0)
XID_DOUBLE_BIT_ECC, XID_CONTAINED, XID_UNCONTAINED, XID_ROW_REMAP = 48, 94, 95, 63
UNCONTAINED_SHARE = 0.25

APP_XID_CODES = (13, 31, 43)
APP_XID_PERIOD_S = (900.0, 2700.0)
APP_XID_JITTER = 0.8  # share of its period an event may drift by
REPLAYS_PER_FALL = 25

# A poll never reports events older than this before its own time.
MAX_EVENT_LOOKBACK_S = DAY_S


def _integers(low: int, high: int, unit: np.ndarray) -> np.ndarray:
    return low + np.floor((high - low + 1) * unit)


class FailureModel:
    """Which failing GPUs are lost at t, every GPU's error counters, and XID events in a span."""

    def __init__(self, layout: FleetLayout, hasher: Hasher) -> None:
        self._hasher = hasher
        failure = layout.failure_of_gpu
        n = len(failure)
        gpu = np.arange(n)
        self.lost_gpus = np.flatnonzero(failure == Failure.LOST)
        self.ecc_gpus = np.flatnonzero(failure == Failure.ECC)
        self.app_xid_gpus = np.flatnonzero(failure == Failure.XID)

        lost_share = hasher.unit("lost-phase", self.lost_gpus)
        lost_share[:2] = (0.0, 0.5)[: min(2, lost_share.size)]
        self._lost_phase_s = lost_share * LOST_PERIOD_S

        self._ecc_delay_s = HOUR_S * hasher.unit("ecc-delay", self.ecc_gpus)
        low, high = ECC_UNCORRECTABLE_SPACING_S
        self._ecc_spacing_s = low + (high - low) * hasher.unit("ecc-spacing", self.ecc_gpus)
        low, high = ECC_CORRECTED_PER_SQRT_MINUTE
        self._ecc_corrected_rate = low + (high - low) * hasher.unit("ecc-corrected-rate", self.ecc_gpus)

        low, high = APP_XID_PERIOD_S
        self._app_period_s = low + (high - low) * hasher.unit("app-xid-period", self.app_xid_gpus)
        self._app_phase_s = self._app_period_s * hasher.unit("app-xid-phase", self.app_xid_gpus)

        # Lifetime history before the start time: a few healthy GPUs have old corrected
        # errors, remapped rows or PCIe replays, as real fleets do.
        is_ecc = failure == Failure.ECC
        self._corrected_history = np.where(
            is_ecc,
            _integers(50, 400, hasher.unit("ecc-history", gpu)),
            np.where(hasher.unit("sbe-any", gpu) < 0.05, _integers(1, 30, hasher.unit("sbe-history", gpu)), 0.0),
        )
        self._uncorrected_history = np.where(is_ecc, _integers(1, 4, hasher.unit("dbe-history", gpu)), 0.0)
        self._remapped_correctable = np.where(
            is_ecc | (hasher.unit("remap-any", gpu) < 0.02), _integers(1, 3, hasher.unit("remap-history", gpu)), 0.0
        )
        self._pending = is_ecc.astype(np.float64)
        self._replay_history = np.where(
            failure == Failure.LOST,
            _integers(50, 200, hasher.unit("replay-lost", gpu)),
            np.where(hasher.unit("replay-any", gpu) < 0.10, _integers(1, 20, hasher.unit("replay-history", gpu)), 0.0),
        )
        self._n = n

    # --- lost GPUs ----------------------------------------------------------------------

    def _falls(self, t: float) -> np.ndarray:
        """Index of the latest fall off the bus at or before t, per lost GPU."""
        return np.floor((t - self._lost_phase_s) / LOST_PERIOD_S - LOST_UP_SHARE).astype(np.int64)

    def lost(self, t: float) -> np.ndarray:
        """True for GPUs that are off the bus at t."""
        lost = np.zeros(self._n, dtype=bool)
        position = ((t - self._lost_phase_s) / LOST_PERIOD_S) % 1.0
        lost[self.lost_gpus] = position >= LOST_UP_SHARE
        return lost

    # --- counters -----------------------------------------------------------------------

    def _uncorrectable_counts(self, t: float, start_ts: float) -> np.ndarray:
        """Uncorrectable errors since `start_ts`, per ECC GPU."""
        since = np.maximum(t - start_ts - self._ecc_delay_s, 0.0)
        return np.floor(np.sqrt(since / self._ecc_spacing_s)).astype(np.int64)

    def counters(self, t: float, start_ts: float) -> dict[str, np.ndarray]:
        """Cumulative ECC, row-remapping and PCIe replay counters of every GPU at t; the
        volatile ones count from `start_ts`, the driver load."""
        since = max(t - start_ts, 0.0)
        corrected = np.zeros(self._n)
        uncorrected = np.zeros(self._n)
        corrected[self.ecc_gpus] = np.floor(self._ecc_corrected_rate * np.sqrt(since / 60.0))
        uncorrected[self.ecc_gpus] = self._uncorrectable_counts(t, start_ts)
        replays = self._replay_history.copy()
        falls_since_start = np.maximum(self._falls(t) - self._falls(start_ts), 0)
        replays[self.lost_gpus] += REPLAYS_PER_FALL * falls_since_start
        return {
            "ecc_corrected_volatile": corrected,
            "ecc_uncorrected_volatile": uncorrected,
            "ecc_corrected_aggregate": self._corrected_history + corrected,
            "ecc_uncorrected_aggregate": self._uncorrected_history + uncorrected,
            "remapped_rows_correctable": self._remapped_correctable.copy(),
            "remapped_rows_uncorrectable": self._uncorrected_history + uncorrected,
            "remapped_rows_pending": self._pending.copy(),
            "remapped_rows_failure": np.zeros(self._n),
            "pcie_replay_count": replays,
        }

    # --- XID events ---------------------------------------------------------------------

    def _app_event_time(self, rows: np.ndarray, k: np.ndarray) -> np.ndarray:
        jitter = self._hasher.unit("app-xid-jitter", self.app_xid_gpus[rows], k)
        return self._app_phase_s[rows] + self._app_period_s[rows] * (k + APP_XID_JITTER * jitter)

    def _app_events_through(self, t: float) -> np.ndarray:
        """Index of the latest application XID at or before t, per XID GPU."""
        rows = np.arange(self.app_xid_gpus.size)
        k = np.floor((t - self._app_phase_s) / self._app_period_s).astype(np.int64)
        return k - (self._app_event_time(rows, k) > t)

    def xid_events(self, after: float, until: float, start_ts: float) -> list[tuple[int, int, float]]:
        """(gpu, code, ts) for every XID raised in (after, until], oldest first."""
        after = max(after, until - MAX_EVENT_LOOKBACK_S)
        events: list[tuple[int, int, float]] = []
        if after >= until:
            return events

        first, last = self._app_events_through(after), self._app_events_through(until)
        for row in np.flatnonzero(last > first):
            ks = np.arange(first[row] + 1, last[row] + 1)
            times = self._app_event_time(np.full(ks.size, row), ks)
            picks = self._hasher.unit("app-xid-code", self.app_xid_gpus[row], ks)
            for ts, pick in zip(times, picks, strict=True):
                events.append((int(self.app_xid_gpus[row]), APP_XID_CODES[int(pick * len(APP_XID_CODES))], float(ts)))

        first, last = self._uncorrectable_counts(after, start_ts), self._uncorrectable_counts(until, start_ts)
        for row in np.flatnonzero(last > first):
            gpu = int(self.ecc_gpus[row])
            for k in range(int(first[row]) + 1, int(last[row]) + 1):
                ts = float(start_ts + self._ecc_delay_s[row] + self._ecc_spacing_s[row] * k * k)
                uncontained = self._hasher.unit("ecc-uncontained", gpu, k)[0] < UNCONTAINED_SHARE
                memory_error = XID_UNCONTAINED if uncontained else XID_CONTAINED
                for code in (XID_DOUBLE_BIT_ECC, memory_error, XID_ROW_REMAP):
                    events.append((gpu, code, ts))

        first, last = self._falls(after), self._falls(until)
        for row in np.flatnonzero(last > first):
            for k in range(int(first[row]) + 1, int(last[row]) + 1):
                ts = float(self._lost_phase_s[row] + LOST_PERIOD_S * (k + LOST_UP_SHARE))
                events.append((int(self.lost_gpus[row]), XID_FELL_OFF_BUS, ts))

        events.sort(key=lambda event: (event[2], event[0]))
        return events

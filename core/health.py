"""Per-GPU health, worst-wins, with a short reason text; node health rolls up its GPUs.

Computed with numpy masks over a whole `FleetSample`, so 10,000 GPUs cost a few array
operations; reason strings are built only for the (few) GPUs that are not OK.

Inputs, in the order their findings are listed:
- state: lost is critical, unknown is a warning;
- memory: uncorrectable ECC errors and row-remap failures are critical (RMA), pending remaps
  a warning (reset needed);
- XID events seen within `xid_window_s`, graded by the catalogue's immediate action;
- temperature (GPU and HBM) against the GPU's slowdown threshold: at or over it is critical,
  within `temp_margin_c` of it a warning;
- hardware and thermal clock throttling: a warning.
Staleness (no fresh data for 3 poll intervals) is a separate dimension: a stale GPU keeps its
last health but must be drawn as stale, never as live.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from gpuops.core.telemetry import THROTTLE_REASON_BITS, FleetSample, GpuState
from gpuops.core.xid_catalog import describe_xid


class Health(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2

    @property
    def label(self) -> str:
        return self.name.lower()


STALE_AFTER_INTERVALS = 3

# Catalogue action classes that need no operator action, and those the application owner fixes.
_XID_IGNORABLE = {"IGNORE", ""}
_XID_APPLICATION = {"RESTART_APP", "CHECK_APP/CUDA", "RESTART_VM"}

# Throttle bits that mean the hardware is protecting itself, with the words operators use.
_THROTTLE_FINDINGS: tuple[tuple[str, str], ...] = (
    ("hw_slowdown", "HW slowdown"),
    ("hw_thermal_slowdown", "HW thermal slowdown"),
    ("hw_power_brake_slowdown", "HW power brake"),
    ("sw_thermal_slowdown", "SW thermal slowdown"),
)


def xid_severity(code: int) -> Health:
    """How bad an XID is, from the catalogue's immediate action."""
    action = describe_xid(code).immediate_action
    if action in _XID_IGNORABLE:
        return Health.OK
    if action in _XID_APPLICATION:
        return Health.WARNING
    return Health.CRITICAL


@dataclass(frozen=True)
class FleetHealth:
    """Health of every GPU of one sample, in sample order, and of every node."""

    level: np.ndarray  # uint8 Health codes
    reasons: tuple[str, ...]  # "" for healthy GPUs
    node_level: dict[str, Health]

    def of(self, i: int) -> Health:
        return Health(int(self.level[i]))


def _temperature_reason(label: str, temp: np.ndarray, limit: np.ndarray, where: str) -> Callable[[int], str]:
    """The reason of a GPU `where` ("at" or "near") its slowdown temperature, written only for GPUs found."""
    return lambda i: f"{label} {temp[i]:.0f} °C {where} slowdown ({limit[i]:.0f} °C)"


class HealthModel:
    """Grades each sample; remembers recent XID events, which arrive once but matter for a while."""

    def __init__(self, *, xid_window_s: float = 3600.0, temp_margin_c: float = 5.0) -> None:
        self.xid_window_s = xid_window_s
        self.temp_margin_c = temp_margin_c
        self._recent_xids: dict[str, list[tuple[float, int]]] = {}
        self._gpus: tuple | None = None  # the inventory the arrays below were built for

    def _inventory_arrays(self, sample: FleetSample) -> None:
        """Per-GPU thresholds and node codes, rebuilt only when the inventory changes."""
        if sample.gpus is self._gpus:
            return
        gpus = sample.gpus
        self._slowdown_c = np.array([np.nan if g.slowdown_temp_c is None else g.slowdown_temp_c for g in gpus])
        self._mem_max_c = np.array([np.nan if g.mem_max_temp_c is None else g.mem_max_temp_c for g in gpus])
        self._node_names, self._node_code = np.unique([g.node for g in gpus], return_inverse=True)
        self._gpus = gpus

    def _remember_xids(self, sample: FleetSample) -> None:
        for event in sample.xid_events:
            self._recent_xids.setdefault(event.uuid, []).append((event.ts, event.code))
        horizon = sample.ts - self.xid_window_s
        for uuid in list(self._recent_xids):
            kept = [(ts, code) for ts, code in self._recent_xids[uuid] if ts >= horizon]
            if kept:
                self._recent_xids[uuid] = kept
            else:
                del self._recent_xids[uuid]

    def assess(self, sample: FleetSample) -> FleetHealth:
        self._remember_xids(sample)
        self._inventory_arrays(sample)
        n = len(sample)
        m = sample.metrics
        # A reason is its text, or for findings whose text names the GPU's values a function of the position.
        findings: list[tuple[np.ndarray, Health, str | Callable[[int], str]]] = []

        def add(mask: np.ndarray, level: Health, reason: str | Callable[[int], str]) -> None:
            if mask.any():
                findings.append((mask, level, reason))

        state = sample.state
        add(state == GpuState.LOST, Health.CRITICAL, "GPU lost (fell off the bus)")
        add(state == GpuState.UNKNOWN, Health.WARNING, "GPU state unknown (driver error)")

        with np.errstate(invalid="ignore"):
            ecc = m["ecc_uncorrected_volatile"]
            add(ecc > 0, Health.CRITICAL, lambda i: f"{int(ecc[i])} uncorrectable ECC errors")
            add(m["remapped_rows_failure"] > 0, Health.CRITICAL, "row remap failure (RMA)")
            add(m["remapped_rows_pending"] > 0, Health.WARNING, "row remap pending (reset needed)")

            for name, label, limit in (("temp_c", "GPU", self._slowdown_c), ("mem_temp_c", "HBM", self._mem_max_c)):
                temp = m[name]
                over = temp >= limit
                near = (temp >= limit - self.temp_margin_c) & ~over
                add(over, Health.CRITICAL, _temperature_reason(label, temp, limit, "at"))
                add(near, Health.WARNING, _temperature_reason(label, temp, limit, "near"))

            mask_bits = np.nan_to_num(m["throttle_reasons_mask"], nan=0).astype(np.int64)
            for bit_name, words in _THROTTLE_FINDINGS:
                add((mask_bits & THROTTLE_REASON_BITS[bit_name]) != 0, Health.WARNING, words)

        if self._recent_xids:
            positions = {gpu.uuid: i for i, gpu in enumerate(sample.gpus)}
            for uuid, events in self._recent_xids.items():
                position = positions.get(uuid)
                if position is None:
                    continue
                code = max(events, key=lambda e: (xid_severity(e[1]), e[0]))[1]
                xid_level = xid_severity(code)
                if xid_level > Health.OK:
                    one = np.zeros(n, dtype=bool)
                    one[position] = True
                    findings.append((one, xid_level, describe_xid(code).summary))

        level = np.zeros(n, dtype=np.uint8)
        for mask, grade, _ in findings:
            np.maximum(level, np.where(mask, np.uint8(grade), np.uint8(0)), out=level)

        reasons = [""] * n
        for i in np.flatnonzero(level).tolist():
            # Worst first, then in the order listed above.
            parts = [(grade, r(i) if callable(r) else r) for mask, grade, r in findings if mask[i]]
            parts.sort(key=lambda p: -p[0])
            reasons[i] = "; ".join(text for _, text in parts)

        worst = np.zeros(len(self._node_names), dtype=np.uint8)
        np.maximum.at(worst, self._node_code, level)
        node_level = {str(node): Health(int(grade)) for node, grade in zip(self._node_names, worst, strict=True)}
        return FleetHealth(level=level, reasons=tuple(reasons), node_level=node_level)


def stale_mask(last_fresh_ts: np.ndarray, now: float, interval_s: float) -> np.ndarray:
    """True where a GPU has had no fresh data for `STALE_AFTER_INTERVALS` poll intervals."""
    with np.errstate(invalid="ignore"):
        return ~(now - last_fresh_ts <= STALE_AFTER_INTERVALS * interval_s)

"""The values rule conditions compare: the sample's metric columns plus derived signals, one
float64 array per subject (NaN = unknown, which never satisfies a condition).

Three kinds of subject: each GPU, each node, and the telemetry source as a whole. Derived
signals are computed lazily, once per evaluation, and only if some enabled rule reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from gpuops.core.alerts.xid_severity import severities_of
from gpuops.core.telemetry import SAMPLE_METRICS, THROTTLE_REASON_BITS, FleetSample, GpuInventory, GpuState

GPU, NODE, SOURCE = "gpu", "node", "source"
TARGETS = (GPU, NODE, SOURCE)

# Hardware protecting itself (the "HW throttling" rule); SW power capping is normal operation.
HW_THROTTLE_BITS = ("hw_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown")

# Inventory facts a threshold may be relative to (per GPU; NaN when the GPU does not report it).
INVENTORY_REFS = ("slowdown_temp_c", "shutdown_temp_c", "mem_max_temp_c", "power_limit_w", "mem_total_bytes")
# Engine settings a threshold may be relative to (a scalar for every subject).
SETTING_REFS = ("poll_interval_s",)

DERIVED_GPU_SIGNALS: dict[str, str] = {
    "state_lost": "1 when the GPU is lost (fell off the bus), else 0",
    "state_unknown": "1 when the driver cannot tell the GPU's state, else 0",
    "mem_used_pct": "memory used as a percentage of the total",
    "throttle_hw": "1 when HW slowdown, HW thermal or HW power-brake throttling is active",
    **{f"throttle_{name}": f"1 when the {name} clocks-event reason is set" for name in THROTTLE_REASON_BITS},
    "xid_level": "worst XID severity this poll: 0 none, 1 info, 2 warning, 3 critical",
    "xid_code": "the XID code behind xid_level this poll",
    "data_age_s": "seconds since this GPU's data was fresh",
    "allocated": "1 when the GPU is allocated to a customer, 0 when not (unknown without allocations)",
}
NODE_SIGNALS: dict[str, str] = {
    "node_stale": "1 when the node's telemetry is stale (its exporter stopped answering)",
    "gpu_count": "GPUs the node reports now",
    "gpus_missing": "GPUs the node reported before but no longer does",
}
SOURCE_SIGNALS: dict[str, str] = {
    "source_errors": "problems the telemetry source reported this poll",
    "source_down": "1 while polling the telemetry source fails outright (no data at all), else 0",
}


def signal_names(target: str) -> tuple[str, ...]:
    if target == GPU:
        return (*SAMPLE_METRICS, *DERIVED_GPU_SIGNALS)
    if target == NODE:
        return tuple(NODE_SIGNALS)
    return tuple(SOURCE_SIGNALS)


def ref_names(target: str) -> tuple[str, ...]:
    """What a threshold may be relative to, for rules on `target`."""
    if target == GPU:
        return (*INVENTORY_REFS, *SETTING_REFS, *signal_names(GPU))
    return (*SETTING_REFS, *signal_names(target))


class Inventory:
    """Per-GPU facts of one inventory as arrays, and its nodes. Rebuilt only when the sample's
    inventory tuple changes (sources keep the same tuple while nothing appears or vanishes)."""

    def __init__(self, gpus: tuple[GpuInventory, ...]) -> None:
        self.gpus = gpus
        self.uuids = [g.uuid for g in gpus]
        self.position = {uuid: i for i, uuid in enumerate(self.uuids)}
        self.refs = {
            name: np.array([np.nan if getattr(g, name) is None else float(getattr(g, name)) for g in gpus])
            for name in INVENTORY_REFS
        }
        names, codes = np.unique(np.array([g.node for g in gpus], dtype=object), return_inverse=True)
        self.node_names: list[str] = [str(n) for n in names]
        self.node_of_gpu = codes.astype(np.int64)
        self.gpu_count = np.bincount(self.node_of_gpu, minlength=len(self.node_names))
        self.node_site: list[str | None] = [None] * len(self.node_names)
        for g, code in zip(gpus, self.node_of_gpu, strict=True):
            if self.node_site[code] is None:
                self.node_site[code] = g.site

    def __len__(self) -> int:
        return len(self.gpus)


@dataclass
class EvaluationContext:
    """What the caller knows besides the sample. `allocated` is one bool per GPU in sample
    order (None: allocations unknown, so allocation rules stay quiet); `customers` maps GPU
    uuid to customer; `last_fresh_ts` is per GPU when the source tracks freshness itself."""

    now: float
    poll_interval_s: float
    allocated: np.ndarray | None = None
    customers: Mapping[str, str] | None = None
    last_fresh_ts: np.ndarray | None = None
    source_error: str | None = None  # why the last poll failed outright (no sample at all)


class SignalFrame:
    """Signals of one sample for one target, computed on first use."""

    def __init__(
        self, target: str, sample: FleetSample, inventory: Inventory, context: EvaluationContext,
        node_baseline: np.ndarray | None = None,
    ) -> None:
        self.target = target
        self.sample = sample
        self.inventory = inventory
        self.context = context
        self._node_baseline = node_baseline
        self._cache: dict[str, np.ndarray] = {}

    @property
    def size(self) -> int:
        if self.target == GPU:
            return len(self.inventory)
        if self.target == NODE:
            return len(self.inventory.node_names)
        return 1

    def get(self, name: str) -> np.ndarray:
        cached = self._cache.get(name)
        if cached is None:
            cached = self._cache[name] = self._compute(name)
        return cached

    def ref(self, name: str) -> np.ndarray | float:
        if name == "poll_interval_s":
            return self.context.poll_interval_s
        if self.target == GPU and name in self.inventory.refs and name not in self.sample.metrics:
            return self.inventory.refs[name]
        return self.get(name)

    def _compute(self, name: str) -> np.ndarray:
        compute = _COMPUTERS[self.target].get(name)
        if compute is None:
            raise KeyError(f"no signal {name!r} for {self.target} rules")
        return compute(self)


def _metric(name: str) -> Callable[[SignalFrame], np.ndarray]:
    def compute(frame: SignalFrame) -> np.ndarray:
        column = frame.sample.metrics[name]
        fallback = frame.inventory.refs.get(name)
        if fallback is not None:  # power_limit_w, mem_total_bytes: the inventory when the poll lacks it
            return np.where(np.isnan(column), fallback, column)
        return column

    return compute


def _flag(mask: np.ndarray) -> np.ndarray:
    return mask.astype(np.float64)


def _throttle_bits(frame: SignalFrame, bits: int) -> np.ndarray:
    column = frame.sample.metrics["throttle_reasons_mask"]
    known = ~np.isnan(column)
    out = np.full(column.shape, np.nan)
    out[known] = ((column[known].astype(np.int64) & bits) != 0).astype(np.float64)
    return out


def _throttle_signal(bits: int) -> Callable[[SignalFrame], np.ndarray]:
    return lambda f: _throttle_bits(f, bits)


def _xid_worst(frame: SignalFrame, which: str) -> np.ndarray:
    """xid_level and xid_code together (both cached), from this poll's events."""
    n = frame.size
    level = np.zeros(n)
    code = np.full(n, np.nan)
    events = frame.sample.xid_events
    if events:
        position = frame.inventory.position
        known = [(position[e.uuid], e.code) for e in events if e.uuid in position]
        if known:
            where = np.array([k[0] for k in known], dtype=np.int64)
            codes = np.array([k[1] for k in known], dtype=np.int64)
            severity = severities_of(codes).astype(np.float64)
            # Worst severity wins; among equals the latest event (events come in time order).
            for i, sev, c in zip(where, severity, codes, strict=True):
                if sev >= level[i]:
                    level[i], code[i] = sev, c
    frame._cache.update(xid_level=level, xid_code=code)
    return frame._cache[which]


def _data_age(frame: SignalFrame) -> np.ndarray:
    context = frame.context
    if context.last_fresh_ts is not None:
        return context.now - context.last_fresh_ts
    age = np.full(frame.size, context.now - frame.sample.ts)
    if frame.sample.stale_nodes:
        # A stale node's GPUs carry their last good values; without per-GPU timestamps the
        # node rule says so, and this one must not claim they are fresh.
        stale = np.array([name in frame.sample.stale_nodes for name in frame.inventory.node_names], dtype=bool)
        age[stale[frame.inventory.node_of_gpu]] = np.inf
    return age


def _allocated(frame: SignalFrame) -> np.ndarray:
    allocated = frame.context.allocated
    if allocated is None:
        return np.full(frame.size, np.nan)
    allocated = np.asarray(allocated, dtype=bool)
    if allocated.shape != (frame.size,):
        raise ValueError(f"allocated has shape {allocated.shape}, expected ({frame.size},): one flag per GPU")
    return allocated.astype(np.float64)


def _mem_used_pct(frame: SignalFrame) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return frame.get("mem_used_bytes") / frame.get("mem_total_bytes") * 100.0


def _node_stale(frame: SignalFrame) -> np.ndarray:
    stale = frame.sample.stale_nodes
    if not stale:
        return np.zeros(frame.size)
    return _flag(np.array([name in stale for name in frame.inventory.node_names], dtype=bool))


def _gpus_missing(frame: SignalFrame) -> np.ndarray:
    if frame._node_baseline is None:
        return np.zeros(frame.size)
    return np.maximum(frame._node_baseline - frame.inventory.gpu_count, 0).astype(np.float64)


_GPU_COMPUTERS: dict[str, Callable[[SignalFrame], np.ndarray]] = {name: _metric(name) for name in SAMPLE_METRICS}
_GPU_COMPUTERS.update(
    {
        "state_lost": lambda f: _flag(f.sample.state == GpuState.LOST),
        "state_unknown": lambda f: _flag(f.sample.state == GpuState.UNKNOWN),
        "mem_used_pct": _mem_used_pct,
        "throttle_hw": _throttle_signal(sum(THROTTLE_REASON_BITS[b] for b in HW_THROTTLE_BITS)),
        **{f"throttle_{name}": _throttle_signal(bit) for name, bit in THROTTLE_REASON_BITS.items()},
        "xid_level": lambda f: _xid_worst(f, "xid_level"),
        "xid_code": lambda f: _xid_worst(f, "xid_code"),
        "data_age_s": _data_age,
        "allocated": _allocated,
    }
)
_COMPUTERS: dict[str, dict[str, Callable[[SignalFrame], np.ndarray]]] = {
    GPU: _GPU_COMPUTERS,
    NODE: {
        "node_stale": _node_stale,
        "gpu_count": lambda f: f.inventory.gpu_count.astype(np.float64),
        "gpus_missing": _gpus_missing,
    },
    SOURCE: {
        "source_errors": lambda f: np.array([float(len(f.sample.errors))]),
        "source_down": lambda f: np.array([float(f.context.source_error is not None)]),
    },
}

"""The telemetry model every source produces and every consumer reads.

A poll of the whole fleet is one `FleetSample`: static inventory per GPU plus one float64 numpy
column per metric, so that 10,000 GPUs cost a handful of array writes rather than 10,000 objects.
A value the GPU does not support (or that could not be read) is NaN in a column and `None` in
every record handed to people or scripts; it is never 0.

Everything is keyed by GPU UUID; `index` is only the local NVML enumeration order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType
from typing import Any

import numpy as np


class GpuState(IntEnum):
    """Whether a GPU answers. Stored as uint8 codes in `FleetSample.state`."""

    OK = 0
    LOST = 1
    UNKNOWN = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class GpuInventory:
    """Static facts about one GPU, read once when the source opens (or a GPU appears)."""

    uuid: str
    index: int
    node: str
    name: str
    serial: str | None = None
    pci_bus_id: str | None = None
    mem_total_bytes: int | None = None
    power_limit_w: float | None = None
    driver_version: str | None = None
    nvml_version: str | None = None
    cuda_version: str | None = None
    mig_mode: bool | None = None
    architecture: str | None = None
    vbios_version: str | None = None
    slowdown_temp_c: float | None = None
    shutdown_temp_c: float | None = None
    mem_max_temp_c: float | None = None
    site: str | None = None
    rack: str | None = None


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """A process holding GPU memory. `name` is None when this OS cannot see the PID
    (another PID namespace, such as a container): its memory is still real."""

    pid: int
    name: str | None
    used_mem_bytes: int | None


@dataclass(frozen=True, slots=True)
class MigDevice:
    """A MIG device of a GPU: a unit of its own, with its own UUID, framebuffer share and the
    processes of its GPU instance. `profile` is the slice's size as NVIDIA names it, e.g. `3g.40gb`.
    An exporter (`scrape:`, `prometheus:`) names the instance but not its MIG UUID: None there."""

    uuid: str | None
    gpu_instance_id: int | None
    compute_instance_id: int | None
    profile: str | None
    name: str | None
    mem_used_bytes: int | None
    mem_total_bytes: int | None
    processes: tuple[ProcessInfo, ...] = ()
    # Its GPU instance's real activity (NVML GPM per GPU instance), as the GPU-level columns.
    graphics_active_pct: float | None = None
    sm_active_pct: float | None = None
    sm_occupancy_pct: float | None = None
    tensor_active_pct: float | None = None
    dram_active_pct: float | None = None


def _process_records(processes: tuple[ProcessInfo, ...]) -> list[dict[str, Any]]:
    return [{"pid": p.pid, "name": p.name, "used_mem_bytes": p.used_mem_bytes} for p in processes]


@dataclass(frozen=True, slots=True)
class Workload:
    """Who uses a GPU as an exporter's labels tell it: a Kubernetes pod, a MIG instance, or a pod
    on a MIG instance (dcgm-exporter's pod/namespace/container and GPU_I_ID/GPU_I_PROFILE).
    Unknown parts are None; `mem_used_bytes` is the MIG instance's framebuffer use."""

    namespace: str | None = None
    pod: str | None = None
    container: str | None = None
    mig_instance_id: int | None = None
    mig_profile: str | None = None
    mem_used_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class XidEvent:
    """An XID error reported by the driver; `ts` in UTC epoch seconds."""

    uuid: str
    code: int
    ts: float


# Per-poll metric columns, in a fixed order: (name, whole number?, cumulative counter?).
# Counters (energy, ECC, remaps, replays) are cumulative as the driver reports them;
# consumers take deltas. Whole numbers are given as int in records.
_METRIC_TABLE: tuple[tuple[str, bool, bool], ...] = (
    ("util_gpu_pct", False, False),
    ("util_mem_pct", False, False),
    ("mem_used_bytes", True, False),
    ("mem_total_bytes", True, False),
    ("temp_c", False, False),
    ("mem_temp_c", False, False),
    ("power_w", False, False),
    ("power_limit_w", False, False),
    ("energy_j", False, True),
    ("sm_clock_mhz", True, False),
    ("mem_clock_mhz", True, False),
    ("fan_pct", False, False),
    ("pstate", True, False),
    ("pcie_tx_bytes_s", False, False),
    ("pcie_rx_bytes_s", False, False),
    ("pcie_link_gen", True, False),
    ("pcie_link_gen_max", True, False),
    ("pcie_link_width", True, False),
    ("pcie_link_width_max", True, False),
    ("ecc_corrected_volatile", True, True),
    ("ecc_uncorrected_volatile", True, True),
    ("ecc_corrected_aggregate", True, True),
    ("ecc_uncorrected_aggregate", True, True),
    ("remapped_rows_correctable", True, True),
    ("remapped_rows_uncorrectable", True, True),
    ("remapped_rows_pending", True, True),
    ("remapped_rows_failure", True, True),
    ("pcie_replay_count", True, True),
    ("throttle_reasons_mask", True, False),
    # Real activity, 0-100 (NVML GPM on Hopper and newer, DCGM profiling fields): the share of SMs
    # busy, of warp slots in use, of time in tensor pipes, DRAM bandwidth, and of time the graphics
    # engine had work. util_gpu_pct reads 100 % for one tiny kernel; these do not.
    ("graphics_active_pct", False, False),
    ("sm_active_pct", False, False),
    ("sm_occupancy_pct", False, False),
    ("tensor_active_pct", False, False),
    ("dram_active_pct", False, False),
    # Video engines (NVENC/NVDEC, NULL on boards without one) and the framebuffer the driver
    # reserves for itself (neither used nor free).
    ("enc_util_pct", False, False),
    ("dec_util_pct", False, False),
    ("mem_reserved_bytes", True, False),
)
SAMPLE_METRICS: tuple[str, ...] = tuple(name for name, _, _ in _METRIC_TABLE)
# The real-activity columns, which a MIG device carries too.
ACTIVITY_METRICS: tuple[str, ...] = (
    "graphics_active_pct", "sm_active_pct", "sm_occupancy_pct", "tensor_active_pct", "dram_active_pct",
)
INTEGER_METRICS: frozenset[str] = frozenset(name for name, whole, _ in _METRIC_TABLE if whole)
COUNTER_METRICS: frozenset[str] = frozenset(name for name, _, counter in _METRIC_TABLE if counter)

# NVML clocks-event (formerly "throttle") reason bits, from nvml.h nvmlClocksEventReason*.
THROTTLE_REASON_BITS: dict[str, int] = {
    "gpu_idle": 0x1,
    "applications_clocks_setting": 0x2,
    "sw_power_cap": 0x4,
    "hw_slowdown": 0x8,
    "sync_boost": 0x10,
    "sw_thermal_slowdown": 0x20,
    "hw_thermal_slowdown": 0x40,
    "hw_power_brake_slowdown": 0x80,
    "display_clock_setting": 0x100,
}


def decode_throttle_reasons(mask: float | int | None) -> list[str]:
    """Names of the set reason bits, in bit order; [] for no reason, and for unknown too
    (the unknown case shows as None in `throttle_reasons_mask`)."""
    if mask is None or (isinstance(mask, float) and math.isnan(mask)):
        return []
    bits = int(mask)
    return [name for name, bit in THROTTLE_REASON_BITS.items() if bits & bit]


def encode_throttle_reasons(names: list[str] | tuple[str, ...]) -> int:
    """Inverse of `decode_throttle_reasons`; unknown names raise KeyError."""
    mask = 0
    for name in names:
        mask |= THROTTLE_REASON_BITS[name]
    return mask


def empty_metrics(n_gpus: int) -> dict[str, np.ndarray]:
    """One NaN-filled float64 column per metric: sources fill in what they can read."""
    return {name: np.full(n_gpus, np.nan) for name in SAMPLE_METRICS}


def _json_value(name: str, value: float) -> int | float | None:
    if math.isnan(value):
        return None
    if name in INTEGER_METRICS:
        return int(value)
    return float(value)


def read_only(array: np.ndarray) -> np.ndarray:
    """`array` itself, made read-only (no copy: whoever built it hands it over), for the frozen
    objects that cross threads: a sample, a graded poll."""
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class FleetSample:
    """One poll of every GPU a source knows, in inventory order.

    `metrics[name][i]` is GPU `gpus[i]`'s value; NaN means not supported or not readable.
    `errors` holds non-fatal source problems (for example one scrape target down), each a
    readable line; a fatal problem raises `SourceError` from `poll()` instead.
    """

    ts: float
    gpus: tuple[GpuInventory, ...]
    metrics: Mapping[str, np.ndarray]
    state: np.ndarray
    processes: tuple[tuple[ProcessInfo, ...], ...]
    xid_events: tuple[XidEvent, ...] = ()
    poll_duration_s: float = 0.0
    errors: tuple[str, ...] = ()
    stale_nodes: frozenset[str] = field(default_factory=frozenset)
    # One tuple per GPU, or () when the source knows no workloads (NVML, demo).
    workloads: tuple[tuple[Workload, ...], ...] = ()
    # One tuple per GPU (empty for a GPU without MIG), or () when the source reads no MIG devices.
    mig_devices: tuple[tuple[MigDevice, ...], ...] = ()

    def __post_init__(self) -> None:
        n = len(self.gpus)
        for name in SAMPLE_METRICS:
            column = self.metrics[name]
            if column.shape != (n,):
                raise ValueError(f"metric {name!r} has shape {column.shape}, expected ({n},)")
        # A sample crosses threads (poller, writer, alerts, allocations, widgets): freezing its
        # arrays makes an accidental in-place write raise instead of corrupting another reader.
        object.__setattr__(self, "metrics", MappingProxyType({k: read_only(v) for k, v in self.metrics.items()}))
        object.__setattr__(self, "state", read_only(self.state))
        if self.state.shape != (n,) or len(self.processes) != n:
            raise ValueError("state and processes must have one entry per GPU")
        if self.workloads and len(self.workloads) != n:
            raise ValueError("workloads must be empty or have one entry per GPU")
        if self.mig_devices and len(self.mig_devices) != n:
            raise ValueError("mig_devices must be empty or have one entry per GPU")

    def __len__(self) -> int:
        return len(self.gpus)

    @property
    def uuids(self) -> list[str]:
        return [gpu.uuid for gpu in self.gpus]

    def index_of(self, uuid: str) -> int:
        """Position of a GPU in this sample; raises KeyError if absent."""
        for i, gpu in enumerate(self.gpus):
            if gpu.uuid == uuid:
                return i
        raise KeyError(uuid)

    def gpu_state(self, i: int) -> GpuState:
        return GpuState(int(self.state[i]))

    def record(self, i: int) -> dict[str, Any]:
        """GPU `i` as a JSON-ready dict: inventory, every metric (None if unsupported),
        decoded throttle reasons, processes, MIG devices, state and this poll's XID events."""
        gpu = self.gpus[i]
        record: dict[str, Any] = {
            "uuid": gpu.uuid,
            "index": gpu.index,
            "node": gpu.node,
            "name": gpu.name,
            "serial": gpu.serial,
            "pci_bus_id": gpu.pci_bus_id,
            "driver_version": gpu.driver_version,
            "nvml_version": gpu.nvml_version,
            "cuda_version": gpu.cuda_version,
            "mig_mode": gpu.mig_mode,
            "architecture": gpu.architecture,
            "vbios_version": gpu.vbios_version,
            "slowdown_temp_c": gpu.slowdown_temp_c,
            "site": gpu.site,
            "rack": gpu.rack,
            "state": self.gpu_state(i).label,
        }
        for name in SAMPLE_METRICS:
            record[name] = _json_value(name, float(self.metrics[name][i]))
        if record["mem_total_bytes"] is None:
            record["mem_total_bytes"] = gpu.mem_total_bytes
        if record["power_limit_w"] is None:
            record["power_limit_w"] = gpu.power_limit_w
        record["throttle_reasons"] = (
            None
            if record["throttle_reasons_mask"] is None
            else decode_throttle_reasons(record["throttle_reasons_mask"])
        )
        record["processes"] = _process_records(self.processes[i])
        record["workloads"] = [
            {
                "namespace": w.namespace, "pod": w.pod, "container": w.container,
                "mig_instance_id": w.mig_instance_id, "mig_profile": w.mig_profile,
                "mem_used_bytes": w.mem_used_bytes,
            }
            for w in (self.workloads[i] if self.workloads else ())
        ]
        record["mig_devices"] = [
            {
                "uuid": m.uuid, "gpu_instance_id": m.gpu_instance_id, "compute_instance_id": m.compute_instance_id,
                "profile": m.profile, "name": m.name, "mem_used_bytes": m.mem_used_bytes,
                "mem_total_bytes": m.mem_total_bytes, "processes": _process_records(m.processes),
                **{name: getattr(m, name) for name in ACTIVITY_METRICS},
            }
            for m in (self.mig_devices[i] if self.mig_devices else ())
        ]
        record["xid_events"] = [
            {"code": e.code, "ts": e.ts} for e in self.xid_events if e.uuid == gpu.uuid
        ]
        return record

    def records(self) -> list[dict[str, Any]]:
        return [self.record(i) for i in range(len(self.gpus))]

"""Turn dcgm-exporter series (scraped or queried from Prometheus) into FleetSamples.

Both network sources reduce what they read to (SeriesRef, value) pairs per target; a
`FleetBook` remembers the fleet across polls and builds each FleetSample from them.

Choices, documented here because the sources share them:

* UUID is the key of a GPU, the Hostname (or lowercase hostname) label its node (the target's
  host when absent). GPUs are listed by node, then index, whatever order the series came in.
* Values no GPU can have (temperature outside -40..150 °C, power over 4x its limit or 6 kW when
  no limit is reported, utilization outside 0..100 %) become NaN with a line in `errors` and the GPU's state UNKNOWN: a reading
  that garbled must not let the GPU look healthy. DCGM_FI_DEV_MEMORY_TEMP 0 is how boards
  without HBM (GDDR: L4, L40S, T4) say "not supported": NaN, without an error line.
* Units become gpuops units (MiB -> bytes, mJ -> J); DCGM's blank sentinels become NaN.
* MIG: series with GPU_I_ID belong to their parent GPU, which is listed once. Framebuffer
  figures of the instances add up (each owns a disjoint slice); utilization is their mean;
  every other field is a device-wide value the instances repeat, so the largest is kept. A
  series of the parent GPU itself (no GPU_I_ID) wins over the instances. Each instance is
  kept as a Workload with its id, profile and memory use.
* pod / namespace / container labels become Workloads of the GPU (of its MIG instance when
  both are present).
* A target that fails (down, slow, garbage) keeps its GPUs in the sample with their last
  inventory, state UNKNOWN and no values (NaN: not shown as current), its nodes in
  `stale_nodes`, and one line in `errors`. A never-reached target has no known node: its
  host:port stands in `stale_nodes`.
* A GPU that a working target no longer reports is kept as LOST, with a line in `errors`.
* XIDs: gpuops agents count every XID (gpuops_xid_errors_total); increases between polls
  become XidEvents, repeats included. For plain dcgm-exporter only the last XID is known
  (DCGM_FI_DEV_XID_ERRORS), so a change of it is one event and a repeat of the same code
  is invisible. Counts seen on first contact are history, not new events.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any, cast

import numpy as np

from gpuops.core import dcgm_schema as dcgm
from gpuops.core.telemetry import (
    FleetSample,
    GpuInventory,
    GpuState,
    MigDevice,
    ProcessInfo,
    Workload,
    XidEvent,
    empty_metrics,
)

_STATE_BY_LABEL = {state.label: state for state in GpuState}
# Bound on events made from one counter jump, so a garbage value cannot flood memory.
MAX_EVENTS_PER_JUMP = 1000


class SeriesKind(IntEnum):
    FIELD = 0
    PROCESS = 1
    XID_COUNT = 2
    STATE = 3
    INFO = 4


@dataclass(frozen=True, slots=True)
class GpuLabels:
    """Identity of a GPU as one series' labels tell it."""

    uuid: str
    node: str
    index: int
    name: str
    pci_bus_id: str | None = None
    driver_version: str | None = None


@dataclass(frozen=True, slots=True)
class SeriesRef:
    """What one series means: which GPU, which field or extra, which MIG instance or pod."""

    gpu: GpuLabels
    kind: SeriesKind
    field: dcgm.DcgmField | None = None
    mig_id: int | None = None
    mig_profile: str | None = None
    workload: Workload | None = None
    # FIELD: inventory from DCGM's optional labels (serial, VBIOS...) or None; PROCESS: (pid, name);
    # XID_COUNT: the code; STATE: the GpuState; INFO: inventory dict.
    detail: object = None


def _int_or(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def classify(name: str, labels: Mapping[str, str], default_node: str) -> SeriesRef | None:
    """The meaning of one series, or None when it is not about a GPU we can key (no UUID)."""
    uuid = labels.get(dcgm.LABEL_UUID)
    if not uuid:
        return None
    field_spec = dcgm.FIELDS_BY_NAME.get(name)
    detail: object = None
    if field_spec is not None:
        kind = SeriesKind.FIELD
        detail = dcgm_label_info(labels) or None
    elif name == dcgm.GPUOPS_PROCESS_MEMORY:
        kind = SeriesKind.PROCESS
        detail = (_int_or(labels.get(dcgm.LABEL_PID), -1), labels.get(dcgm.LABEL_PROCESS_NAME) or None)
    elif name == dcgm.GPUOPS_XID_ERRORS_TOTAL:
        kind = SeriesKind.XID_COUNT
        detail = _int_or(labels.get(dcgm.LABEL_XID), -1)
    elif name == dcgm.GPUOPS_GPU_STATE:
        state = _STATE_BY_LABEL.get(labels.get(dcgm.GPUOPS_GPU_STATE, ""))
        if state is None:
            return None
        kind, detail = SeriesKind.STATE, state
    elif name == dcgm.GPUOPS_GPU_INFO:
        kind = SeriesKind.INFO
        detail = info_from_labels(labels)
    else:
        return None
    gpu = gpu_labels(labels, default_node)
    mig_text = labels.get(dcgm.LABEL_MIG_ID)
    mig_id = _int_or(mig_text, -1) if mig_text else None
    mig_profile = labels.get(dcgm.LABEL_MIG_PROFILE) or None
    if mig_profile == dcgm.MIG_PROFILE_NULL:
        mig_profile = None
    pod = labels.get(dcgm.LABEL_POD) or None
    workload = None
    if pod is not None:
        workload = Workload(
            namespace=labels.get(dcgm.LABEL_NAMESPACE) or None,
            pod=pod,
            container=labels.get(dcgm.LABEL_CONTAINER) or None,
            mig_instance_id=mig_id,
            mig_profile=mig_profile,
        )
    return SeriesRef(gpu, kind, field_spec, mig_id, mig_profile, workload, detail)


def gpu_labels(labels: Mapping[str, str], default_node: str) -> GpuLabels:
    """A GPU's identity from dcgm-exporter labels (which must include UUID)."""
    return GpuLabels(
        uuid=labels[dcgm.LABEL_UUID],
        node=labels.get(dcgm.LABEL_HOST) or labels.get(dcgm.LABEL_HOST_LOWER) or default_node,
        index=_int_or(labels.get(dcgm.LABEL_GPU), -1),
        name=labels.get(dcgm.LABEL_MODEL) or "unknown GPU",
        pci_bus_id=labels.get(dcgm.LABEL_PCI_BUS_ID) or None,
        driver_version=labels.get(dcgm.LABEL_DRIVER) or None,
    )


def info_from_labels(labels: Mapping[str, str]) -> dict[str, object]:
    """Inventory from gpuops_gpu_info, or from DCGM's optional label fields."""
    info: dict[str, object] = {}
    for key in dcgm.INFO_LABELS:
        value = labels.get(key)
        if value:
            info[key] = value
    if "mig_mode" in info:
        info["mig_mode"] = info["mig_mode"] == "true"
    return info


def dcgm_label_info(labels: Mapping[str, str]) -> dict[str, object]:
    """Inventory from DCGM's optional label fields (serial, VBIOS, NVML and CUDA versions)."""
    info: dict[str, object] = {}
    for label, key in (
        (dcgm.LABEL_SERIAL, "serial"), (dcgm.LABEL_VBIOS, "vbios_version"), (dcgm.LABEL_NVML_VERSION, "nvml_version"),
    ):
        if labels.get(label):
            info[key] = labels[label]
    if labels.get(dcgm.LABEL_CUDA_DRIVER):
        info["cuda_version"] = dcgm.cuda_version_from_dcgm(labels[dcgm.LABEL_CUDA_DRIVER])
    return info


class GpuReading:
    """Everything one poll said about one GPU, before conversion."""

    __slots__ = ("labels", "values", "mig_values", "migs", "workloads", "processes", "xid_counts", "state", "info")

    def __init__(self, labels: GpuLabels) -> None:
        self.labels = labels
        self.values: dict[str, float] = {}
        self.mig_values: dict[str, list[float]] = {}
        self.migs: dict[int, tuple[str | None, float | None]] = {}
        self.workloads: dict[Workload, None] = {}
        self.processes: list[ProcessInfo] = []
        self.xid_counts: dict[int, float] = {}
        self.state: GpuState | None = None
        self.info: dict[str, object] = {}


def gather(pairs: Iterable[tuple[SeriesRef, float]]) -> dict[str, GpuReading]:
    """Group one target's (ref, value) pairs by GPU UUID."""
    readings: dict[str, GpuReading] = {}
    for ref, value in pairs:
        reading = readings.get(ref.gpu.uuid)
        if reading is None:
            reading = readings[ref.gpu.uuid] = GpuReading(ref.gpu)
        # The kind says what `field` and `detail` hold (see SeriesRef): the casts only state that.
        kind = ref.kind
        if kind == SeriesKind.FIELD:
            field_spec = ref.field
            assert field_spec is not None  # a FIELD series always names its field
            name = field_spec.name
            if ref.mig_id is None:
                reading.values[name] = value
            else:
                reading.mig_values.setdefault(name, []).append(value)
                if name == dcgm.FB_USED or ref.mig_id not in reading.migs:
                    used = value if name == dcgm.FB_USED else None
                    reading.migs[ref.mig_id] = (ref.mig_profile, used)
            if ref.workload is not None:
                reading.workloads[ref.workload] = None
            if ref.detail:
                reading.info.update(cast(dict[str, object], ref.detail))
        elif kind == SeriesKind.PROCESS:
            pid, process_name = cast(tuple[int, str | None], ref.detail)
            used = None if math.isnan(value) else int(value)
            reading.processes.append(ProcessInfo(pid=pid, name=process_name, used_mem_bytes=used))
        elif kind == SeriesKind.XID_COUNT:
            reading.xid_counts[cast(int, ref.detail)] = value
        elif kind == SeriesKind.STATE:
            if value == 1:
                reading.state = cast(GpuState, ref.detail)
        elif kind == SeriesKind.INFO:
            reading.info.update(cast(dict[str, object], ref.detail))
    return readings


@dataclass
class TargetResult:
    """One target's outcome in one poll: readings, or an error line."""

    target: str  # URL or Prometheus instance, as shown to people
    stand_in_node: str  # names the target in stale_nodes before any of its nodes is known
    readings: dict[str, GpuReading] | None = None
    error: str | None = None


def _converted(spec: dcgm.DcgmField, value: float) -> float:
    if math.isnan(value) or dcgm.is_dcgm_blank(value, spec.kind):
        return math.nan
    return value * spec.scale


def _mig_used_bytes(used_mib: float | None) -> int | None:
    """A MIG instance's FB_USED (MiB) in bytes, None when absent or blank."""
    used_bytes = None if used_mib is None else _converted(dcgm.FIELDS_BY_NAME[dcgm.FB_USED], used_mib)
    return None if used_bytes is None or math.isnan(used_bytes) else int(used_bytes)


def _mig_devices(reading: GpuReading) -> tuple[MigDevice, ...]:
    """The MIG instances an exporter's GPU_I_ID / GPU_I_PROFILE series name, with their memory used;
    dcgm-exporter names no MIG UUID, compute instance or per-instance total, so those are None."""
    return tuple(
        MigDevice(
            uuid=None, gpu_instance_id=mig_id if mig_id >= 0 else None, compute_instance_id=None,
            profile=profile, name=None, mem_used_bytes=_mig_used_bytes(used), mem_total_bytes=None,
        )
        for mig_id, (profile, used) in sorted(reading.migs.items())
    )


def _mig_aggregate(name: str, values: list[float]) -> float:
    clean = [v for v in values if not math.isnan(v) and not dcgm.is_dcgm_blank(v, dcgm.FIELDS_BY_NAME[name].kind)]
    if not clean:
        return math.nan
    if name in dcgm.MIG_ADDITIVE_FIELDS:
        return sum(clean)
    if name in dcgm.MIG_MEAN_FIELDS:
        return sum(clean) / len(clean)
    return max(clean)


@dataclass
class _XidMemory:
    counts: dict[tuple[str, int], float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)


class FleetBook:
    """The fleet across polls: stable GPU order, last-known inventory, target ownership, XID baselines."""

    def __init__(self) -> None:
        self._position: dict[str, int] = {}
        self._inventory: list[GpuInventory] = []
        self._owner: dict[str, str] = {}
        self._target_nodes: dict[str, set[str]] = defaultdict(set)
        self._xids = _XidMemory()
        self._unordered = False  # a GPU was added or moved since the inventory was last sorted

    def build(self, results: list[TargetResult], ts: float, poll_duration_s: float = 0.0) -> FleetSample:
        fresh: dict[str, GpuReading] = {}
        errors: list[str] = []
        stale: set[str] = set()
        failed_targets: set[str] = set()
        for result in results:
            if result.readings is None:
                failed_targets.add(result.target)
                nodes = sorted(self._target_nodes.get(result.target, ())) or [result.stand_in_node]
                stale.update(nodes)
                errors.append(f"{_nodes_phrase(nodes)} ({result.target}): {result.error}")
                continue
            for uuid, got in result.readings.items():
                fresh[uuid] = got
                self._owner[uuid] = result.target
                self._target_nodes[result.target].add(got.labels.node)
                self._place(got)
        if self._unordered:
            self._sort_inventory()
        n = len(self._inventory)
        metrics = empty_metrics(n)
        state = np.full(n, GpuState.UNKNOWN, dtype=np.uint8)
        processes: list[tuple[ProcessInfo, ...]] = [()] * n
        workloads: list[tuple[Workload, ...]] = [()] * n
        mig_devices: list[tuple[MigDevice, ...]] = [()] * n
        vanished: dict[str, list[str]] = defaultdict(list)
        placed: list[tuple[int, GpuReading]] = []
        for uuid, position in self._position.items():
            reading = fresh.get(uuid)
            if reading is None:
                if self._owner.get(uuid) not in failed_targets:
                    state[position] = GpuState.LOST
                    vanished[self._inventory[position].node].append(uuid)
                continue
            placed.append((position, reading))
            state[position] = reading.state if reading.state is not None else GpuState.OK
            processes[position] = tuple(reading.processes)
            workloads[position] = self._workloads(reading)
            mig_devices[position] = _mig_devices(reading)
        _fill_columns(placed, metrics, n)
        errors.extend(_drop_impossible(metrics, state, self._inventory))
        for node, uuids in sorted(vanished.items()):
            errors.append(f"node {node}: {len(uuids)} GPU(s) no longer reported ({', '.join(sorted(uuids))})")
        events = self._xid_events(fresh, ts)
        return FleetSample(
            ts=ts,
            gpus=tuple(self._inventory),
            metrics=metrics,
            state=state,
            processes=tuple(processes),
            xid_events=events,
            poll_duration_s=poll_duration_s,
            errors=tuple(errors),
            stale_nodes=frozenset(stale),
            workloads=tuple(workloads) if any(workloads) else (),
            mig_devices=tuple(mig_devices) if any(mig_devices) else (),
        )

    def _place(self, reading: GpuReading) -> None:
        labels = reading.labels
        info = cast("dict[str, Any]", reading.info)  # text by inventory field name, mig_mode a bool (info_from_labels)
        slowdown = reading.values.get(dcgm.SLOWDOWN_TEMP)
        slowdown_c = None if slowdown is None or dcgm.is_dcgm_blank(slowdown) else slowdown
        inventory = GpuInventory(
            uuid=labels.uuid,
            index=labels.index,
            node=labels.node,
            name=labels.name,
            serial=info.get("serial"),
            pci_bus_id=labels.pci_bus_id,
            driver_version=labels.driver_version,
            nvml_version=info.get("nvml_version"),
            cuda_version=info.get("cuda_version"),
            mig_mode=info.get("mig_mode", True if reading.migs else None),
            architecture=info.get("architecture"),
            vbios_version=info.get("vbios_version"),
            slowdown_temp_c=slowdown_c,
        )
        position = self._position.get(labels.uuid)
        if position is None:
            self._position[labels.uuid] = len(self._inventory)
            self._inventory.append(inventory)
            self._unordered = True
        elif self._inventory[position] != inventory:
            before = self._inventory[position]
            self._unordered |= (before.node, before.index) != (inventory.node, inventory.index)
            self._inventory[position] = inventory

    def _sort_inventory(self) -> None:
        """Node, then index order (a Prometheus answer or a targets file lists GPUs in any order)."""
        self._inventory.sort(key=lambda gpu: (gpu.node, gpu.index, gpu.uuid))
        self._position = {gpu.uuid: position for position, gpu in enumerate(self._inventory)}
        self._unordered = False

    @staticmethod
    def _workloads(reading: GpuReading) -> tuple[Workload, ...]:
        pods = list(reading.workloads)
        on_instances = {w.mig_instance_id for w in pods if w.mig_instance_id is not None}
        instances = []
        for mig_id, (profile, used) in sorted(reading.migs.items()):
            used_int = _mig_used_bytes(used)
            if mig_id in on_instances:
                pods = [replace(w, mem_used_bytes=used_int) if w.mig_instance_id == mig_id else w for w in pods]
            else:
                instances.append(Workload(mig_instance_id=mig_id, mig_profile=profile, mem_used_bytes=used_int))
        return tuple(pods + instances)

    def _xid_events(self, fresh: dict[str, GpuReading], ts: float) -> tuple[XidEvent, ...]:
        memory = self._xids
        events: list[XidEvent] = []
        for uuid, reading in fresh.items():
            known = uuid in memory.seen
            memory.seen.add(uuid)
            if reading.xid_counts:
                for code, count in reading.xid_counts.items():
                    key = (uuid, code)
                    before = memory.counts.get(key)
                    memory.counts[key] = count
                    if not known or math.isnan(count):
                        continue
                    new = count if before is None or count < before else count - before  # reset: agent restarted
                    for _ in range(min(int(new), MAX_EVENTS_PER_JUMP)):
                        events.append(XidEvent(uuid=uuid, code=code, ts=ts))
                continue
            last = reading.values.get(dcgm.XID_ERRORS)
            if last is None or math.isnan(last) or dcgm.is_dcgm_blank(last):
                continue
            before = memory.last.get(uuid)
            memory.last[uuid] = last
            if known and last != before and last > 0:
                events.append(XidEvent(uuid=uuid, code=int(last), ts=ts))
        return tuple(events)


def _fill_columns(placed: list[tuple[int, GpuReading]], metrics: dict[str, np.ndarray], n: int) -> None:
    """Write every placed GPU's values into the metric columns, converting whole columns at once
    (a Python call per value is most of the cost at 8,000 GPUs)."""
    raw: dict[str, tuple[list[int], list[float]]] = {}
    for position, reading in placed:
        values = reading.values
        if reading.mig_values:
            values = dict(values)
            for name, instance_values in reading.mig_values.items():
                if name not in values:
                    values[name] = _mig_aggregate(name, instance_values)
        for name, value in values.items():
            entry = raw.get(name)
            if entry is None:
                entry = raw[name] = ([], [])
            entry[0].append(position)
            entry[1].append(value)
    columns: dict[str, np.ndarray] = {}  # in DCGM's units, NaN where absent or blank
    present: dict[str, np.ndarray] = {}
    for name, (positions, column_values) in raw.items():
        spec = dcgm.FIELDS_BY_NAME[name]
        column = np.full(n, np.nan)
        column[positions] = column_values
        column[dcgm.dcgm_blank_mask(column, spec.kind)] = np.nan
        columns[name] = column
        present[name] = np.zeros(n, dtype=bool)
        present[name][positions] = True
        if spec.metric:
            index = np.asarray(positions)
            metrics[spec.metric][index] = column[index] * spec.scale
    if dcgm.FB_USED in columns and dcgm.FB_FREE in columns:
        total = columns[dcgm.FB_USED] + columns[dcgm.FB_FREE]
        if dcgm.FB_RESERVED in columns:
            total = total + np.where(present[dcgm.FB_RESERVED], columns[dcgm.FB_RESERVED], 0.0)
        derive = present[dcgm.FB_USED] & present[dcgm.FB_FREE]
        if dcgm.FB_TOTAL in present:
            derive &= ~present[dcgm.FB_TOTAL]
        metrics["mem_total_bytes"][derive] = total[derive] * dcgm.MIB


#: Readings no working GPU gives (issue 18): outside these, an exporter's value is garbage.
TEMP_RANGE_C = (-40.0, 150.0)
UTIL_RANGE_PCT = (0.0, 100.0)
POWER_LIMIT_FACTOR = 4.0
#: dcgm-exporter's default counters carry no power limit: then no board may draw over 4 x 1.5 kW
#: (more than any GPU's limit so far, B200 1 kW).
POWER_CEILING_W = POWER_LIMIT_FACTOR * 1500.0
_RANGES: tuple[tuple[str, str, tuple[float, float], str], ...] = (
    ("temp_c", "temperature", TEMP_RANGE_C, "°C"),
    ("mem_temp_c", "memory temperature", TEMP_RANGE_C, "°C"),
    ("util_gpu_pct", "GPU utilization", UTIL_RANGE_PCT, "%"),
    ("util_mem_pct", "memory utilization", UTIL_RANGE_PCT, "%"),
)


def _drop_impossible(metrics: dict[str, np.ndarray], state: np.ndarray, gpus: list[GpuInventory]) -> list[str]:
    """Null the values outside physical ranges, mark their GPUs UNKNOWN, and say so (one line per value).
    MEMORY_TEMP 0 (not supported on GDDR boards) is nulled silently first."""
    mem_temp = metrics["mem_temp_c"]
    mem_temp[mem_temp == 0] = np.nan
    errors: list[str] = []
    with np.errstate(invalid="ignore"):
        checks = [
            (column, words, f"outside {low:g}…{high:g} {unit}", (metrics[column] < low) | (metrics[column] > high), unit)
            for column, words, (low, high), unit in _RANGES
        ]
        power, limit = metrics["power_w"], metrics["power_limit_w"]
        known = ~np.isnan(limit)
        over_limit = known & (power > POWER_LIMIT_FACTOR * limit)
        over_ceiling = ~known & (power > POWER_CEILING_W)
        checks.append(("power_w", "power", f"over {POWER_LIMIT_FACTOR:g}× the limit", over_limit, "W"))
        checks.append(("power_w", "power", f"over {POWER_CEILING_W:g} W (no limit reported)", over_ceiling, "W"))
    for column, words, why, bad, unit in checks:
        for position in np.flatnonzero(bad):
            gpu, value = gpus[position], metrics[column][position]
            errors.append(f"node {gpu.node} GPU {gpu.index} ({gpu.uuid}): {words} {value:.6g} {unit} {why}; shown as null")
        metrics[column][bad] = np.nan
        state[bad] = GpuState.UNKNOWN
    return errors


def _nodes_phrase(nodes: list[str]) -> str:
    return f"node {nodes[0]}" if len(nodes) == 1 else f"nodes {', '.join(nodes)}"

"""Render the latest fleet sample as dcgm-exporter-compatible metric families.

Names, units and labels are dcgm-exporter's (see core.dcgm_schema), so dashboards and alerts
written for it work unchanged. Cumulative fields (energy, ECC, remapped rows, PCIe replays)
are counters under their DCGM names without `_total`, as dcgm-exporter declares them
(core.agent.exposition writes them so); `DCGM_FI_DEV_XID_ERRORS` is a gauge holding the last
code, as there. One deliberate difference: a value the GPU does not support (NaN in the
sample) is left out rather than sent as one of DCGM's 9.22e18 sentinels, so `sum()` and
`avg()` over a fleet stay meaningful.

A MIG-enabled GPU's framebuffer and activity fields are served per MIG device, labelled GPU_I_ID
and GPU_I_PROFILE as dcgm-exporter labels them (its other fields stay GPU-wide), so sums over a
GPU's series count each slice once.

Extras under `gpuops_`: per-process GPU memory, an XID counter (every event, repeats
included), GPU state as a state set, static inventory as an info gauge, and source health.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric, StateSetMetricFamily

from gpuops.core import dcgm_schema as dcgm
from gpuops.core.agent.exposition import render
from gpuops.core.agent.poller import AgentSnapshot
from gpuops.core.telemetry import ACTIVITY_METRICS, FleetSample, GpuInventory, GpuState, MigDevice

_STATE_LABELS = {state: state.label for state in GpuState}
# Fields a MIG-enabled GPU serves per MIG device: each device's share of the framebuffer and its
# GPU instance's activity. FB_TOTAL stays GPU-wide: the slices do not cover the whole framebuffer.
_PER_MIG_DEVICE: frozenset[str] = frozenset(
    {dcgm.FB_USED, dcgm.FB_FREE} | {field.name for field in dcgm.FIELDS if field.metric in ACTIVITY_METRICS}
)


def gpu_label_values(gpu: GpuInventory) -> list[str]:
    """Values for dcgm_schema.GPU_LABELS, in order."""
    return [
        str(gpu.index),
        gpu.uuid,
        f"nvidia{gpu.index}",
        gpu.name,
        gpu.node,
        gpu.pci_bus_id or "",
        gpu.driver_version or "",
    ]


def _field_values(sample: FleetSample, field: dcgm.DcgmField, last_xid: dict[str, int]) -> Iterator[tuple[int, float]]:
    """(gpu position, value in DCGM's unit) for every GPU that has a value of `field`."""
    metrics = sample.metrics
    for i, gpu in enumerate(sample.gpus):
        if field.metric:
            value = float(metrics[field.metric][i])
            if math.isnan(value) and field.metric == "mem_total_bytes" and gpu.mem_total_bytes is not None:
                value = float(gpu.mem_total_bytes)
            if math.isnan(value) and field.metric == "power_limit_w" and gpu.power_limit_w is not None:
                value = gpu.power_limit_w
        elif field.name == dcgm.FB_FREE:
            total = float(metrics["mem_total_bytes"][i])
            if math.isnan(total) and gpu.mem_total_bytes is not None:
                total = float(gpu.mem_total_bytes)
            reserved = float(metrics["mem_reserved_bytes"][i])  # DCGM: total = used + free + reserved
            value = total - float(metrics["mem_used_bytes"][i]) - (0.0 if math.isnan(reserved) else reserved)
        elif field.name == dcgm.XID_ERRORS:
            if sample.gpu_state(i) == GpuState.LOST:
                continue
            value = float(last_xid.get(gpu.uuid, 0))
        else:  # SLOWDOWN_TEMP
            value = math.nan if gpu.slowdown_temp_c is None else gpu.slowdown_temp_c
        if not math.isnan(value):
            yield i, value / field.scale


def fleet_metrics(snapshot: AgentSnapshot) -> Iterator[Metric]:
    """Every family one scrape serves for `snapshot`: source health, the DCGM fields, the extras."""
    up = GaugeMetricFamily(
        dcgm.GPUOPS_SOURCE_UP, "1 when the agent's last poll of its telemetry source succeeded.",
    )
    up.add_metric([], 0.0 if snapshot.sample is None else 1.0)
    yield up
    sample = snapshot.sample
    if sample is None:
        return
    labels = [gpu_label_values(gpu) for gpu in sample.gpus]
    label_sets = [dict(zip(dcgm.GPU_LABELS, values, strict=True)) for values in labels]
    last_xid = dict(snapshot.last_xid)
    split = [i for i in range(len(sample)) if sample.mig_devices and sample.mig_devices[i]]
    for field in dcgm.FIELDS:
        family = Metric(field.name, field.help, field.kind)
        per_device = field.name in _PER_MIG_DEVICE
        for i, value in _field_values(sample, field, last_xid):
            if not (per_device and i in split):
                family.add_sample(field.name, label_sets[i], value)
        if per_device:
            for i in split:
                for device in sample.mig_devices[i]:
                    value = _mig_field_value(device, field)
                    if not math.isnan(value):
                        family.add_sample(field.name, {**label_sets[i], **_mig_labels(device)}, value)
        yield family
    yield from _extras(snapshot, sample, labels)


def snapshot_exposition(snapshot: AgentSnapshot) -> bytes:
    """The `/metrics` text for `snapshot`."""
    return render(fleet_metrics(snapshot))


def _extras(snapshot: AgentSnapshot, sample: FleetSample, labels: list[list[str]]) -> Iterator[Metric]:
    state = StateSetMetricFamily(
        dcgm.GPUOPS_GPU_STATE, "Whether the GPU answers: ok, lost (fell off the bus) or unknown.",
        labels=dcgm.GPU_LABELS,
    )
    info = GaugeMetricFamily(
        dcgm.GPUOPS_GPU_INFO, "Static GPU inventory that has no dcgm-exporter label; value is always 1.",
        labels=(*dcgm.GPU_LABELS, *dcgm.INFO_LABELS),
    )
    processes = GaugeMetricFamily(
        dcgm.GPUOPS_PROCESS_MEMORY,
        "GPU memory held by one process, in bytes (NaN when the driver does not say).",
        labels=(*dcgm.GPU_LABELS, dcgm.LABEL_PID, dcgm.LABEL_PROCESS_NAME),
    )
    position = {gpu.uuid: i for i, gpu in enumerate(sample.gpus)}
    for i, gpu in enumerate(sample.gpus):
        current = sample.gpu_state(i)
        state.add_metric(labels[i], {name: s == current for s, name in _STATE_LABELS.items()})
        info.add_metric([*labels[i], *_info_values(gpu)], 1.0)
        for process in sample.processes[i]:
            used = math.nan if process.used_mem_bytes is None else float(process.used_mem_bytes)
            processes.add_metric([*labels[i], str(process.pid), process.name or ""], used)
    xids = Metric(
        dcgm.GPUOPS_XID_ERRORS_TOTAL, "XID errors reported by the driver since the agent started, every repeat counted.",
        "counter",
    )
    xid_labels = (*dcgm.GPU_LABELS, dcgm.LABEL_XID)
    for (uuid, code), count in sorted(snapshot.xid_counts.items()):
        if uuid in position:
            values = [*labels[position[uuid]], str(code)]
            xids.add_sample(dcgm.GPUOPS_XID_ERRORS_TOTAL, dict(zip(xid_labels, values, strict=True)), float(count))
    yield state
    yield info
    yield processes
    yield xids


def _mig_labels(device: MigDevice) -> dict[str, str]:
    instance = "" if device.gpu_instance_id is None else str(device.gpu_instance_id)
    return {dcgm.LABEL_MIG_ID: instance, dcgm.LABEL_MIG_PROFILE: device.profile or dcgm.MIG_PROFILE_NULL}


def _mig_field_value(device: MigDevice, field: dcgm.DcgmField) -> float:
    """A per-MIG-device field in DCGM's unit; NaN when the device does not say."""
    used = math.nan if device.mem_used_bytes is None else float(device.mem_used_bytes)
    total = math.nan if device.mem_total_bytes is None else float(device.mem_total_bytes)
    if field.name == dcgm.FB_USED:
        value = used
    elif field.name == dcgm.FB_FREE:
        value = total - used
    else:
        activity = getattr(device, field.metric)
        value = math.nan if activity is None else activity
    return value / field.scale


def _info_values(gpu: GpuInventory) -> list[str]:
    mig = "" if gpu.mig_mode is None else str(gpu.mig_mode).lower()
    return [
        gpu.serial or "", gpu.vbios_version or "", gpu.nvml_version or "",
        gpu.cuda_version or "", gpu.architecture or "", mig,
    ]

"""Hand-made fleet samples for tests that need exact, known values (not the simulated fleet)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from gpuops.core.telemetry import FleetSample, GpuInventory, GpuState, ProcessInfo, XidEvent, empty_metrics


def make_inventory(n_gpus: int, gpus_per_node: int = 8, name: str = "NVIDIA H100 80GB HBM3") -> tuple[GpuInventory, ...]:
    return tuple(
        GpuInventory(
            uuid=f"GPU-{i:08x}-0000-4000-8000-{i:012x}",
            index=i % gpus_per_node,
            node=f"node{i // gpus_per_node:02d}",
            name=name,
            serial=f"165{i:010d}",
            pci_bus_id=f"00000000:{0x18 + i % gpus_per_node:02X}:00.0",
            mem_total_bytes=80 * 2**30,
            power_limit_w=700.0,
            slowdown_temp_c=87.0,
            shutdown_temp_c=92.0,
            mem_max_temp_c=95.0,
        )
        for i in range(n_gpus)
    )


def make_sample(
    n_gpus: int = 16,
    *,
    ts: float = 1_763_798_400.0,
    gpus: tuple[GpuInventory, ...] | None = None,
    values: dict[str, dict[int, float]] | None = None,
    states: dict[int, GpuState] | None = None,
    processes: dict[int, tuple[ProcessInfo, ...]] | None = None,
    xids: tuple[tuple[int, int], ...] = (),
) -> FleetSample:
    """A healthy fleet at 50% load, with `values[metric][gpu_index]` overriding single cells,
    `states` marking GPUs lost/unknown and `xids` as (gpu index, code) events at `ts`."""
    gpus = gpus or make_inventory(n_gpus)
    n = len(gpus)
    metrics = empty_metrics(n)
    defaults = {
        "util_gpu_pct": 50.0, "util_mem_pct": 30.0, "mem_used_bytes": 40 * 2**30, "mem_total_bytes": 80 * 2**30,
        "temp_c": 60.0, "mem_temp_c": 70.0, "power_w": 400.0, "power_limit_w": 700.0, "energy_j": 1e6,
        "sm_clock_mhz": 1980.0, "mem_clock_mhz": 2619.0, "pstate": 0.0,
        "ecc_corrected_volatile": 0.0, "ecc_uncorrected_volatile": 0.0, "remapped_rows_pending": 0.0,
        "remapped_rows_failure": 0.0, "throttle_reasons_mask": 0.0,
    }
    for name, value in defaults.items():
        metrics[name][:] = value
    for name, cells in (values or {}).items():
        for i, value in cells.items():
            metrics[name][i] = value
    state = np.zeros(n, dtype=np.uint8)
    for i, gpu_state in (states or {}).items():
        state[i] = gpu_state
        if gpu_state == GpuState.LOST:
            for column in metrics.values():
                column[i] = np.nan
    procs = tuple((processes or {}).get(i, ()) for i in range(n))
    events = tuple(XidEvent(uuid=gpus[i].uuid, code=code, ts=ts) for i, code in xids)
    return FleetSample(ts=ts, gpus=gpus, metrics=metrics, state=state, processes=procs, xid_events=events)


def edited(sample: FleetSample, edit: Callable[[dict[str, np.ndarray]], None]) -> FleetSample:
    """A copy of `sample` whose metric columns `edit` changed in place (samples are read-only)."""
    metrics = {name: column.copy() for name, column in sample.metrics.items()}
    edit(metrics)
    return replace(sample, metrics=metrics)

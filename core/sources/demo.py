"""`demo[:N]`: a simulated GPU cloud of N GPUs, for trying gpuops without NVIDIA hardware and
for filling history in fast-forward.

Readings are modelled on real nvidia-smi captures (resources/gpu-profiles.csv). A sample is a
function of the seed and its timestamp only, plus the previous timestamp for the XID events
that happened in between, so the same seed and the same timestamps always give the same samples.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from gpuops.core.allocations.demo_customers import demo_holdings
from gpuops.core.sources.base import SourceError, TelemetrySource
from gpuops.core.sources.demo_failures import FailureModel
from gpuops.core.sources.demo_fleet import FleetLayout, Role, build_fleet, follow_book
from gpuops.core.sources.demo_profiles import MIB
from gpuops.core.sources.demo_random import Hasher
from gpuops.core.sources.demo_workloads import WorkloadModel
from gpuops.core.telemetry import FleetSample, GpuState, ProcessInfo, XidEvent, empty_metrics

log = logging.getLogger("gpuops.sources")

# XID events of the first sample are those of the second before it.
FIRST_SAMPLE_WINDOW_S = 1.0
# Relative noise of readings around the model, one standard deviation.
POWER_NOISE_BUSY, POWER_NOISE_IDLE = 0.012, 0.005
UTIL_NOISE_PCT = 2.0
TEMP_NOISE_C = 0.4
PCIE_NOISE = 0.15
# NVML reports power up to a little above the limit while the controller catches a spike.
POWER_READING_CEILING = 1.02


class DemoSource(TelemetrySource):
    """A deterministic simulated fleet. `start_ts` is when its drivers loaded: energy and the
    volatile error counters count from there. By default it is the first sampled time."""

    simulated = True

    def __init__(self, n_gpus: int = 64, seed: int = 0, start_ts: float | None = None) -> None:
        if n_gpus < 1:
            raise SourceError(f"the simulated fleet needs at least 1 GPU, not {n_gpus}")
        self.name = f"demo:{n_gpus}"
        # Any integer is a seed; negative ones are folded into the 64-bit range.
        self._seed = int(seed) & 0xFFFF_FFFF_FFFF_FFFF
        self._start_ts = start_ts
        fleet = build_fleet(n_gpus, self._seed)
        # The workloads run where the demo book puts its customers (core.allocations.demo_customers).
        self._layout: FleetLayout = follow_book(fleet, demo_holdings(fleet) >= 0, self._seed)
        hasher = Hasher(self._seed)
        self._workloads = WorkloadModel(self._layout, hasher)
        self._failures = FailureModel(self._layout, hasher)
        profiles, model = self._layout.profiles, self._layout.model_of_gpu
        self._mem_total_bytes = np.array([p.mem_total_bytes for p in profiles], dtype=np.float64)[model]
        self._pcie_gen_max = np.array([p.pcie_link_gen_max for p in profiles])[model]
        self._pcie_width_max = np.array([p.pcie_link_width_max for p in profiles])[model]
        self._has_lost_kind = np.zeros(n_gpus, dtype=bool)
        self._has_lost_kind[self._failures.lost_gpus] = True
        # Processes are rebuilt only for GPUs whose job changed since the previous sample.
        self._process_keys = np.full(n_gpus, np.iinfo(np.int64).min)
        self._processes: list[tuple[ProcessInfo, ...]] = [()] * n_gpus
        self._last_ts: float | None = None
        log.debug("simulated fleet %s (seed %d): %d nodes", self.name, self._seed, self._layout.n_nodes)

    @property
    def start_ts(self) -> float | None:
        """When the simulated drivers loaded; None until the first sample if not given."""
        return self._start_ts

    def poll(self) -> FleetSample:
        return self.sample_at(time.time())

    def sample_at(self, ts: float) -> FleetSample:
        """The fleet at UTC time `ts`, independent of the wall clock. XID events are those in
        (previous sample's ts, ts]; call in increasing time order to see each event once."""
        started = time.perf_counter()
        ts = float(ts)
        if self._start_ts is None:
            self._start_ts = float(ts)
        start_ts = self._start_ts
        n = len(self._layout.gpus)
        activity = self._workloads.at(ts, start_ts)
        lost = self._failures.lost(ts)
        noise = np.random.default_rng([self._seed, int(round(ts * 1000)) % (1 << 63)]).standard_normal((7, n))
        busy = activity.kind != Role.IDLE

        metrics = empty_metrics(n)
        for name, value, row in (("util_gpu_pct", activity.util_pct, 0), ("util_mem_pct", activity.mem_util_pct, 1)):
            metrics[name][:] = np.where(busy, np.clip(np.round(value + UTIL_NOISE_PCT * noise[row]), 0, 100), 0)
        mem_used = np.floor(activity.mem_used_share * self._mem_total_bytes / MIB) * MIB
        metrics["mem_used_bytes"][:] = mem_used
        metrics["mem_total_bytes"][:] = self._mem_total_bytes
        power = activity.power_w * (1 + np.where(busy, POWER_NOISE_BUSY, POWER_NOISE_IDLE) * noise[2])
        metrics["power_w"][:] = np.round(np.minimum(power, self._workloads.limit_w * POWER_READING_CEILING), 3)
        metrics["power_limit_w"][:] = self._workloads.limit_w
        metrics["energy_j"][:] = np.floor(activity.energy_j * 1000) / 1000
        metrics["temp_c"][:] = np.round(activity.temp_c + TEMP_NOISE_C * noise[3])
        metrics["mem_temp_c"][:] = np.round(activity.mem_temp_c + TEMP_NOISE_C * noise[4])
        metrics["sm_clock_mhz"][:] = activity.sm_clock_mhz
        metrics["mem_clock_mhz"][:] = activity.mem_clock_mhz
        metrics["fan_pct"][:] = np.round(activity.fan_pct)
        metrics["pstate"][:] = activity.pstate
        metrics["pcie_tx_bytes_s"][:] = np.round(activity.pcie_tx_bytes_s * np.exp(PCIE_NOISE * noise[5]))
        metrics["pcie_rx_bytes_s"][:] = np.round(activity.pcie_rx_bytes_s * np.exp(PCIE_NOISE * noise[6]))
        # A GPU that has dropped off the bus before trains its link one generation lower.
        metrics["pcie_link_gen"][:] = self._pcie_gen_max - self._has_lost_kind
        metrics["pcie_link_gen_max"][:] = self._pcie_gen_max
        metrics["pcie_link_width"][:] = self._pcie_width_max
        metrics["pcie_link_width_max"][:] = self._pcie_width_max
        metrics["throttle_reasons_mask"][:] = activity.throttle_mask
        for name, values in self._failures.counters(ts, start_ts).items():
            metrics[name][:] = values
        for column in metrics.values():
            column[lost] = np.nan

        state = np.where(lost, GpuState.LOST, GpuState.OK).astype(np.uint8)
        kind = np.where(lost, Role.IDLE, activity.kind)
        processes = self._update_processes(kind, activity.job_index, lost, mem_used)
        xid_events = self._xid_events(ts, start_ts)
        return FleetSample(
            ts=ts,
            gpus=self._layout.gpus,
            metrics=metrics,
            state=state,
            processes=processes,
            xid_events=xid_events,
            poll_duration_s=time.perf_counter() - started,
        )

    def _update_processes(
        self, kind: np.ndarray, job_index: np.ndarray, lost: np.ndarray, mem_used: np.ndarray
    ) -> tuple[tuple[ProcessInfo, ...], ...]:
        keys = np.where(lost, -1, kind + len(Role) * job_index)  # (kind, job) in one integer
        changed = np.flatnonzero(keys != self._process_keys)
        if changed.size:
            rebuilt = self._workloads.processes(changed, kind[changed], job_index[changed], mem_used[changed])
            for i, processes in zip(changed.tolist(), rebuilt, strict=True):
                self._processes[i] = processes
            self._process_keys = keys
        return tuple(self._processes)

    def _xid_events(self, ts: float, start_ts: float) -> tuple[XidEvent, ...]:
        previous = self._last_ts
        after = ts - FIRST_SAMPLE_WINDOW_S if previous is None or previous > ts else previous
        self._last_ts = ts
        gpus = self._layout.gpus
        events = self._failures.xid_events(after, ts, start_ts)
        return tuple(XidEvent(gpus[i].uuid, code, event_ts) for i, code, event_ts in events)

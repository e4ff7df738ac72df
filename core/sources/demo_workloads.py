"""What each simulated GPU is doing at any moment, as closed-form functions of time.

Nothing here keeps state between samples: a GPU's activity, power and temperature at time t
depend only on the seed and t, and the energy counter is the exact integral of the modelled
power. That is what lets the history backfill sample 30 days in fast-forward, in any order,
and still agree with the live poll.

Workloads:
- training nodes run back-to-back jobs of 4–16 h with a 10–30 min gap between them, near the
  power limit; a GPU with bad cooling climbs into thermal slowdown and throttles in cycles;
- inference nodes follow the local time of day (busy afternoons, quiet nights) with bursts;
- idle nodes sit at idle clocks and idle power.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpuops.core.sources.demo_fleet import Failure, FleetLayout, Role
from gpuops.core.sources.demo_profiles import MIB
from gpuops.core.sources.demo_random import Hasher
from gpuops.core.telemetry import ProcessInfo, encode_throttle_reasons

DAY_S = 86400.0
HOUR_S = 3600.0
# Thermal time constant of a GPU heatsink: most of the rise happens within two minutes.
THERMAL_TAU_S = 45.0
# Inference activity = scale * (BASE + DAILY*cos(daily) + BURST_SLOW*sin + BURST_FAST*sin), in [0, 1].
INFERENCE_BASE, INFERENCE_DAILY, INFERENCE_BURST_SLOW, INFERENCE_BURST_FAST = 0.50, 0.28, 0.12, 0.07
# Share of a thermal cycle spent heating up before hardware slowdown kicks in.
THERMAL_HEATING_SHARE = 0.7
# Power of a throttled GPU, as a share of the way from idle to its training power.
THROTTLED_POWER_SHARE = 0.45
# Training near this share of the power limit trips the software power cap.
POWER_CAP_SHARE = 0.94
CLOCK_STEP_MHZ = 15.0
TRAINING_UTIL_PCT = 97.0
INFERENCE_MEM_UTIL_SHARE = 0.45
# PCIe traffic of an idle H100/H200 in the captures: 330–370 KB/s each way.
IDLE_PCIE_BYTES_S = 350e3
INFERENCE_PCIE_RX_BYTES_S, INFERENCE_PCIE_TX_BYTES_S = 250e6, 80e6
FAN_MIN_PCT = 30.0

THROTTLE_GPU_IDLE = encode_throttle_reasons(["gpu_idle"])
THROTTLE_SW_POWER_CAP = encode_throttle_reasons(["sw_power_cap"])
THROTTLE_SW_THERMAL = encode_throttle_reasons(["sw_thermal_slowdown"])
THROTTLE_HW_THERMAL = encode_throttle_reasons(["hw_slowdown", "hw_thermal_slowdown"])

# Inference servers, with the share of GPU memory each holds: vLLM reserves 90 % by default.
INFERENCE_ENGINES = ("vllm", "tritonserver", "python3")
_ENGINE_MEMORY_SHARE = np.array([[0.88, 0.04], [0.35, 0.40], [0.40, 0.40]])  # (low, span)
TRITON_STUB = "triton_python_backend_stub"
TRAINING_NAMES = ("python3", "python")
# Share of training jobs that also run a helper process (evaluation, profiler) on each GPU.
TRAINING_HELPER_SHARE = 0.25
PID_MAX = 4_194_304

def _periodic_position(t: float, period_s: np.ndarray, phase_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the period containing t, seconds since that period began)."""
    x = (t - phase_s) / period_s
    k = np.floor(x)
    return k.astype(np.int64), (x - k) * period_s


def _seconds_after(x: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    return np.maximum(x - threshold, 0.0)


def fan_speed_pct(temp_c: np.ndarray, idle_temp_c: np.ndarray, max_operating_temp_c: np.ndarray) -> np.ndarray:
    """Fan duty of a board with its own fan: minimum at idle, 100 % at the max operating temp."""
    heat = np.clip((temp_c - idle_temp_c) / (max_operating_temp_c - idle_temp_c), 0.0, 1.0)
    return FAN_MIN_PCT + (100.0 - FAN_MIN_PCT) * heat


def _round_to_step(mhz: np.ndarray) -> np.ndarray:
    return np.round(mhz / CLOCK_STEP_MHZ) * CLOCK_STEP_MHZ


@dataclass(frozen=True)
class Activity:
    """The modelled (noise-free) state of every GPU at one moment."""

    kind: np.ndarray  # Role code of what the GPU does right now (a training node between jobs is IDLE)
    job_index: np.ndarray  # training slot or inference deployment day; 0 when idle
    util_pct: np.ndarray
    mem_util_pct: np.ndarray
    power_w: np.ndarray
    energy_j: np.ndarray  # integral of power_w since the source's start time
    temp_c: np.ndarray
    mem_temp_c: np.ndarray
    sm_clock_mhz: np.ndarray
    mem_clock_mhz: np.ndarray
    pstate: np.ndarray
    throttle_mask: np.ndarray
    mem_used_share: np.ndarray  # of total memory
    fan_pct: np.ndarray
    pcie_tx_bytes_s: np.ndarray
    pcie_rx_bytes_s: np.ndarray


class InferenceRhythm:
    """Load of inference GPUs: a daily cycle in local time (busy afternoons, quiet nights)
    with two burst rhythms on top, per node; a sum of sinusoids, so its integral is exact."""

    def __init__(self, node: np.ndarray, utc_offset_s: np.ndarray, hasher: Hasher) -> None:
        self._utc_offset_s = utc_offset_s
        self._scale = 0.65 + 0.35 * hasher.unit("inference-scale", node)
        self._peak_local_s = (13.0 + 4.0 * hasher.unit("inference-peak", node)) * HOUR_S
        self._slow_w = 2 * np.pi / (300.0 + 600.0 * hasher.unit("burst-slow", node))
        self._fast_w = 2 * np.pi / (40.0 + 60.0 * hasher.unit("burst-fast", node))
        self._slow_phase = 2 * np.pi * hasher.unit("burst-slow-phase", node)
        self._fast_phase = 2 * np.pi * hasher.unit("burst-fast-phase", node)

    def _daily_angle(self, t: float) -> np.ndarray:
        return 2 * np.pi * (t + self._utc_offset_s - self._peak_local_s) / DAY_S

    def load(self, t: float) -> np.ndarray:
        """Share of full load at t, in [0, 1]."""
        return self._scale * (
            INFERENCE_BASE
            + INFERENCE_DAILY * np.cos(self._daily_angle(t))
            + INFERENCE_BURST_SLOW * np.sin(self._slow_w * t + self._slow_phase)
            + INFERENCE_BURST_FAST * np.sin(self._fast_w * t + self._fast_phase)
        )

    def _periodic_antiderivative(self, t: float) -> np.ndarray:
        return (
            INFERENCE_DAILY * DAY_S / (2 * np.pi) * np.sin(self._daily_angle(t))
            - INFERENCE_BURST_SLOW / self._slow_w * np.cos(self._slow_w * t + self._slow_phase)
            - INFERENCE_BURST_FAST / self._fast_w * np.cos(self._fast_w * t + self._fast_phase)
        )

    def load_integral(self, t: float, since_s: float) -> np.ndarray:
        """Integral of `load` over the `since_s` seconds before t, in load-seconds."""
        periodic = self._periodic_antiderivative(t) - self._periodic_antiderivative(t - since_s)
        return self._scale * (INFERENCE_BASE * since_s + periodic)


class WorkloadModel:
    """Per-GPU workload parameters drawn once from the seed, and their evaluation at time t."""

    def __init__(self, layout: FleetLayout, hasher: Hasher) -> None:
        gpu = np.arange(len(layout.gpus))
        node = layout.node_of_gpu
        rack = layout.rack_of_gpu
        p = layout.profiles
        m = layout.model_of_gpu

        def column(name: str) -> np.ndarray:
            return np.array([getattr(profile, name) for profile in p], dtype=np.float64)[m]

        self.role = layout.role_of_gpu
        self.thermal = layout.failure_of_gpu == Failure.THERMAL
        self.limit_w = column("power_limit_w")
        # Silicon and board variation: no two GPUs idle at exactly the same power.
        self.idle_w = column("idle_power_w") * (0.96 + 0.08 * hasher.unit("idle-power", gpu))
        node_train_share = 0.86 + 0.11 * hasher.unit("train-power", node)
        self.train_w = np.minimum(
            self.limit_w * node_train_share * (0.985 + 0.03 * hasher.unit("train-power-gpu", gpu)),
            self.limit_w * 0.99,
        )
        self.power_capped = self.train_w >= POWER_CAP_SHARE * self.limit_w
        self.cap_clock_drop_mhz = CLOCK_STEP_MHZ * (2 + np.floor(6 * hasher.unit("cap-clock", gpu)))
        self.inference_peak_w = self.limit_w * (0.70 + 0.15 * hasher.unit("inference-power", node))
        self.throttled_w = self.idle_w + THROTTLED_POWER_SHARE * (self.train_w - self.idle_w)

        # Temperatures: inlet air differs per rack; the rear GPUs of a chassis breathe warmer air.
        inlet_c = -3.0 + 7.0 * hasher.unit("rack-inlet", rack) + np.where(layout.local_index >= 4, 1.5, 0.0)
        self.idle_temp_c = column("idle_temp_c") + inlet_c
        self.temp_per_w = (column("load_temp_c") - column("idle_temp_c")) / (
            column("load_power_w") - column("idle_power_w")
        )
        self.idle_mem_temp_c = column("idle_mem_temp_c") + inlet_c
        self.mem_temp_per_gpu_temp = (column("load_mem_temp_c") - column("idle_mem_temp_c")) / (
            column("load_temp_c") - column("idle_temp_c")
        )
        max_operating = column("max_operating_temp_c")
        self.max_operating_temp_c = max_operating
        # A GPU with failing cooling heats past its slowdown temperature, hardware slowdown
        # halves its clocks until it has cooled a few degrees (hysteresis), and again.
        self.hot_low_c = column("slowdown_temp_c") - 3.0
        self.hot_high_c = column("slowdown_temp_c") + 2.0

        self.idle_sm_mhz = column("idle_sm_clock_mhz")
        self.max_sm_mhz = column("max_sm_clock_mhz")
        self.idle_mem_mhz = column("idle_mem_clock_mhz")
        self.max_mem_mhz = column("max_mem_clock_mhz")
        self.idle_pstate = column("idle_pstate")
        self.has_fan = column("has_fan") > 0
        self.train_mem_util_pct = 20.0 + 30.0 * hasher.unit("train-mem-util", node)
        # Multi-node training moves NCCL traffic through PCIe to the NICs (GPUDirect RDMA).
        self.train_pcie_bytes_s = 2e9 + 4e9 * hasher.unit("train-pcie", node)

        # Training schedule, per node: jobs fill a slot after a short gap.
        self.slot_s = 4 * HOUR_S + 12 * HOUR_S * hasher.unit("slot-length", node)
        self.gap_s = 600.0 + 1200.0 * hasher.unit("slot-gap", node)
        self.slot_phase_s = self.slot_s * hasher.unit("slot-phase", node)
        self.thermal_period_s = 240.0 + 180.0 * hasher.unit("thermal-period", gpu)

        self.utc_offset_s = layout.utc_offset_s
        self.engine = np.minimum((3 * hasher.unit("inference-engine", node)).astype(np.int64), 2)
        self._inference_gpus = np.flatnonzero(self.role == Role.INFERENCE)
        self._rhythm = InferenceRhythm(node[self._inference_gpus], self.utc_offset_s[self._inference_gpus], hasher)

        self._hasher = hasher
        self._node = node
        self._local_index = layout.local_index
        self._gpu = gpu

    # --- training -----------------------------------------------------------------------

    def _throttled_seconds(self, job_s: np.ndarray) -> np.ndarray:
        """Seconds spent throttled during the first `job_s` seconds of a job on a thermal GPU."""
        cycles = job_s / self.thermal_period_s
        whole = np.floor(cycles)
        cool_share = 1.0 - THERMAL_HEATING_SHARE
        heating_s = THERMAL_HEATING_SHARE * self.thermal_period_s
        partial = _seconds_after((cycles - whole) * self.thermal_period_s, heating_s)
        return whole * cool_share * self.thermal_period_s + partial

    def _training_energy(self, t: float) -> np.ndarray:
        """Antiderivative of training power, minus the idle baseline."""
        slot, since_slot = _periodic_position(t, self.slot_s, self.slot_phase_s)
        job_len = self.slot_s - self.gap_s
        on_seconds = slot * job_len + _seconds_after(since_slot, self.gap_s)
        throttled = np.where(
            self.thermal,
            slot * self._throttled_seconds(job_len) + self._throttled_seconds(_seconds_after(since_slot, self.gap_s)),
            0.0,
        )
        return (self.train_w - self.idle_w) * on_seconds - (self.train_w - self.throttled_w) * throttled

    # --- inference ----------------------------------------------------------------------

    def _inference_load(self, t: float) -> np.ndarray:
        load = np.zeros(self.role.shape)
        load[self._inference_gpus] = self._rhythm.load(t)
        return load

    def _inference_energy(self, t: float, since_s: float) -> np.ndarray:
        """Integral of inference power above idle over the last `since_s` seconds before t."""
        energy = np.zeros(self.role.shape)
        gpus = self._inference_gpus
        energy[gpus] = (self.inference_peak_w[gpus] - self.idle_w[gpus]) * self._rhythm.load_integral(t, since_s)
        return energy

    # --- everything at t ---------------------------------------------------------------

    def energy_j(self, t: float, start_ts: float) -> np.ndarray:
        """Energy since `start_ts` (0 before it): the exact integral of the modelled power."""
        since = max(t - start_ts, 0.0)
        t0 = t - since
        above_idle = np.where(
            self.role == Role.TRAINING,
            self._training_energy(t) - self._training_energy(t0),
            np.where(self.role == Role.INFERENCE, self._inference_energy(t, since), 0.0),
        )
        return self.idle_w * since + above_idle

    def at(self, t: float, start_ts: float) -> Activity:
        """Every GPU at time t; cumulative quantities count from `start_ts`."""
        training = self.role == Role.TRAINING
        inference = self.role == Role.INFERENCE

        slot, since_slot = _periodic_position(t, self.slot_s, self.slot_phase_s)
        job_s = since_slot - self.gap_s
        in_job = training & (job_s >= 0)
        cycle = np.where(in_job, job_s / self.thermal_period_s % 1.0, 0.0)
        heating = cycle < THERMAL_HEATING_SHARE
        throttled = in_job & self.thermal & ~heating

        inference_load = self._inference_load(t)
        power = self.idle_w + np.where(
            in_job,
            np.where(throttled, self.throttled_w, self.train_w) - self.idle_w,
            inference_load * (self.inference_peak_w - self.idle_w),
        )

        steady_temp = self.idle_temp_c + self.temp_per_w * (power - self.idle_w)
        job_temp = self.idle_temp_c + self.temp_per_w * (self.train_w - self.idle_w)
        hot_span = self.hot_high_c - self.hot_low_c
        cooled = (cycle - THERMAL_HEATING_SHARE) / (1 - THERMAL_HEATING_SHARE)
        hot_temp = np.where(
            heating, self.hot_low_c + hot_span * cycle / THERMAL_HEATING_SHARE, self.hot_high_c - hot_span * cooled
        )
        job_temp = np.where(self.thermal, np.where(in_job, hot_temp, self.hot_high_c), job_temp)
        warming = 1.0 - np.exp(-np.maximum(job_s, 0.0) / THERMAL_TAU_S)
        cooling = np.exp(-np.minimum(since_slot, self.gap_s) / THERMAL_TAU_S)
        temp = np.where(
            training,
            self.idle_temp_c + (job_temp - self.idle_temp_c) * np.where(in_job, warming, cooling),
            steady_temp,
        )
        mem_temp = self.idle_mem_temp_c + self.mem_temp_per_gpu_temp * (temp - self.idle_temp_c)

        busy = in_job | inference
        kind = np.where(in_job, Role.TRAINING, np.where(inference, Role.INFERENCE, Role.IDLE))
        capped = in_job & self.power_capped & ~throttled
        sm_clock = np.where(busy, self.max_sm_mhz, self.idle_sm_mhz)
        sm_clock = np.where(capped, sm_clock - self.cap_clock_drop_mhz, sm_clock)
        sm_clock = np.where(throttled, _round_to_step(self.max_sm_mhz * 0.5), sm_clock)
        throttle = np.where(busy, 0, THROTTLE_GPU_IDLE)
        throttle = throttle | np.where(capped, THROTTLE_SW_POWER_CAP, 0)
        too_hot = self.thermal & in_job & (temp > self.max_operating_temp_c)
        throttle = throttle | np.where(too_hot, THROTTLE_SW_THERMAL, 0)
        throttle = throttle | np.where(throttled, THROTTLE_HW_THERMAL, 0)

        day = np.floor((t + self.utc_offset_s - 4 * HOUR_S) / DAY_S).astype(np.int64)
        job_index = np.where(in_job, slot, np.where(inference, day, 0))
        return Activity(
            kind=kind,
            job_index=job_index,
            util_pct=np.where(in_job, TRAINING_UTIL_PCT, 100.0 * inference_load),
            mem_util_pct=np.where(in_job, self.train_mem_util_pct, INFERENCE_MEM_UTIL_SHARE * 100.0 * inference_load),
            power_w=power,
            energy_j=self.energy_j(t, start_ts),
            temp_c=temp,
            mem_temp_c=mem_temp,
            sm_clock_mhz=sm_clock,
            mem_clock_mhz=np.where(busy, self.max_mem_mhz, self.idle_mem_mhz),
            pstate=np.where(busy, 0.0, self.idle_pstate),
            throttle_mask=throttle.astype(np.float64),
            mem_used_share=self._mem_used_share(kind, job_index),
            fan_pct=np.where(self.has_fan, fan_speed_pct(temp, self.idle_temp_c, self.max_operating_temp_c), np.nan),
            pcie_tx_bytes_s=IDLE_PCIE_BYTES_S
            + np.where(in_job, self.train_pcie_bytes_s, INFERENCE_PCIE_TX_BYTES_S * inference_load),
            pcie_rx_bytes_s=IDLE_PCIE_BYTES_S
            + np.where(in_job, self.train_pcie_bytes_s, INFERENCE_PCIE_RX_BYTES_S * inference_load),
        )

    def _mem_used_share(self, kind: np.ndarray, job_index: np.ndarray) -> np.ndarray:
        """Memory a job holds is fixed for the job: frameworks allocate up front."""
        per_job = self._hasher.unit("job-memory", self._node, job_index)
        per_gpu = self._hasher.unit("job-memory-gpu", self._gpu, job_index)
        training = 0.55 + 0.38 * per_job + 0.02 * per_gpu
        low, span = _ENGINE_MEMORY_SHARE[self.engine].T
        inference = low + span * per_job + 0.02 * per_gpu
        return np.where(kind == Role.TRAINING, training, np.where(kind == Role.INFERENCE, inference, 0.0))

    def processes(
        self, gpus: np.ndarray, kind: np.ndarray, job_index: np.ndarray, mem_used_bytes: np.ndarray
    ) -> list[tuple[ProcessInfo, ...]]:
        """The processes on `gpus` (given their current kind, job and memory in use), whose
        memory adds up to exactly the GPU's memory in use. Training runs one worker per GPU
        with consecutive PIDs (torchrun local ranks); a Triton server is one process on every
        GPU of its node, with a Python backend stub beside it."""
        node = self._node[gpus]
        local_rank = self._local_index[gpus]
        pid_base = 1000 + np.floor((PID_MAX - 2000) * self._hasher.unit("pid", node, kind, job_index)).astype(np.int64)
        with_helper = self._hasher.unit("process-helper", node, job_index) < TRAINING_HELPER_SHARE
        name_pick = np.floor(len(TRAINING_NAMES) * self._hasher.unit("process-name", node, job_index)).astype(np.int64)
        helper_mib = np.floor(512 + 2048 * self._hasher.unit("helper-memory", gpus, job_index))
        engine = self.engine[gpus]
        result: list[tuple[ProcessInfo, ...]] = []
        for j in range(len(gpus)):
            used = int(mem_used_bytes[j])
            base = int(pid_base[j])
            rank = int(local_rank[j])
            if kind[j] == Role.TRAINING:
                worker_name = TRAINING_NAMES[name_pick[j]]
                if with_helper[j]:
                    helper = int(helper_mib[j]) * MIB
                    worker = ProcessInfo(base + rank, worker_name, used - helper)
                    result.append((worker, ProcessInfo(base + 64 + rank, "python3", helper)))
                else:
                    result.append((ProcessInfo(base + rank, worker_name, used),))
            elif kind[j] == Role.INFERENCE:
                name = INFERENCE_ENGINES[int(engine[j])]
                if name == "tritonserver":
                    stub = int(helper_mib[j] // 4) * MIB
                    server = ProcessInfo(base, name, used - stub)
                    result.append((server, ProcessInfo(base + 40 + rank, TRITON_STUB, stub)))
                else:
                    result.append((ProcessInfo(base + rank, name, used),))
            else:
                result.append(())
        return result

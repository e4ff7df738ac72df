"""Telemetry from this machine's NVIDIA driver, through NVML (NVIDIA's official pynvml bindings).

Static facts are read once at open, identity (UUID, name, PCI bus id, serial) first, so a GPU that
falls off the bus half-way keeps the key staff need for its RMA. A poll then costs one
nvmlDeviceGetFieldValues batch per GPU (temperatures, power, energy, ECC, row remaps, PCIe replays
and byte counters) plus one call for each value NVML only offers singly, and nothing for what a GPU
has said it does not support. Where the batch is missing from the driver, refused by the GPU, or
answers a field with NOT_SUPPORTED / INVALID_ARGUMENT, that value is read by its own single call
instead: the route is found on the first reading and kept for the GPU. Whatever one GPU cannot
answer is NaN for that GPU alone: a lost GPU is marked lost and re-tried every poll.
On Hopper and newer, GPM samples taken a poll apart give real activity (SMs busy, occupancy,
tensor, DRAM, graphics engine); the first poll after open waits until the samples taken at open
are 100 ms old, so a one-shot `gpuops status` shows it too.
A MIG-enabled GPU also lists its MIG devices every poll (UUID, instance ids, profile, memory, the
processes and GPM activity of each GPU instance), at no cost to GPUs without MIG.
"""

from __future__ import annotations

import ctypes
import logging
import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pynvml

from gpuops.core.logonce import LoggedOnce
from gpuops.core.sources.base import SourceError, TelemetrySource
from gpuops.core.sources.xid_watcher import XidWatcher
from gpuops.core.telemetry import FleetSample, GpuInventory, GpuState, MigDevice, ProcessInfo, empty_metrics

log = logging.getLogger("gpuops.nvml")

NAN = math.nan
LIBRARY_MISSING = "NVIDIA driver library libnvidia-ml.so.1 not found: no NVIDIA driver installed"
# One line per nvmlInit failure a person can act on.
_INIT_FAILURES: dict[int, str] = {
    pynvml.NVML_ERROR_LIBRARY_NOT_FOUND: LIBRARY_MISSING,
    pynvml.NVML_ERROR_DRIVER_NOT_LOADED: (
        "NVIDIA driver not loaded: libnvidia-ml.so.1 is installed but the nvidia kernel module is not running"
    ),
    pynvml.NVML_ERROR_NO_PERMISSION: (
        "no permission to use the NVIDIA driver: this user cannot open /dev/nvidiactl and /dev/nvidia*"
    ),
    pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH: (
        "NVIDIA driver and libnvidia-ml.so.1 versions differ (driver updated without a reboot): "
        "reboot or reload the nvidia kernel module"
    ),
    pynvml.NVML_ERROR_FUNCTION_NOT_FOUND: "NVIDIA driver too old: libnvidia-ml.so.1 lacks nvmlInitWithFlags",
}
# Seconds close() waits for the XID thread to leave NVML before giving up on a clean shutdown.
CLOSE_TIMEOUT_S = 5.0

# NVML_FI_DEV_GPU_TEMP from nvml.h 13.x; nvidia-ml-py does not name it yet.
_FI_DEV_GPU_TEMP = 308
_PCIE_TX, _PCIE_RX = "pcie_tx_bytes_s", "pcie_rx_bytes_s"
# nvmlDeviceGetFieldValues batch: (field id, metric column, scale to the column's unit).
_FIELDS: tuple[tuple[int, str, float], ...] = (
    (_FI_DEV_GPU_TEMP, "temp_c", 1.0),
    (pynvml.NVML_FI_DEV_MEMORY_TEMP, "mem_temp_c", 1.0),
    (pynvml.NVML_FI_DEV_POWER_INSTANT, "power_w", 1e-3),  # mW
    (pynvml.NVML_FI_DEV_POWER_CURRENT_LIMIT, "power_limit_w", 1e-3),  # mW
    (pynvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION, "energy_j", 1e-3),  # mJ
    (pynvml.NVML_FI_DEV_ECC_SBE_VOL_TOTAL, "ecc_corrected_volatile", 1.0),
    (pynvml.NVML_FI_DEV_ECC_DBE_VOL_TOTAL, "ecc_uncorrected_volatile", 1.0),
    (pynvml.NVML_FI_DEV_ECC_SBE_AGG_TOTAL, "ecc_corrected_aggregate", 1.0),
    (pynvml.NVML_FI_DEV_ECC_DBE_AGG_TOTAL, "ecc_uncorrected_aggregate", 1.0),
    (pynvml.NVML_FI_DEV_REMAPPED_COR, "remapped_rows_correctable", 1.0),
    (pynvml.NVML_FI_DEV_REMAPPED_UNC, "remapped_rows_uncorrectable", 1.0),
    (pynvml.NVML_FI_DEV_REMAPPED_PENDING, "remapped_rows_pending", 1.0),
    (pynvml.NVML_FI_DEV_REMAPPED_FAILURE, "remapped_rows_failure", 1.0),
    (pynvml.NVML_FI_DEV_PCIE_REPLAY_COUNTER, "pcie_replay_count", 1.0),
    # Cumulative byte counters: turned into rates between two polls, not stored as such.
    (pynvml.NVML_FI_DEV_PCIE_COUNT_TX_BYTES, _PCIE_TX, 1.0),
    (pynvml.NVML_FI_DEV_PCIE_COUNT_RX_BYTES, _PCIE_RX, 1.0),
)
# A driver answers these for a field id it does not offer (older drivers know fewer fields).
_FIELD_ABSENT = frozenset({pynvml.NVML_ERROR_NOT_SUPPORTED, pynvml.NVML_ERROR_INVALID_ARGUMENT})
_VALUE_MEMBER = {
    pynvml.NVML_VALUE_TYPE_DOUBLE: "dVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_INT: "uiVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG: "ulVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: "ullVal",
    pynvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG: "sllVal",
    pynvml.NVML_VALUE_TYPE_SIGNED_INT: "siVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_SHORT: "usVal",
}

# Every single-value NVML query, by reader name: the pynvml functions to try (newest API first;
# the next is used when this driver lacks one) and the arguments after the device handle.
_READERS: dict[str, tuple[tuple[Callable[..., Any], ...], tuple[Any, ...]]] = {
    # inventory, once per GPU
    "uuid": ((pynvml.nvmlDeviceGetUUID,), ()),
    "name": ((pynvml.nvmlDeviceGetName,), ()),
    "serial": ((pynvml.nvmlDeviceGetSerial,), ()),
    "pci_info": ((pynvml.nvmlDeviceGetPciInfo_v3,), ()),
    "enforced_power_limit": ((pynvml.nvmlDeviceGetEnforcedPowerLimit,), ()),
    "mig_mode": ((pynvml.nvmlDeviceGetMigMode,), ()),
    "architecture": ((pynvml.nvmlDeviceGetArchitecture,), ()),
    "vbios": ((pynvml.nvmlDeviceGetVbiosVersion,), ()),
    "slowdown_temp": ((pynvml.nvmlDeviceGetTemperatureThreshold,), (pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN,)),
    "shutdown_temp": ((pynvml.nvmlDeviceGetTemperatureThreshold,), (pynvml.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN,)),
    "mem_max_temp": ((pynvml.nvmlDeviceGetTemperatureThreshold,), (pynvml.NVML_TEMPERATURE_THRESHOLD_MEM_MAX,)),
    "margin_temp": ((pynvml.nvmlDeviceGetMarginTemperature,), ()),
    "pcie_link_gen_max": ((pynvml.nvmlDeviceGetMaxPcieLinkGeneration,), ()),
    "pcie_link_width_max": ((pynvml.nvmlDeviceGetMaxPcieLinkWidth,), ()),
    "max_mig_devices": ((pynvml.nvmlDeviceGetMaxMigDeviceCount,), ()),
    "gpm_support": ((pynvml.nvmlGpmQueryDeviceSupport,), ()),
    # every poll on a GPU with GPM: a sample (the sample buffer passed per call)
    "gpm_sample": ((pynvml.nvmlGpmSampleGet,), ()),
    "gpm_mig_sample": ((pynvml.nvmlGpmMigSampleGet,), ()),  # GPU instance id, then the buffer
    # on a MIG-enabled GPU, every poll: its MIG devices (slot index passed per call) and their
    # identity (once per MIG device handle) and memory
    "mig_handle": ((pynvml.nvmlDeviceGetMigDeviceHandleByIndex,), ()),
    "mig_uuid": ((pynvml.nvmlDeviceGetUUID,), ()),
    "mig_name": ((pynvml.nvmlDeviceGetName,), ()),
    "mig_gpu_instance_id": ((pynvml.nvmlDeviceGetGpuInstanceId,), ()),
    "mig_compute_instance_id": ((pynvml.nvmlDeviceGetComputeInstanceId,), ()),
    "mig_memory": ((pynvml.nvmlDeviceGetMemoryInfo,), (pynvml.nvmlMemory_v2,)),
    # every poll
    "memory": ((pynvml.nvmlDeviceGetMemoryInfo,), (pynvml.nvmlMemory_v2,)),
    "utilization": ((pynvml.nvmlDeviceGetUtilizationRates,), ()),
    "enc_util_pct": ((pynvml.nvmlDeviceGetEncoderUtilization,), ()),  # [%, sampling period µs]
    "dec_util_pct": ((pynvml.nvmlDeviceGetDecoderUtilization,), ()),
    "compute_processes": (
        (pynvml.nvmlDeviceGetComputeRunningProcesses_v3, pynvml.nvmlDeviceGetComputeRunningProcesses_v2), ()
    ),
    "graphics_processes": (
        (pynvml.nvmlDeviceGetGraphicsRunningProcesses_v3, pynvml.nvmlDeviceGetGraphicsRunningProcesses_v2), ()
    ),
    # every poll, straight into the metric column of the same name
    "sm_clock_mhz": ((pynvml.nvmlDeviceGetClockInfo,), (pynvml.NVML_CLOCK_SM,)),
    "mem_clock_mhz": ((pynvml.nvmlDeviceGetClockInfo,), (pynvml.NVML_CLOCK_MEM,)),
    "fan_pct": ((pynvml.nvmlDeviceGetFanSpeed,), ()),
    "pstate": ((pynvml.nvmlDeviceGetPerformanceState,), ()),
    "pcie_link_gen": ((pynvml.nvmlDeviceGetCurrPcieLinkGeneration,), ()),
    "pcie_link_width": ((pynvml.nvmlDeviceGetCurrPcieLinkWidth,), ()),
    "throttle_reasons_mask": (
        (pynvml.nvmlDeviceGetCurrentClocksEventReasons, pynvml.nvmlDeviceGetCurrentClocksThrottleReasons),
        (),
    ),
    # the field batch; its (field id, scope id) pairs are passed per GPU
    "field_values": ((pynvml.nvmlDeviceGetFieldValues,), ()),
    # only for the values the field batch does not give this GPU
    "temp_c": ((pynvml.nvmlDeviceGetTemperature,), (pynvml.NVML_TEMPERATURE_GPU,)),
    "power_w": ((pynvml.nvmlDeviceGetPowerUsage,), ()),
    "energy_j": ((pynvml.nvmlDeviceGetTotalEnergyConsumption,), ()),
    "ecc_corrected_volatile": (
        (pynvml.nvmlDeviceGetTotalEccErrors,), (pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, pynvml.NVML_VOLATILE_ECC)
    ),
    "ecc_uncorrected_volatile": (
        (pynvml.nvmlDeviceGetTotalEccErrors,), (pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, pynvml.NVML_VOLATILE_ECC)
    ),
    "ecc_corrected_aggregate": (
        (pynvml.nvmlDeviceGetTotalEccErrors,), (pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, pynvml.NVML_AGGREGATE_ECC)
    ),
    "ecc_uncorrected_aggregate": (
        (pynvml.nvmlDeviceGetTotalEccErrors,), (pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, pynvml.NVML_AGGREGATE_ECC)
    ),
    "remapped_rows": ((pynvml.nvmlDeviceGetRemappedRows,), ()),
    "pcie_replay_count": ((pynvml.nvmlDeviceGetPcieReplayCounter,), ()),
    "pcie_tx_kb_s": ((pynvml.nvmlDeviceGetPcieThroughput,), (pynvml.NVML_PCIE_UTIL_TX_BYTES,)),
    "pcie_rx_kb_s": ((pynvml.nvmlDeviceGetPcieThroughput,), (pynvml.NVML_PCIE_UTIL_RX_BYTES,)),
}
_COLUMN_READERS = (
    "sm_clock_mhz", "mem_clock_mhz", "fan_pct", "pstate", "pcie_link_gen", "pcie_link_width", "throttle_reasons_mask",
)
# Field-batch metrics with a single-call route: (reader, element of its tuple answer or None, scale
# from the call's unit to the column's). mem_temp_c has none: NVML offers it only as a field.
_SINGLE_ROUTES: dict[str, tuple[str, int | None, float]] = {
    "temp_c": ("temp_c", None, 1.0),
    "power_w": ("power_w", None, 1e-3),  # mW
    "power_limit_w": ("enforced_power_limit", None, 1e-3),  # mW
    "energy_j": ("energy_j", None, 1e-3),  # mJ
    "ecc_corrected_volatile": ("ecc_corrected_volatile", None, 1.0),
    "ecc_uncorrected_volatile": ("ecc_uncorrected_volatile", None, 1.0),
    "ecc_corrected_aggregate": ("ecc_corrected_aggregate", None, 1.0),
    "ecc_uncorrected_aggregate": ("ecc_uncorrected_aggregate", None, 1.0),
    "remapped_rows_correctable": ("remapped_rows", 0, 1.0),
    "remapped_rows_uncorrectable": ("remapped_rows", 1, 1.0),
    "remapped_rows_pending": ("remapped_rows", 2, 1.0),
    "remapped_rows_failure": ("remapped_rows", 3, 1.0),
    "pcie_replay_count": ("pcie_replay_count", None, 1.0),
    _PCIE_TX: ("pcie_tx_kb_s", None, 1024.0),  # KB/s over the driver's last 20 ms
    _PCIE_RX: ("pcie_rx_kb_s", None, 1024.0),
}

# Thresholds: the nvmlDeviceGetTemperatureThreshold reader, and the T.Limit field superseding it.
_THRESHOLDS: tuple[tuple[str, int], ...] = (
    ("slowdown_temp", pynvml.NVML_FI_DEV_TEMPERATURE_SLOWDOWN_TLIMIT),
    ("shutdown_temp", pynvml.NVML_FI_DEV_TEMPERATURE_SHUTDOWN_TLIMIT),
    ("mem_max_temp", pynvml.NVML_FI_DEV_TEMPERATURE_MEM_MAX_TLIMIT),
)

_ARCHITECTURES = {
    pynvml.NVML_DEVICE_ARCH_KEPLER: "Kepler",
    pynvml.NVML_DEVICE_ARCH_MAXWELL: "Maxwell",
    pynvml.NVML_DEVICE_ARCH_PASCAL: "Pascal",
    pynvml.NVML_DEVICE_ARCH_VOLTA: "Volta",
    pynvml.NVML_DEVICE_ARCH_TURING: "Turing",
    pynvml.NVML_DEVICE_ARCH_AMPERE: "Ampere",
    pynvml.NVML_DEVICE_ARCH_ADA: "Ada Lovelace",
    pynvml.NVML_DEVICE_ARCH_HOPPER: "Hopper",
    pynvml.NVML_DEVICE_ARCH_BLACKWELL: "Blackwell",
    pynvml.NVML_DEVICE_ARCH_RUBIN: "Rubin",
}


# GPM metrics (nvmlGpmMetricsGet between two samples) and the metric column each fills, in %.
_GPM_METRICS: tuple[tuple[int, str], ...] = (
    (pynvml.NVML_GPM_METRIC_GRAPHICS_UTIL, "graphics_active_pct"),
    (pynvml.NVML_GPM_METRIC_SM_UTIL, "sm_active_pct"),
    (pynvml.NVML_GPM_METRIC_SM_OCCUPANCY, "sm_occupancy_pct"),
    (pynvml.NVML_GPM_METRIC_ANY_TENSOR_UTIL, "tensor_active_pct"),
    (pynvml.NVML_GPM_METRIC_DRAM_BW_UTIL, "dram_active_pct"),
)
# nvml.h: two GPM samples must be more than 100 ms apart (the driver refreshes its counters so often).
GPM_MIN_INTERVAL_S = 0.1


class _Gpm:
    """A GPU's two GPM sample buffers (allocated once, freed at close) and its metrics request:
    each poll samples into the buffer not holding the previous sample and asks for the metrics
    between the two."""

    def __init__(self) -> None:
        self.samples = [pynvml.nvmlGpmSampleAlloc(), pynvml.nvmlGpmSampleAlloc()]
        self.current = 0
        self.previous_valid = False
        self.request = pynvml.c_nvmlGpmMetricsGet_t()
        self.request.version = pynvml.NVML_GPM_METRICS_GET_VERSION
        self.request.numMetrics = len(_GPM_METRICS)
        for slot, (metric_id, _) in enumerate(_GPM_METRICS):
            self.request.metrics[slot].metricId = metric_id

    def free(self) -> None:
        for sample in self.samples:
            try:
                pynvml.nvmlGpmSampleFree(sample)
            except pynvml.NVMLError as exc:
                log.warning("nvmlGpmSampleFree failed: %s", exc)


# A MIG device's name is its GPU's followed by " MIG <profile>", e.g. "NVIDIA H100 80GB HBM3 MIG 3g.40gb".
_MIG_NAME_SEPARATOR = " MIG "


@dataclass(frozen=True, slots=True)
class _MigIdentity:
    """What a MIG device handle answers once: it stays the same until MIG is reconfigured."""

    uuid: str
    name: str | None
    gpu_instance_id: int | None
    compute_instance_id: int | None

    @property
    def profile(self) -> str | None:
        if self.name is None or _MIG_NAME_SEPARATOR not in self.name:
            return None
        return self.name.rsplit(_MIG_NAME_SEPARATOR, 1)[1].strip() or None


def _handle_address(handle: Any) -> int | None:
    """A device handle's pointer value: the same MIG device answers the same handle."""
    return ctypes.cast(handle, ctypes.c_void_p).value


class _GpuLost(Exception):
    """Raised inside one GPU's reading to abandon it: the GPU answered NVML_ERROR_GPU_IS_LOST."""


@dataclass(eq=False)
class _Gpu:
    """What the poll keeps per GPU between polls (touched only by the polling thread)."""

    inventory: GpuInventory
    handle: Any = None
    identified: bool = False
    lost: bool = False
    failed: bool = False  # an unexpected error during the current poll
    link_gen_max: float = NAN
    link_width_max: float = NAN
    unsupported: set[str] = field(default_factory=set)  # readers this GPU answered NOT_SUPPORTED
    # The route of each field-batch value, found on the first reading: the fields still asked in
    # the batch, and the metrics read by their single call instead (batch missing, refused, or
    # that field answered NOT_SUPPORTED / INVALID_ARGUMENT).
    fields: tuple[tuple[int, str, float], ...] = _FIELDS
    singles: tuple[str, ...] = ()
    route_known: bool = False
    pcie_previous: tuple[int, int, int] | None = None  # tx bytes, rx bytes, driver timestamp in µs
    mig_slots: int = 0  # nvmlDeviceGetMaxMigDeviceCount of a MIG-enabled GPU; 0 without MIG
    gpm: _Gpm | None = None  # on a GPU that supports GPM
    mig_gpm: dict[int, _Gpm] = field(default_factory=dict)  # per GPU instance id, on a MIG-enabled one
    mig_identities: dict[int | None, _MigIdentity] = field(default_factory=dict)  # by handle address


def _init_nvml() -> None:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise SourceError(_INIT_FAILURES.get(exc.value, f"NVML could not start: {exc}")) from None


def _system_version(function: Callable[[], Any]) -> Any:
    try:
        return function()
    except pynvml.NVMLError as exc:
        log.warning("%s failed: %s", function.__name__, exc)
        return None


def _cuda_version() -> str | None:
    version = _system_version(pynvml.nvmlSystemGetCudaDriverVersion)
    return None if version is None else f"{version // 1000}.{version % 1000 // 10}"


def _process_name(pid: int) -> str | None:
    """The command name of `pid`, or None when this OS cannot see it (another PID namespace)."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as comm:
            return comm.read().rstrip(b"\n").decode(errors="replace")
    except OSError:
        return None


def _number(value: float | None, scale: float = 1.0) -> float:
    return NAN if value is None else value * scale


class NvmlSource(TelemetrySource):
    """Every GPU of this machine. Opening raises SourceError with one line when NVML cannot start."""

    name = "nvml"

    def __init__(self, node: str | None = None) -> None:
        self._node = node or socket.gethostname()
        self._functions = {reader: list(chain) for reader, (chain, _) in _READERS.items()}
        self._read_failures = LoggedOnce(log)
        self._process_names: dict[int, str | None] = {}
        self._watcher: XidWatcher | None = None
        self._gpus: list[_Gpu] = []
        self._gpm_baseline_at: float | None = None  # monotonic time of the GPM samples taken at open
        self._closed = False
        _init_nvml()
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        self._driver_version = _system_version(pynvml.nvmlSystemGetDriverVersion)
        self._nvml_version = _system_version(pynvml.nvmlSystemGetNVMLVersion)
        self._cuda_version = _cuda_version()
        try:
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as exc:
            raise SourceError(f"NVML cannot count the GPUs: {exc}") from None
        self._gpus = [_Gpu(inventory=self._placeholder(index)) for index in range(count)]
        try:
            self._watcher = XidWatcher()
        except pynvml.NVMLError as exc:
            log.warning("XID errors will not be reported: NVML event sets unavailable (%s)", exc)
        scratch = empty_metrics(1)
        for index, gpu in enumerate(self._gpus):
            try:
                if self._identify(gpu, index):
                    self._read_fields(gpu, 0, scratch)  # PCIe counter baseline for the first poll's rates
                    self._read_gpm(gpu, 0, scratch)  # GPM baselines likewise
                    if gpu.mig_slots:
                        self._read_migs(gpu, (), {})
            except _GpuLost:
                self._mark_lost(gpu)
        if any(gpu.gpm is not None for gpu in self._gpus):
            self._gpm_baseline_at = time.monotonic()
        log.info("NVML %s, driver %s: %d GPUs on %s", self._nvml_version, self._driver_version, count, self._node)

    # ------------------------------------------------------------------ polling

    def poll(self) -> FleetSample:
        if self._closed:
            raise RuntimeError("poll() on a closed NvmlSource")
        if self._gpm_baseline_at is not None:
            # The first poll after open: the GPM baselines must be GPM_MIN_INTERVAL_S old, so
            # that even a one-shot `gpuops status` shows activity (waits once, at most 100 ms).
            time.sleep(max(0.0, self._gpm_baseline_at + GPM_MIN_INTERVAL_S - time.monotonic()))
            self._gpm_baseline_at = None
        started = time.perf_counter()
        ts = time.time()
        n_gpus = len(self._gpus)
        columns = empty_metrics(n_gpus)
        state = np.zeros(n_gpus, dtype=np.uint8)
        processes: list[tuple[ProcessInfo, ...]] = []
        mig_devices: list[tuple[MigDevice, ...]] = []
        previous_names, self._process_names = self._process_names, {}
        for i, gpu in enumerate(self._gpus):
            gpu_state, gpu_processes, gpu_migs = self._poll_gpu(gpu, i, columns, previous_names)
            state[i] = gpu_state
            processes.append(gpu_processes)
            mig_devices.append(gpu_migs)
        return FleetSample(
            ts=ts,
            gpus=tuple(gpu.inventory for gpu in self._gpus),
            metrics=columns,
            state=state,
            processes=tuple(processes),
            mig_devices=tuple(mig_devices),
            xid_events=self._watcher.drain() if self._watcher else (),
            poll_duration_s=time.perf_counter() - started,
        )

    def _poll_gpu(
        self, gpu: _Gpu, i: int, columns: dict[str, np.ndarray], previous_names: dict[int, str | None]
    ) -> tuple[GpuState, tuple[ProcessInfo, ...], tuple[MigDevice, ...]]:
        gpu.failed = False
        try:
            if not gpu.identified and not self._identify(gpu, i):
                return GpuState.UNKNOWN, (), ()
            self._read_fields(gpu, i, columns)
            self._read_singles(gpu, i, columns)
            self._read_gpm(gpu, i, columns)
            gpu_processes, instances = self._read_processes(gpu, previous_names)
            gpu_migs = self._read_migs(gpu, gpu_processes, instances) if gpu.mig_slots else ()
        except _GpuLost:
            for column in columns.values():
                column[i] = NAN
            self._mark_lost(gpu)
            for gpm in (gpu.gpm, *gpu.mig_gpm.values()):
                if gpm is not None:
                    gpm.previous_valid = False  # its counters may have reset: start over when it is back
            return GpuState.LOST, (), ()
        if gpu.lost:
            gpu.lost = False
            log.info("GPU %s answers again", gpu.inventory.uuid)
        return (GpuState.UNKNOWN if gpu.failed else GpuState.OK), gpu_processes, gpu_migs

    def _read_fields(self, gpu: _Gpu, i: int, columns: dict[str, np.ndarray]) -> None:
        """The field batch, then the single calls for what the batch does not give this GPU."""
        singles = set(gpu.singles)
        if gpu.fields:
            answered = self._read_batch(gpu, i, columns)
            if answered is None:
                singles.update(metric for _, metric, _ in gpu.fields)
            else:
                singles.update(answered)
        if not gpu.route_known and self._route_settled(gpu, singles):
            gpu.fields = tuple(f for f in gpu.fields if f[1] not in singles)
            gpu.singles = tuple(metric for metric in _SINGLE_ROUTES if metric in singles)
            gpu.route_known = True
        self._read_singly(gpu, i, columns, singles)

    def _route_settled(self, gpu: _Gpu, singles: set[str]) -> bool:
        """A batch that failed unexpectedly says nothing about the route: ask again next time."""
        return not (gpu.fields and len(singles) == len(gpu.fields) and gpu.failed)

    def _read_batch(self, gpu: _Gpu, i: int, columns: dict[str, np.ndarray]) -> list[str] | None:
        """Fill the batch's columns; the metrics it did not answer, or None when the batch failed."""
        values = self._call(gpu, "field_values", [(field_id, 0) for field_id, _, _ in gpu.fields])
        if values is None:
            return None
        absent: list[str] = []
        pcie: dict[str, int] = {}
        timestamp_us = 0
        for (_, metric, scale), value in zip(gpu.fields, values, strict=True):
            code = value.nvmlReturn
            if code == pynvml.NVML_SUCCESS:
                raw = getattr(value.value, _VALUE_MEMBER[value.valueType])
                if metric == _PCIE_TX or metric == _PCIE_RX:
                    pcie[metric] = raw
                    timestamp_us = value.timestamp
                else:
                    columns[metric][i] = raw * scale
            elif code in _FIELD_ABSENT:
                absent.append(metric)
            else:
                self._on_error(gpu, metric, code)
        if len(pcie) == 2:
            self._pcie_rates(gpu, i, columns, pcie[_PCIE_TX], pcie[_PCIE_RX], timestamp_us)
        return absent

    def _read_singly(self, gpu: _Gpu, i: int, columns: dict[str, np.ndarray], metrics: set[str]) -> None:
        answers: dict[str, Any] = {}
        for metric in _SINGLE_ROUTES:
            if metric not in metrics:
                continue
            reader, element, scale = _SINGLE_ROUTES[metric]
            if reader not in answers:
                answers[reader] = self._call(gpu, reader)
            answer = answers[reader]
            if answer is not None:
                columns[metric][i] = (answer if element is None else answer[element]) * scale

    def _pcie_rates(
        self, gpu: _Gpu, i: int, columns: dict[str, np.ndarray], tx: int, rx: int, timestamp_us: int
    ) -> None:
        """Bytes/s from the cumulative counters since the last reading; NaN when a counter wrapped."""
        previous, gpu.pcie_previous = gpu.pcie_previous, (tx, rx, timestamp_us)
        if previous is None or timestamp_us <= previous[2]:
            return
        seconds = (timestamp_us - previous[2]) / 1e6
        if tx >= previous[0]:
            columns[_PCIE_TX][i] = (tx - previous[0]) / seconds
        if rx >= previous[1]:
            columns[_PCIE_RX][i] = (rx - previous[1]) / seconds

    def _read_singles(self, gpu: _Gpu, i: int, columns: dict[str, np.ndarray]) -> None:
        utilization = self._call(gpu, "utilization")
        if utilization is not None:
            columns["util_gpu_pct"][i] = utilization.gpu
            columns["util_mem_pct"][i] = utilization.memory
        memory = self._call(gpu, "memory")
        if memory is not None:
            columns["mem_used_bytes"][i] = memory.used
            columns["mem_total_bytes"][i] = memory.total
            columns["mem_reserved_bytes"][i] = memory.reserved
        for reader in ("enc_util_pct", "dec_util_pct"):
            engine = self._call(gpu, reader)
            if engine is not None:
                columns[reader][i] = engine[0]
        for reader in _COLUMN_READERS:
            columns[reader][i] = _number(self._call(gpu, reader))
        if columns["pstate"][i] == pynvml.NVML_PSTATE_UNKNOWN:
            columns["pstate"][i] = NAN
        columns["pcie_link_gen_max"][i] = gpu.link_gen_max
        columns["pcie_link_width_max"][i] = gpu.link_width_max

    def _read_gpm(self, gpu: _Gpu, i: int, columns: dict[str, np.ndarray]) -> None:
        if gpu.gpm is not None:
            for metric, value in self._gpm_activity(gpu, gpu.gpm, "gpm_sample").items():
                columns[metric][i] = value

    def _gpm_activity(self, gpu: _Gpu, gpm: _Gpm, reader: str, *where: Any) -> dict[str, float]:
        """A GPM sample by `reader` (of the GPU, or of one GPU instance), and the activity since the
        previous sample, by metric column ({} on the first sample)."""
        sample = gpm.samples[gpm.current]
        if self._call(gpu, reader, *where, sample) is None:
            gpm.previous_valid = False
            return {}
        activity: dict[str, float] = {}
        if gpm.previous_valid:
            request = gpm.request
            request.sample1, request.sample2 = gpm.samples[1 - gpm.current], sample
            try:
                pynvml.nvmlGpmMetricsGet(request)
            except pynvml.NVMLError as exc:
                self._on_error(gpu, "gpm_metrics", exc.value)
            else:
                for slot, (_, metric) in enumerate(_GPM_METRICS):
                    if request.metrics[slot].nvmlReturn == pynvml.NVML_SUCCESS:
                        activity[metric] = request.metrics[slot].value
        gpm.current, gpm.previous_valid = 1 - gpm.current, True
        return activity

    def _new_gpm(self, gpu: _Gpu) -> _Gpm | None:
        try:
            return _Gpm()
        except pynvml.NVMLError as exc:
            message = "GPU %s: no GPM activity, sample buffers refused: %s"
            self._read_failures.log(("gpm", gpu.inventory.uuid), message, gpu.inventory.uuid, exc)
            return None

    def _read_processes(
        self, gpu: _Gpu, previous_names: dict[int, str | None]
    ) -> tuple[tuple[ProcessInfo, ...], dict[int, int]]:
        """Compute and graphics processes, one entry per PID (a process can be in both lists), and
        the GPU instance each runs in, by PID, on a MIG-enabled GPU."""
        found: dict[int, ProcessInfo] = {}
        instances: dict[int, int] = {}
        for reader in ("compute_processes", "graphics_processes"):
            for process in self._call(gpu, reader) or ():
                pid = process.pid
                if pid in found:
                    continue
                name = previous_names[pid] if pid in previous_names else _process_name(pid)
                self._process_names[pid] = name
                found[pid] = ProcessInfo(pid=pid, name=name, used_mem_bytes=process.usedGpuMemory)
                if gpu.mig_slots:
                    instances[pid] = process.gpuInstanceId
        return tuple(found.values()), instances

    def _read_migs(
        self, gpu: _Gpu, processes: tuple[ProcessInfo, ...], instances: dict[int, int]
    ) -> tuple[MigDevice, ...]:
        """The MIG devices of a MIG-enabled GPU, enumerated every poll (an administrator may
        re-split an idle GPU); a handle's identity is read once, its memory every time."""
        devices: list[MigDevice] = []
        identities: dict[int | None, _MigIdentity] = {}
        kept_gpm: dict[int, _Gpm] = {}
        for slot in range(gpu.mig_slots):
            handle = self._call(gpu, "mig_handle", slot)
            if handle is None:
                continue  # an empty slot (NOT_FOUND)
            address = _handle_address(handle)
            identity = gpu.mig_identities.get(address) or self._mig_identity(gpu, handle)
            if identity is None:
                continue
            identities[address] = identity
            memory = self._call_on(gpu, handle, "mig_memory")
            activity = self._mig_activity(gpu, identity.gpu_instance_id, kept_gpm)
            devices.append(MigDevice(
                uuid=identity.uuid,
                gpu_instance_id=identity.gpu_instance_id,
                compute_instance_id=identity.compute_instance_id,
                profile=identity.profile,
                name=identity.name,
                mem_used_bytes=None if memory is None else memory.used,
                mem_total_bytes=None if memory is None else memory.total,
                processes=tuple(p for p in processes if instances.get(p.pid) == identity.gpu_instance_id),
                **activity,
            ))
        gpu.mig_identities = identities
        for gone in gpu.mig_gpm.keys() - kept_gpm.keys():  # a GPU instance destroyed by a re-split
            gpu.mig_gpm[gone].free()
        gpu.mig_gpm = kept_gpm
        return tuple(devices)

    def _mig_activity(self, gpu: _Gpu, instance_id: int | None, kept: dict[int, _Gpm]) -> dict[str, float]:
        """GPM activity of one GPU instance (nvmlGpmMigSampleGet) on a GPU that has GPM."""
        if gpu.gpm is None or instance_id is None:
            return {}
        gpm = gpu.mig_gpm.get(instance_id) or self._new_gpm(gpu)
        if gpm is None:
            return {}
        kept[instance_id] = gpm
        return self._gpm_activity(gpu, gpm, "gpm_mig_sample", instance_id)

    def _mig_identity(self, gpu: _Gpu, handle: Any) -> _MigIdentity | None:
        uuid = self._call_on(gpu, handle, "mig_uuid")
        if uuid is None:
            return None
        return _MigIdentity(
            uuid=uuid,
            name=self._call_on(gpu, handle, "mig_name"),
            gpu_instance_id=self._call_on(gpu, handle, "mig_gpu_instance_id"),
            compute_instance_id=self._call_on(gpu, handle, "mig_compute_instance_id"),
        )

    # ------------------------------------------------------------------ NVML calls and their errors

    def _call(self, gpu: _Gpu, reader: str, *extra: Any) -> Any:
        """One reader on one GPU; None when the GPU cannot answer it. Raises _GpuLost.

        A function this driver lacks is dropped for every GPU and logged once."""
        return self._call_on(gpu, gpu.handle, reader, *extra)

    def _call_on(self, gpu: _Gpu, handle: Any, reader: str, *extra: Any) -> Any:
        """`_call` on `handle`: the GPU's own or one of its MIG devices' (whose errors are the GPU's)."""
        if reader in gpu.unsupported:
            return None
        functions = self._functions[reader]
        arguments = _READERS[reader][1] + extra
        while functions:
            try:
                return functions[0](handle, *arguments)
            except pynvml.NVMLError_FunctionNotFound:
                missing = functions.pop(0).__name__
                fallback = f"using {functions[0].__name__} instead" if functions else f"{reader} is not available"
                log.warning("this NVIDIA driver lacks %s: %s", missing, fallback)
            except pynvml.NVMLError as exc:
                self._on_error(gpu, reader, exc.value)
                return None
        return None

    def _on_error(self, gpu: _Gpu, reader: str, code: int) -> None:
        if code == pynvml.NVML_ERROR_GPU_IS_LOST:
            raise _GpuLost
        if code == pynvml.NVML_ERROR_NOT_SUPPORTED:
            gpu.unsupported.add(reader)
            return
        if code == pynvml.NVML_ERROR_NOT_FOUND:
            return  # nothing at that index: an empty MIG slot
        uuid = gpu.inventory.uuid
        if code == pynvml.NVML_ERROR_NO_PERMISSION:
            self._read_failures.log(("permission", uuid, reader), "no permission to read %s on GPU %s", reader, uuid)
            return
        gpu.failed = True
        message = "GPU %s state unknown: reading %s failed with %s"
        self._read_failures.log(("error", uuid, code), message, uuid, reader, pynvml.NVMLError(code))

    def _mark_lost(self, gpu: _Gpu) -> None:
        if not gpu.lost:
            gpu.lost = True
            log.warning("GPU %s is lost (fallen off the bus or not answering)", gpu.inventory.uuid)

    # ------------------------------------------------------------------ inventory

    def _placeholder(self, index: int) -> GpuInventory:
        """Stands for a GPU whose UUID cannot be read yet; replaced once it answers."""
        return GpuInventory(
            uuid=f"unidentified-{self._node}-{index}",
            index=index,
            node=self._node,
            name="unidentified GPU (not answering)",
            driver_version=self._driver_version,
            nvml_version=self._nvml_version,
            cuda_version=self._cuda_version,
        )

    def _identify(self, gpu: _Gpu, index: int) -> bool:
        """Read a GPU's static facts; False (state unknown) if it has no handle or UUID yet."""
        if gpu.handle is None:
            try:
                gpu.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            except pynvml.NVMLError as exc:
                self._on_error(gpu, "handle", exc.value)
                return False
        uuid = self._call(gpu, "uuid")
        if uuid is None:
            gpu.failed = True
            return False
        # Identity before telemetry, kept as soon as it is read: should the next call answer
        # GPU_IS_LOST, the GPU is still listed (and alerted on) under its UUID, name and bus id.
        gpu.inventory = identity = replace(self._placeholder(index), uuid=uuid, name="unknown NVIDIA GPU")
        gpu.inventory = identity = replace(identity, name=self._call(gpu, "name") or identity.name)
        pci = self._call(gpu, "pci_info")
        gpu.inventory = identity = replace(identity, pci_bus_id=None if pci is None else pci.busId)
        gpu.inventory = identity = replace(identity, serial=self._call(gpu, "serial"))
        memory = self._call(gpu, "memory")
        mig = self._call(gpu, "mig_mode")
        power_limit_mw = self._call(gpu, "enforced_power_limit")
        slowdown, shutdown, mem_max = self._thresholds(gpu)
        gpu.inventory = replace(
            identity,
            mem_total_bytes=None if memory is None else memory.total,
            power_limit_w=None if power_limit_mw is None else power_limit_mw / 1000,
            mig_mode=None if mig is None else mig[0] == pynvml.NVML_DEVICE_MIG_ENABLE,
            architecture=_ARCHITECTURES.get(self._call(gpu, "architecture")),
            vbios_version=self._call(gpu, "vbios"),
            slowdown_temp_c=slowdown,
            shutdown_temp_c=shutdown,
            mem_max_temp_c=mem_max,
        )
        if gpu.inventory.mig_mode:
            gpu.mig_slots = self._call(gpu, "max_mig_devices") or 0
        if gpu.gpm is None:
            support = self._call(gpu, "gpm_support")
            if support is not None and support.isSupportedDevice:
                gpu.gpm = self._new_gpm(gpu)
        gpu.link_gen_max = _number(self._call(gpu, "pcie_link_gen_max"))
        gpu.link_width_max = _number(self._call(gpu, "pcie_link_width_max"))
        gpu.identified = True
        if self._watcher is not None:
            self._watcher.watch(gpu.handle, uuid)
        return True

    def _thresholds(self, gpu: _Gpu) -> list[float | None]:
        """Slowdown, shutdown and memory-max temperatures in °C: by nvmlDeviceGetTemperatureThreshold,
        or where that call refuses (nvml.h: superseded on Ada and later) by the T.Limit fields."""
        values: list[float | None] = [self._call(gpu, reader) for reader, _ in _THRESHOLDS]
        if None in values:
            by_field = self._tlimit_thresholds(gpu)
            values = [value if value is not None else by_field[j] for j, value in enumerate(values)]
        return values

    def _tlimit_thresholds(self, gpu: _Gpu) -> list[float | None]:
        """The thresholds from the NVML_FI_DEV_TEMPERATURE_*_TLIMIT fields, which count degrees below
        T.Limit: absolute = temperature + margin to T.Limit (nvmlDeviceGetMarginTemperature) - field."""
        nothing: list[float | None] = [None] * len(_THRESHOLDS)
        answers = self._call(gpu, "field_values", [(field_id, 0) for _, field_id in _THRESHOLDS])
        if answers is None or all(a.nvmlReturn != pynvml.NVML_SUCCESS for a in answers):
            return nothing
        margin, temp = self._call(gpu, "margin_temp"), self._call(gpu, "temp_c")
        if margin is None or temp is None:
            return nothing
        return [
            temp + margin - getattr(a.value, _VALUE_MEMBER[a.valueType]) if a.nvmlReturn == pynvml.NVML_SUCCESS else None
            for a in answers
        ]

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._watcher is not None and not self._watcher.close(CLOSE_TIMEOUT_S):
            log.warning("XID thread still inside NVML after %.0f s; leaving NVML initialised", CLOSE_TIMEOUT_S)
            return
        self._shutdown()

    def _shutdown(self) -> None:
        for gpu in self._gpus:
            for gpm in (gpu.gpm, *gpu.mig_gpm.values()):
                if gpm is not None:
                    gpm.free()
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError as exc:
            log.warning("nvmlShutdown failed: %s", exc)

"""The dcgm-exporter vocabulary: metric names, units, labels and blank sentinels.

One table serves both directions, so that what `gpuops agent` serves and what the `scrape:`
and `prometheus:` sources read can never drift apart: the agent divides a gpuops value by
`scale` to get DCGM's unit, the sources multiply by it.

Names and types follow dcgm-exporter's own counter lists (etc/default-counters.csv,
etc/dcp-metrics-included.csv) and real captures; tests/test_dcgm_schema.py checks them
against those files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIB = float(2**20)

# Labels dcgm-exporter puts on every GPU series.
LABEL_GPU = "gpu"
LABEL_UUID = "UUID"
LABEL_DEVICE = "device"
LABEL_MODEL = "modelName"
LABEL_HOST = "Hostname"
LABEL_HOST_LOWER = "hostname"  # some exporter configurations (and relabelling rules) spell it so
LABEL_PCI_BUS_ID = "pci_bus_id"
LABEL_DRIVER = "DCGM_FI_DRIVER_VERSION"
GPU_LABELS: tuple[str, ...] = (
    LABEL_GPU, LABEL_UUID, LABEL_DEVICE, LABEL_MODEL, LABEL_HOST, LABEL_PCI_BUS_ID, LABEL_DRIVER,
)
# Optional labels some exporter configurations add.
LABEL_SERIAL = "DCGM_FI_DEV_SERIAL"
LABEL_VBIOS = "DCGM_FI_DEV_VBIOS_VERSION"
LABEL_NVML_VERSION = "DCGM_FI_NVML_VERSION"
LABEL_CUDA_DRIVER = "DCGM_FI_CUDA_DRIVER_VERSION"
# MIG instance and Kubernetes workload labels.
LABEL_MIG_ID = "GPU_I_ID"
LABEL_MIG_PROFILE = "GPU_I_PROFILE"
LABEL_POD = "pod"
LABEL_NAMESPACE = "namespace"
LABEL_CONTAINER = "container"
MIG_PROFILE_NULL = "<<<NULL>>>"  # DCGM's "no profile" string, not a profile name

# gpuops extras, served by the agent next to the DCGM names.
GPUOPS_PROCESS_MEMORY = "gpuops_process_memory_used_bytes"
GPUOPS_XID_ERRORS = "gpuops_xid_errors"  # a counter: samples are named gpuops_xid_errors_total
GPUOPS_XID_ERRORS_TOTAL = GPUOPS_XID_ERRORS + "_total"
GPUOPS_GPU_STATE = "gpuops_gpu_state"  # a state set: label gpuops_gpu_state="ok|lost|unknown"
GPUOPS_GPU_INFO = "gpuops_gpu_info"  # value 1; inventory that has no DCGM label
GPUOPS_SOURCE_UP = "gpuops_source_up"
LABEL_PID = "pid"
LABEL_PROCESS_NAME = "process_name"
LABEL_XID = "xid"
INFO_LABELS: tuple[str, ...] = (
    "serial", "vbios_version", "nvml_version", "cuda_version", "architecture", "mig_mode",
)


@dataclass(frozen=True, slots=True)
class DcgmField:
    """One DCGM field as dcgm-exporter names it, and the gpuops column it carries.

    `metric` is a SAMPLE_METRICS column, or "" for fields that feed something else
    (free memory, last XID, slowdown temperature). gpuops value = DCGM value * `scale`.
    """

    name: str
    metric: str
    kind: str  # "gauge" or "counter", as dcgm-exporter declares it
    scale: float
    help: str
    aliases: tuple[str, ...] = ()


FB_USED = "DCGM_FI_DEV_FB_USED"
FB_FREE = "DCGM_FI_DEV_FB_FREE"
FB_TOTAL = "DCGM_FI_DEV_FB_TOTAL"
FB_RESERVED = "DCGM_FI_DEV_FB_RESERVED"
XID_ERRORS = "DCGM_FI_DEV_XID_ERRORS"
SLOWDOWN_TEMP = "DCGM_FI_DEV_SLOWDOWN_TEMP"
PROF_GR_ENGINE_ACTIVE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
PROF_SM_ACTIVE = "DCGM_FI_PROF_SM_ACTIVE"
PROF_SM_OCCUPANCY = "DCGM_FI_PROF_SM_OCCUPANCY"
PROF_PIPE_TENSOR_ACTIVE = "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"
PROF_DRAM_ACTIVE = "DCGM_FI_PROF_DRAM_ACTIVE"

FIELDS: tuple[DcgmField, ...] = (
    DcgmField("DCGM_FI_DEV_GPU_UTIL", "util_gpu_pct", "gauge", 1.0, "GPU utilization (in %)."),
    DcgmField("DCGM_FI_DEV_MEM_COPY_UTIL", "util_mem_pct", "gauge", 1.0, "Memory utilization (in %)."),
    DcgmField("DCGM_FI_DEV_ENC_UTIL", "enc_util_pct", "gauge", 1.0, "Encoder utilization (in %)."),
    DcgmField("DCGM_FI_DEV_DEC_UTIL", "dec_util_pct", "gauge", 1.0, "Decoder utilization (in %)."),
    DcgmField(FB_USED, "mem_used_bytes", "gauge", MIB, "Framebuffer memory used (in MiB)."),
    DcgmField(FB_FREE, "", "gauge", MIB, "Framebuffer memory free (in MiB)."),
    DcgmField(FB_TOTAL, "mem_total_bytes", "gauge", MIB, "Framebuffer memory total (in MiB)."),
    DcgmField(FB_RESERVED, "mem_reserved_bytes", "gauge", MIB, "Framebuffer memory reserved (in MiB)."),
    DcgmField("DCGM_FI_DEV_GPU_TEMP", "temp_c", "gauge", 1.0, "GPU temperature (in C)."),
    DcgmField("DCGM_FI_DEV_MEMORY_TEMP", "mem_temp_c", "gauge", 1.0, "Memory temperature (in C)."),
    DcgmField(SLOWDOWN_TEMP, "", "gauge", 1.0, "Slowdown temperature threshold (in C)."),
    DcgmField("DCGM_FI_DEV_POWER_USAGE", "power_w", "gauge", 1.0, "Power draw (in W)."),
    DcgmField("DCGM_FI_DEV_POWER_MGMT_LIMIT", "power_limit_w", "gauge", 1.0, "Power management limit (in W)."),
    DcgmField(
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "energy_j", "counter", 1e-3,
        "Total energy consumption since boot (in mJ).",
    ),
    DcgmField("DCGM_FI_DEV_SM_CLOCK", "sm_clock_mhz", "gauge", 1.0, "SM clock frequency (in MHz)."),
    DcgmField("DCGM_FI_DEV_MEM_CLOCK", "mem_clock_mhz", "gauge", 1.0, "Memory clock frequency (in MHz)."),
    DcgmField("DCGM_FI_DEV_FAN_SPEED", "fan_pct", "gauge", 1.0, "Fan speed (in %)."),
    DcgmField("DCGM_FI_DEV_PSTATE", "pstate", "gauge", 1.0, "Performance state (P0 fastest)."),
    DcgmField(
        "DCGM_FI_PROF_PCIE_TX_BYTES", "pcie_tx_bytes_s", "gauge", 1.0,
        "The rate of data transmitted over the PCIe bus, in bytes per second.",
    ),
    DcgmField(
        "DCGM_FI_PROF_PCIE_RX_BYTES", "pcie_rx_bytes_s", "gauge", 1.0,
        "The rate of data received over the PCIe bus, in bytes per second.",
    ),
    DcgmField("DCGM_FI_DEV_PCIE_LINK_GEN", "pcie_link_gen", "gauge", 1.0, "PCIe current link generation."),
    DcgmField("DCGM_FI_DEV_PCIE_MAX_LINK_GEN", "pcie_link_gen_max", "gauge", 1.0, "PCIe max link generation."),
    DcgmField("DCGM_FI_DEV_PCIE_LINK_WIDTH", "pcie_link_width", "gauge", 1.0, "PCIe current link width."),
    DcgmField("DCGM_FI_DEV_PCIE_MAX_LINK_WIDTH", "pcie_link_width_max", "gauge", 1.0, "PCIe max link width."),
    DcgmField(
        "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "ecc_corrected_volatile", "counter", 1.0,
        "Total number of single-bit volatile ECC errors.",
    ),
    DcgmField(
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "ecc_uncorrected_volatile", "counter", 1.0,
        "Total number of double-bit volatile ECC errors.",
    ),
    DcgmField(
        "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", "ecc_corrected_aggregate", "counter", 1.0,
        "Total number of single-bit persistent ECC errors.",
    ),
    DcgmField(
        "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "ecc_uncorrected_aggregate", "counter", 1.0,
        "Total number of double-bit persistent ECC errors.",
    ),
    DcgmField(
        "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "remapped_rows_correctable", "counter", 1.0,
        "Number of remapped rows for correctable errors",
    ),
    DcgmField(
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "remapped_rows_uncorrectable", "counter", 1.0,
        "Number of remapped rows for uncorrectable errors",
    ),
    DcgmField("DCGM_FI_DEV_ROW_REMAP_PENDING", "remapped_rows_pending", "gauge", 1.0, "Whether remapping of rows is pending"),
    DcgmField("DCGM_FI_DEV_ROW_REMAP_FAILURE", "remapped_rows_failure", "gauge", 1.0, "Whether remapping of rows has failed"),
    DcgmField(
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "pcie_replay_count", "counter", 1.0, "Total number of PCIe retries.",
    ),
    DcgmField(
        "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "throttle_reasons_mask", "gauge", 1.0,
        "Current clock throttle reasons (bit mask of NVML clocks-event reasons).",
        aliases=("DCGM_FI_DEV_CLOCKS_EVENT_REASONS",),
    ),
    DcgmField(XID_ERRORS, "", "gauge", 1.0, "Value of the last XID error encountered."),
    # DCGM profiling (DCP) fields: ratios 0-1, shown in % (help texts as dcgm-exporter's lists).
    DcgmField(PROF_GR_ENGINE_ACTIVE, "graphics_active_pct", "gauge", 100.0, "Ratio of time the graphics engine is active."),
    DcgmField(
        PROF_SM_ACTIVE, "sm_active_pct", "gauge", 100.0, "The ratio of cycles an SM has at least 1 warp assigned.",
    ),
    DcgmField(PROF_SM_OCCUPANCY, "sm_occupancy_pct", "gauge", 100.0, "The ratio of number of warps resident on an SM."),
    DcgmField(
        PROF_PIPE_TENSOR_ACTIVE, "tensor_active_pct", "gauge", 100.0, "Ratio of cycles the tensor (HMMA) pipe is active.",
    ),
    DcgmField(
        PROF_DRAM_ACTIVE, "dram_active_pct", "gauge", 100.0,
        "Ratio of cycles the device memory interface is active sending or receiving data.",
    ),
)

FIELDS_BY_NAME: dict[str, DcgmField] = {
    name: field for field in FIELDS for name in (field.name, *field.aliases)
}

# Fields whose MIG-instance values add up to the parent GPU's (each instance owns a disjoint
# slice of framebuffer). Other fields are device-wide values every instance repeats.
MIG_ADDITIVE_FIELDS: frozenset[str] = frozenset({FB_USED, FB_FREE, FB_RESERVED, FB_TOTAL})
# Fields whose MIG-instance values are activity of a slice: the parent gets their mean.
MIG_MEAN_FIELDS: frozenset[str] = frozenset({
    "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL", PROF_GR_ENGINE_ACTIVE, PROF_SM_ACTIVE, PROF_SM_OCCUPANCY,
    PROF_PIPE_TENSOR_ACTIVE, PROF_DRAM_ACTIVE,
})

# DCGM's "no value" sentinels (dcgm_structs.h). Values at or above INT64_BLANK, within 16 of
# FP64_BLANK (2**47), or within 16 of INT32_BLANK on a gauge, mean blank / not found / not
# supported / not permissioned. A counter may legitimately pass 2**31, so the 32-bit window
# only applies to gauges.
DCGM_INT32_BLANK = 0x7FFFFFF0
DCGM_INT64_BLANK = 0x7FFFFFFFFFFFFFF0
DCGM_FP64_BLANK = 140737488355328.0
_INT64_BLANK_FLOOR = 9.2233e18  # float(DCGM_INT64_BLANK) rounds to 2**63; exporters may print fewer digits
_SENTINEL_SPAN = 16


def is_dcgm_blank(value: float, kind: str = "gauge") -> bool:
    """True when `value` is one of DCGM's sentinel values rather than a reading."""
    if value >= _INT64_BLANK_FLOOR:
        return True
    if DCGM_FP64_BLANK <= value < DCGM_FP64_BLANK + _SENTINEL_SPAN:
        return True
    return kind == "gauge" and DCGM_INT32_BLANK <= value < DCGM_INT32_BLANK + _SENTINEL_SPAN


def dcgm_blank_mask(values: np.ndarray, kind: str = "gauge") -> np.ndarray:
    """`is_dcgm_blank` over a whole column at once."""
    with np.errstate(invalid="ignore"):
        mask = (values >= _INT64_BLANK_FLOOR) | ((values >= DCGM_FP64_BLANK) & (values < DCGM_FP64_BLANK + _SENTINEL_SPAN))
        if kind == "gauge":
            mask |= (values >= DCGM_INT32_BLANK) & (values < DCGM_INT32_BLANK + _SENTINEL_SPAN)
    return mask


def cuda_version_from_dcgm(value: str) -> str | None:
    """DCGM_FI_CUDA_DRIVER_VERSION "12010" -> "12.1" (NVML's major*1000 + minor*10)."""
    try:
        number = int(value)
    except ValueError:
        return value or None
    return f"{number // 1000}.{number % 1000 // 10}"

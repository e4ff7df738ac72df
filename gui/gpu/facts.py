"""A GPU's static facts, health counters and clock-throttle reasons, in words people use."""

from __future__ import annotations

import math

from gpuops.core.telemetry import THROTTLE_REASON_BITS, FleetSample, decode_throttle_reasons
from gpuops.core.units import DEFAULT_UNITS, MISSING, DisplayUnits, format_bytes, format_power, format_temperature

#: What each NVML clocks-event reason means for an operator.
THROTTLE_WORDS: dict[str, str] = {
    "gpu_idle": "Idle: nothing is running, so clocks are lowered (normal)",
    "applications_clocks_setting": "Held at the applications clocks someone set (nvidia-smi -ac)",
    "sw_power_cap": "Power cap: the GPU is at its power limit and software lowers clocks to stay under it",
    "hw_slowdown": (
        "Hardware slowdown: the GPU cut its clocks to protect itself (too hot or a power problem); check cooling and power"
    ),
    "sync_boost": "Sync boost: clocks held to match the other GPUs of its sync group",
    "sw_thermal_slowdown": "Thermal slowdown (software): running hot, clocks lowered to keep the temperature in range",
    "hw_thermal_slowdown": "Thermal slowdown (hardware): too hot, clocks cut hard; check fans, airflow, inlet temperature",
    "hw_power_brake_slowdown": "Power brake: the external power-brake signal is on (power supply or rack power problem)",
    "display_clock_setting": "Held by the display clock setting",
}
assert set(THROTTLE_WORDS) == set(THROTTLE_REASON_BITS)

#: Health counters shown with their change over the chosen range: metric -> label.
HEALTH_COUNTERS: dict[str, str] = {
    "ecc_uncorrected_aggregate": "ECC uncorrectable (lifetime)",
    "ecc_corrected_aggregate": "ECC corrected (lifetime)",
    "ecc_uncorrected_volatile": "ECC uncorrectable (since driver load)",
    "ecc_corrected_volatile": "ECC corrected (since driver load)",
    "remapped_rows_uncorrectable": "Rows remapped, uncorrectable",
    "remapped_rows_correctable": "Rows remapped, correctable",
    "remapped_rows_pending": "Row remap pending (reset needed)",
    "remapped_rows_failure": "Row remap failure (RMA)",
    "pcie_replay_count": "PCIe replays",
}


def _text(value: object) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "enabled" if value else "disabled"
    return str(value)


def inventory_rows(sample: FleetSample, i: int, units: DisplayUnits = DEFAULT_UNITS) -> list[tuple[str, str]]:
    """(label, value) of the GPU's static facts, in the order an operator reads them."""
    gpu = sample.gpus[i]
    place = " / ".join(part for part in (gpu.site, gpu.rack) if part) or MISSING
    limit = sample.metrics["power_limit_w"][i]
    return [
        ("Model", gpu.name),
        ("UUID", gpu.uuid),
        ("Serial", _text(gpu.serial)),
        ("PCI bus id", _text(gpu.pci_bus_id)),
        ("Node", f"{gpu.node} (GPU {gpu.index})"),
        ("Site / rack", place),
        ("Architecture", _text(gpu.architecture)),
        ("Memory", format_bytes(gpu.mem_total_bytes, units)),
        ("Power limit", format_power(gpu.power_limit_w if math.isnan(limit) else float(limit))),
        ("Driver", _text(gpu.driver_version)),
        ("CUDA", _text(gpu.cuda_version)),
        ("VBIOS", _text(gpu.vbios_version)),
        ("MIG mode", _text(gpu.mig_mode)),
        (
            "Slowdown / shutdown temperature",
            f"{format_temperature(gpu.slowdown_temp_c, units)} / {format_temperature(gpu.shutdown_temp_c, units)}",
        ),
    ]


def throttle_lines(mask: float) -> list[str]:
    """Plain-language reasons for the set throttle bits; a line saying so when none or unknown."""
    if isinstance(mask, float) and math.isnan(mask):
        return ["Clock throttle reasons: not reported by this GPU"]
    names = decode_throttle_reasons(mask)
    return [THROTTLE_WORDS[n] for n in names] or ["Clocks are not held back"]


def counter_text(value: float | None) -> str:
    return MISSING if value is None or math.isnan(value) else f"{value:,.0f}"

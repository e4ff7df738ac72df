"""One GPU described in words, for tooltips and the detail header."""

from __future__ import annotations

import math

from gpuops.core.telemetry import FleetSample
from gpuops.core.units import (
    DEFAULT_UNITS,
    DisplayUnits,
    format_age,
    format_bytes,
    format_optional,
    format_power,
    format_temperature,
)


def _value(sample: FleetSample, name: str, i: int) -> float | None:
    value = float(sample.metrics[name][i])
    return None if math.isnan(value) else value


def gpu_location(sample: FleetSample, i: int) -> str:
    """"node-3 · GPU 2 · NVIDIA H100 80GB HBM3 (site a / rack r07)"."""
    gpu = sample.gpus[i]
    place = " / ".join(part for part in (gpu.site, gpu.rack) if part)
    return f"{gpu.node} · GPU {gpu.index} · {gpu.name}" + (f" ({place})" if place else "")


def gpu_readings(sample: FleetSample, i: int, units: DisplayUnits = DEFAULT_UNITS) -> str:
    """"util 87 % · mem 40.1 GiB / 80.0 GiB · 67 °C · 412 W / 700 W"."""
    gpu = sample.gpus[i]
    mem_total = _value(sample, "mem_total_bytes", i) or gpu.mem_total_bytes
    power_limit = _value(sample, "power_limit_w", i) or gpu.power_limit_w
    return " · ".join(
        (
            f"util {format_optional(_value(sample, 'util_gpu_pct', i), '{:.0f} %')}",
            f"mem {format_bytes(_value(sample, 'mem_used_bytes', i), units)} / {format_bytes(mem_total, units)}",
            format_temperature(_value(sample, "temp_c", i), units),
            f"{format_power(_value(sample, 'power_w', i))} / {format_power(power_limit)}",
        )
    )


def staleness_text(last_fresh_ts: float | None, now: float) -> str:
    """"stale, last seen 3 min ago" (or just "stale data" when the time is unknown)."""
    if last_fresh_ts is None or not math.isfinite(last_fresh_ts):
        return "stale data"
    return f"stale, last seen {format_age(max(0.0, now - last_fresh_ts))}"


def gpu_tooltip(
    sample: FleetSample,
    i: int,
    *,
    stale: bool = False,
    last_fresh_ts: float | None = None,
    now: float | None = None,
    reason: str = "",
    customer: str | None = None,
    units: DisplayUnits = DEFAULT_UNITS,
) -> str:
    """Several plain lines: where, which, state (and how old the data is when stale), the
    health findings, who holds it, key readings, processes."""
    processes = len(sample.processes[i])
    state = sample.gpu_state(i).label
    if stale or sample.gpus[i].node in sample.stale_nodes:
        state += f" ({staleness_text(last_fresh_ts, sample.ts if now is None else now)})"
    lines = [gpu_location(sample, i), sample.gpus[i].uuid, f"state: {state}"]
    lines.append(f"health: {reason}" if reason else "health: ok")
    if customer:
        lines.append(f"customer: {customer}")
    lines.append(gpu_readings(sample, i, units))
    lines.append(f"{processes} process{'es' if processes != 1 else ''}" if processes else "no processes")
    return "\n".join(lines)

"""The `gpuops status` document: a contract scripts rely on (schema in README.md)."""

from __future__ import annotations

from typing import Any

from gpuops.core.sources.base import TelemetrySource
from gpuops.core.telemetry import FleetSample
from gpuops.core.units import format_bytes, format_optional


def status_document(source: TelemetrySource, sample: FleetSample) -> dict[str, Any]:
    """{"source", "simulated", "notice", "collected_at", "errors", "gpus": [...]}, JSON-ready."""
    return {
        "source": source.name,
        "simulated": source.simulated,
        "notice": source.notice,
        "collected_at": sample.ts,
        "errors": list(sample.errors),
        "gpus": sample.records(),
    }


_COLUMNS: tuple[tuple[str, str], ...] = (
    ("node", "NODE"),
    ("index", "IDX"),
    ("name", "NAME"),
    ("state", "STATE"),
    ("util_gpu_pct", "UTIL%"),
    ("mem", "MEMORY"),
    ("temp_c", "TEMP°C"),
    ("power", "POWER W"),
    ("pstate", "PSTATE"),
    ("procs", "PROCS"),
)


def _cells(gpu: dict[str, Any]) -> dict[str, str]:
    used, total = gpu["mem_used_bytes"], gpu["mem_total_bytes"]
    power, limit = gpu["power_w"], gpu["power_limit_w"]
    return {
        "node": gpu["node"],
        "index": str(gpu["index"]),
        "name": gpu["name"],
        "state": gpu["state"],
        "util_gpu_pct": format_optional(gpu["util_gpu_pct"], "{:.0f}"),
        "mem": f"{format_bytes(used)} / {format_bytes(total)}",
        "temp_c": format_optional(gpu["temp_c"], "{:.0f}"),
        "power": f"{format_optional(power, '{:.0f}')} / {format_optional(limit, '{:.0f}')}",
        "pstate": "—" if gpu["pstate"] is None else f"P{gpu['pstate']}",
        "procs": str(len(gpu["processes"])),
    }


def status_table(document: dict[str, Any]) -> str:
    """A fixed-width, human-readable table, one line per GPU, like gpustat."""
    rows = [_cells(gpu) for gpu in document["gpus"]]
    widths = {
        key: max([len(title)] + [len(row[key]) for row in rows]) for key, title in _COLUMNS
    }
    lines = ["  ".join(title.ljust(widths[key]) for key, title in _COLUMNS)]
    lines += ["  ".join(row[key].ljust(widths[key]) for key, _ in _COLUMNS) for row in rows]
    for error in document["errors"]:
        lines.append(f"error: {error}")
    return "\n".join(line.rstrip() for line in lines)

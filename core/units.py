"""Numbers formatted for people: GiB, kW, °C, "3 min ago". None prints as an em dash."""

from __future__ import annotations

import math

MISSING = "—"


def _is_missing(value: float | int | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_optional(value: float | int | None, spec: str = "{}") -> str:
    return MISSING if _is_missing(value) else spec.format(value)


def format_bytes(value: float | int | None) -> str:
    """Binary units, as nvidia-smi and operators think of GPU memory: 79.6 GiB."""
    if _is_missing(value):
        return MISSING
    amount = float(value)  # type: ignore[arg-type]
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(amount) < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def format_power(watts: float | int | None) -> str:
    """Watts below 1 kW, kilowatts above: 700 W, 44.8 kW."""
    if _is_missing(watts):
        return MISSING
    value = float(watts)  # type: ignore[arg-type]
    return f"{value:.0f} W" if abs(value) < 1000 else f"{value / 1000:.1f} kW"


def format_age(seconds: float | None) -> str:
    """How long ago, coarsely: "just now", "42 s ago", "3 min ago", "2 h ago", "5 d ago"."""
    if seconds is None or math.isnan(seconds):
        return MISSING
    if seconds < 2:
        return "just now"
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h ago"
    return f"{seconds // 86400:.0f} d ago"

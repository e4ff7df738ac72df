"""Numbers formatted for people: GiB, kW, °C, "3 min ago". None prints as an em dash.

`DisplayUnits` says how a person wants temperatures and memory shown; the GUI holds one and passes
it to the formatters. Only the text changes: data, exports and JSON stay in °C and bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MISSING = "—"

TEMPERATURE_UNITS = ("C", "F")
#: binary: GiB (1024³, as nvidia-smi reports GPU memory); decimal: GB (1000³, as vendors sell it).
MEMORY_UNITS = ("binary", "decimal")


@dataclass(frozen=True)
class DisplayUnits:
    temperature: str = "C"
    memory: str = "binary"

    def __post_init__(self) -> None:
        if self.temperature not in TEMPERATURE_UNITS:
            raise ValueError(f"temperature unit must be one of {', '.join(TEMPERATURE_UNITS)}, not {self.temperature!r}")
        if self.memory not in MEMORY_UNITS:
            raise ValueError(f"memory units must be one of {', '.join(MEMORY_UNITS)}, not {self.memory!r}")


#: °C and GiB: what the console shows unless told otherwise.
DEFAULT_UNITS = DisplayUnits()

_BYTE_STEPS = {"binary": (1024, ("B", "KiB", "MiB", "GiB", "TiB")), "decimal": (1000, ("B", "kB", "MB", "GB", "TB"))}


def _is_missing(value: float | int | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _as_float(value: float | int | None) -> float | None:
    """`value` as a float, or None when it is missing (None or NaN)."""
    return None if value is None or _is_missing(value) else float(value)


def format_optional(value: float | int | None, spec: str = "{}") -> str:
    return MISSING if _is_missing(value) else spec.format(value)


def format_bytes(value: float | int | None, units: DisplayUnits = DEFAULT_UNITS) -> str:
    """79.6 GiB (binary, the default) or 85.5 GB (decimal)."""
    amount = _as_float(value)
    if amount is None:
        return MISSING
    step, names = _BYTE_STEPS[units.memory]
    for unit in names:
        if abs(amount) < step or unit == names[-1]:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= step
    raise AssertionError("unreachable")


def format_temperature(temp_c: float | int | None, units: DisplayUnits = DEFAULT_UNITS) -> str:
    """A temperature measured in °C, shown as 67 °C or 153 °F."""
    value = _as_float(temp_c)
    if value is None:
        return MISSING
    if units.temperature == "F":
        return f"{value * 9 / 5 + 32:.0f} °F"
    return f"{value:.0f} °C"


def format_power(watts: float | int | None) -> str:
    """Watts below 1 kW, kilowatts above: 700 W, 44.8 kW."""
    value = _as_float(watts)
    if value is None:
        return MISSING
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

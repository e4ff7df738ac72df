"""Durations and times as people type them on the command line: 15m, 24h, 7d, or ISO 8601."""

from __future__ import annotations

import re

from gpuops.core.allocations.timefmt import BadTime, parse_iso_ms

_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdwy])\s*$")


class BadTimeSpec(ValueError):
    """Text that is neither a duration nor a time; the message quotes it and shows the forms."""


def parse_duration(text: str) -> float:
    """Seconds in `text` such as 90s, 15m, 24h, 7d, 2w, 3y (a year is 365 days)."""
    match = _DURATION.match(text)
    if not match:
        raise BadTimeSpec(f"bad duration {text!r}: expected a number and a unit, e.g. 15m, 24h, 7d (units s m h d w y)")
    return float(match.group(1)) * _UNITS_S[match.group(2)]


def parse_time(text: str, now: float) -> float:
    """Epoch seconds of `text`: an ISO 8601 time (UTC unless it has an offset), or a duration
    meaning that long before `now`."""
    if _DURATION.match(text):
        return now - parse_duration(text)
    try:
        return parse_iso_ms(text) / 1000
    except BadTime:
        raise BadTimeSpec(
            f"bad time {text!r}: expected ISO 8601 (2026-01-31T12:00:00Z) or a duration ago (15m, 24h, 7d)"
        ) from None

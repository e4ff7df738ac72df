"""Times in and out of gpuops: the one place epoch seconds become text and text becomes seconds.

Files and APIs get ISO 8601 UTC; people on screen get local time, with UTC alongside where it
matters; the command line accepts ISO 8601 or a duration ago (15m, 24h, 7d).
"""

from __future__ import annotations

import calendar
import re
import time
from datetime import UTC, datetime

_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdwy])\s*$")


class BadTime(ValueError):
    """Text that is not an ISO 8601 time; the message quotes it."""


class BadTimeSpec(ValueError):
    """Text that is neither a duration nor a time; the message quotes it and shows the forms."""


# --- machine text: ISO 8601 UTC ----------------------------------------------------------------


def iso_utc(ts: float) -> str:
    """2026-01-31T12:00:00.000Z, always to the millisecond (history exports, Alertmanager)."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_ms(ts_ms: int) -> str:
    """2026-01-01T00:00:00Z from UTC epoch ms; seconds-precise unless there are milliseconds."""
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    text = moment.isoformat(timespec="milliseconds" if ts_ms % 1000 else "seconds")
    return text.replace("+00:00", "Z")


def parse_iso_ms(text: str) -> int:
    """UTC epoch ms from ISO 8601 text. A time without an offset is taken as UTC; a date alone is
    its midnight UTC."""
    value = text.strip()
    if not value:
        raise BadTime("empty time")
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        raise BadTime(f"bad date {text!r} (expected ISO 8601, e.g. 2026-01-31T00:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def utc_month_start_ms(ts: float) -> int:
    """UTC epoch ms of midnight UTC on the first day of the month that contains `ts`."""
    t = time.gmtime(ts)
    return calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)) * 1000


# --- text for people ---------------------------------------------------------------------------


def local_time(ts: float, *, with_date: bool = True, with_seconds: bool = True, with_zone: bool = False) -> str:
    """"2025-01-31 14:03:12" in the local time zone; without the date "14:03:12", without the
    seconds "2025-01-31 14:03", with the zone "2025-01-31 14:03:12 CET"."""
    spec = ("%Y-%m-%d " if with_date else "") + ("%H:%M:%S" if with_seconds else "%H:%M") + (" %Z" if with_zone else "")
    return time.strftime(spec, time.localtime(ts))


def utc_time(ts: float) -> str:
    """"2025-01-31 13:03:12 UTC": the unambiguous twin of local_time for tooltips and reports."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def file_stamp(ts: float) -> str:
    """"20250131-140312" in local time: sorts by time inside a file name and needs no quoting."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(ts))


# --- what people type: durations and times ago ------------------------------------------------


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

"""ISO 8601 UTC in and out: the one place allocation times meet people and files."""

from __future__ import annotations

from datetime import UTC, datetime, timezone


class BadTime(ValueError):
    """Text that is not an ISO 8601 time; the message quotes it."""


def format_ms(ts_ms: int) -> str:
    """2026-01-01T00:00:00Z; seconds-precise unless there are milliseconds."""
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

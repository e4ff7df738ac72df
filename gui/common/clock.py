"""Timestamps for people: local time on screen, UTC in the tooltip."""

from __future__ import annotations

import time


def local_time(ts: float, *, with_date: bool = True) -> str:
    """"2025-01-31 14:03:12" (or "14:03:12") in the local time zone."""
    return time.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S", time.localtime(ts))


def utc_time(ts: float) -> str:
    """"2025-01-31 13:03:12 UTC"."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))

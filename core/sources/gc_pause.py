"""Pause Python's cyclic garbage collector around one large, short-lived burst of allocation.

Decoding a fleet's worth of JSON or exposition text creates hundreds of thousands of small
objects at once; the collector then runs full passes over them again and again, which can
double a poll's time. These objects hold no reference cycles, so nothing is lost by
collecting once afterwards instead.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Collector off inside, back on after only if it was on before (nesting and threads are safe:
    at worst another burst runs with the collector on)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

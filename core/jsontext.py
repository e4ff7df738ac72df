"""Strict JSON for everything gpuops prints or writes: a reading that is not a finite number
(an exporter's -Inf, a NaN "not supported") becomes null, because `json.dumps` would otherwise
write `NaN`/`-Infinity`, which JSON parsers other than Python's refuse."""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """`value` with every non-finite float (also inside lists, tuples and dicts) made None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def dumps(value: Any, *, indent: int | None = None) -> str:
    """Strict JSON text of `value` (non-finite numbers as null; UTF-8 text kept as it is)."""
    return json.dumps(finite(value), indent=indent, ensure_ascii=False, allow_nan=False)

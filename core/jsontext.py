"""Strict JSON for everything gpuops prints or writes: a reading that is not a finite number
(an exporter's -Inf, a NaN "not supported") becomes null, because `json.dumps` would otherwise
write `NaN`/`-Infinity`, which JSON parsers other than Python's refuse."""

from __future__ import annotations

import json
import math
from pathlib import Path
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


class UnreadableJson(ValueError):
    """A JSON file that cannot be read or is not JSON; the message says which, in a few words."""


def read_file(path: Path) -> Any:
    """The JSON document in the file at `path` (a configuration file a person wrote)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UnreadableJson(str(exc.strerror or exc)) from None
    except json.JSONDecodeError as exc:
        raise UnreadableJson(f"not JSON ({exc})") from None

"""History retention as people write it ("48h", "90d", "3y"), one duration per level of the store.

One path for `gpuops collect --keep-raw/--keep-1m/--keep-1h` and the console's Settings, so the
same words keep the same history whoever writes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpuops.core.timefmt import parse_duration

if TYPE_CHECKING:  # the store (numpy, sqlite) loads only when a policy is made: the CLI starts fast
    from gpuops.core.store.retention import RetentionPolicy

DEFAULT_KEEP_RAW = "48h"
DEFAULT_KEEP_1M = "90d"
DEFAULT_KEEP_1H = "3y"


def retention_policy(keep_raw: str, keep_1m: str, keep_1h: str) -> RetentionPolicy:
    """Raises BadTimeSpec for a duration that does not parse, ValueError for one that is not positive."""
    from gpuops.core.store.retention import RetentionPolicy

    return RetentionPolicy(
        raw_s=parse_duration(keep_raw), rollup_1m_s=parse_duration(keep_1m), rollup_1h_s=parse_duration(keep_1h)
    )

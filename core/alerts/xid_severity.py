"""How severe an XID alert is: from the catalogue's immediate-action class, with explicit
overrides.

The catalogue says what to DO, not how bad it is for a GPU cloud. Its action classes map to
severities as below, except for memory, ECC, NVLink and bus XIDs, which are always critical:
the catalogue files XID 63 and 92 under IGNORE and 94 under RESTART_APP because one job can
carry on, but for a provider they announce a GPU heading for a reset or an RMA.

| action class                                          | severity |
|-------------------------------------------------------|----------|
| IGNORE, none given                                    | info     |
| RESTART_APP, RESTART_VM, CHECK_APP/CUDA, CHECK_UVM,   | warning  |
| WORKFLOW_XID_13/_31/_45, XID_154, uncatalogued codes  |          |
| RESET_GPU, RESTART_BM, CONTACT_SUPPORT, UPDATE_SWFW,  | critical |
| CHECK_MECHANICALS, WORKFLOW_XID_48, WORKFLOW_NVLINK*  |          |
| anything else                                         | warning  |
| XID 48, 63, 64, 74, 79, 92, 94, 95 (override)         | critical |
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from gpuops.core.alerts.model import Severity
from gpuops.core.xid_catalog import describe_xid, xid_catalog

ACTION_SEVERITY: dict[str, Severity] = {
    "": Severity.INFO,
    "IGNORE": Severity.INFO,
    "RESTART_APP": Severity.WARNING,
    "RESTART_VM": Severity.WARNING,
    "CHECK_APP/CUDA": Severity.WARNING,
    "CHECK_UVM": Severity.WARNING,
    "WORKFLOW_XID_13": Severity.WARNING,
    "WORKFLOW_XID_31": Severity.WARNING,
    "WORKFLOW_XID_45": Severity.WARNING,
    "XID_154": Severity.WARNING,
    "RESET_GPU": Severity.CRITICAL,
    "RESTART_BM": Severity.CRITICAL,
    "CONTACT_SUPPORT": Severity.CRITICAL,
    "UPDATE_SWFW": Severity.CRITICAL,
    "CHECK_MECHANICALS": Severity.CRITICAL,
    "WORKFLOW_XID_48": Severity.CRITICAL,
    "WORKFLOW_NVLINK_ERR": Severity.CRITICAL,
    "WORKFLOW_NVLINK5_ERR": Severity.CRITICAL,
}
UNLISTED_ACTION_SEVERITY = Severity.WARNING
UNCATALOGUED_SEVERITY = Severity.WARNING

# Memory, ECC, NVLink and bus XIDs: critical whatever the action class says.
CRITICAL_XIDS: frozenset[int] = frozenset({48, 63, 64, 74, 79, 92, 94, 95})

# Codes are looked up through a dense table; anything beyond it is uncatalogued.
_TABLE_SIZE = 1024


def xid_alert_severity(code: int) -> Severity:
    if code in CRITICAL_XIDS:
        return Severity.CRITICAL
    if code not in xid_catalog():
        return UNCATALOGUED_SEVERITY
    return ACTION_SEVERITY.get(describe_xid(code).immediate_action, UNLISTED_ACTION_SEVERITY)


@lru_cache(maxsize=1)
def severity_table() -> np.ndarray:
    """Severity code by XID code (uint8), for vectorised lookups of a poll's events."""
    table = np.full(_TABLE_SIZE, UNCATALOGUED_SEVERITY, dtype=np.uint8)
    for code in range(_TABLE_SIZE):
        table[code] = xid_alert_severity(code)
    return table


def severities_of(codes: np.ndarray) -> np.ndarray:
    """Vectorised `xid_alert_severity` over an int array of codes."""
    codes = np.asarray(codes, dtype=np.int64)
    inside = (codes >= 0) & (codes < _TABLE_SIZE)
    out = np.full(codes.shape, UNCATALOGUED_SEVERITY, dtype=np.uint8)
    out[inside] = severity_table()[codes[inside]]
    return out

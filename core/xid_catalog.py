"""NVIDIA's XID catalogue: what an XID code means and what to do about it.

Loaded from resources/xid-catalog.csv (NVIDIA's published catalogue; provenance in
resources/PROVENANCE.md). The catalogue's action classes (RESET_GPU, RESTART_BM, ...) are
expanded into plain text from resources/xid-resolution-buckets.csv.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache

from gpuops.resources import resource_path


@dataclass(frozen=True, slots=True)
class XidInfo:
    code: int
    mnemonic: str
    description: str
    immediate_action: str  # an action class, e.g. "RESET_GPU"; "" when the catalogue has none
    investigatory_action: str
    immediate_action_text: str  # the class spelled out for people

    @property
    def summary(self) -> str:
        """One line for tooltips and alert summaries: "XID 79: GPU has fallen off the bus (RESTART_BM)"."""
        action = f" ({self.immediate_action})" if self.immediate_action else ""
        return f"XID {self.code}: {self.description}{action}"


@lru_cache(maxsize=1)
def _resolution_texts() -> dict[str, str]:
    with resource_path("xid-resolution-buckets.csv").open(newline="") as handle:
        return {row["Guidance Class"].strip(): " ".join(row["Resolution Action"].split()) for row in csv.DictReader(handle)}


@lru_cache(maxsize=1)
def xid_catalog() -> dict[int, XidInfo]:
    """Every catalogued XID by code."""
    texts = _resolution_texts()
    catalog: dict[int, XidInfo] = {}
    with resource_path("xid-catalog.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            action = row["immediate_action"].strip()
            catalog[int(row["code"])] = XidInfo(
                code=int(row["code"]),
                mnemonic=row["mnemonic"].strip(),
                description=row["description"].strip(),
                immediate_action=action,
                investigatory_action=row["investigatory_action"].strip(),
                immediate_action_text=texts.get(action, action),
            )
    return catalog


def describe_xid(code: int) -> XidInfo:
    """The catalogue entry, or a placeholder that says the code is not catalogued."""
    info = xid_catalog().get(code)
    if info is not None:
        return info
    return XidInfo(code, "UNKNOWN", "not in NVIDIA's XID catalogue", "", "", "")

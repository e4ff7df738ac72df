"""The RMA report of one GPU: what a vendor's RMA form asks for, from the history database.

Identity (serial, part number, PCI bus id, VBIOS, driver, node), the XID history with the
catalogue's meaning, falls off the bus, the ECC and row-remap counters as they changed over the
whole recorded history, temperature and power over the last 24 hours, and the lifecycle history
(the node's transitions and the GPU's own). What the inventory does not hold is named in
`not_reported` and left None, never guessed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from gpuops.core.lifecycle.book import read_view, transitions
from gpuops.core.store.connection import open_read_only
from gpuops.core.store.errors import StoreError
from gpuops.core.store.inventory import SELECT_INVENTORY, inventory_from_row
from gpuops.core.store.queries import HistoryReader, Series
from gpuops.core.telemetry import GpuInventory
from gpuops.core.timefmt import format_ms
from gpuops.core.xid_catalog import describe_xid

DAY_S = 86_400.0
#: Points of the 24-hour temperature and power curves (5-minute buckets).
DAY_POINTS = 288
#: The counters a vendor asks about: volatile and aggregate ECC, and the row remapper.
ECC_COUNTERS = (
    "ecc_corrected_volatile", "ecc_uncorrected_volatile", "ecc_corrected_aggregate", "ecc_uncorrected_aggregate",
    "remapped_rows_correctable", "remapped_rows_uncorrectable", "remapped_rows_pending", "remapped_rows_failure",
)
#: What the report says about the GPU, in order: (key, inventory field or None when the inventory has no such field).
IDENTITY = (
    ("uuid", "uuid"), ("name", "name"), ("serial", "serial"), ("part_number", None), ("pci_bus_id", "pci_bus_id"),
    ("vbios_version", "vbios_version"), ("driver_version", "driver_version"), ("cuda_version", "cuda_version"),
    ("node", "node"), ("index", "index"), ("site", "site"), ("rack", "rack"), ("architecture", "architecture"),
    ("mem_total_bytes", "mem_total_bytes"), ("power_limit_w", "power_limit_w"), ("slowdown_temp_c", "slowdown_temp_c"),
)


def _when(ts: float) -> str:
    """Epoch seconds as the lifecycle and audit records write times (ISO 8601 UTC)."""
    return format_ms(round(ts * 1000))


def _number(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


def _inventory(path: Path, uuid: str) -> tuple[GpuInventory, tuple[int | None, int | None], dict[str, Any]]:
    """The GPU's stored inventory, when it was first and last seen (ms), and its lifecycle (current, history)."""
    conn, _layout = open_read_only(path)
    try:
        row = conn.execute(SELECT_INVENTORY + " WHERE gpus.uuid = ?", (uuid,)).fetchone()
        if row is None:
            raise StoreError(f"no GPU {uuid} in the history {path}")
        _gpu_id, _uuid, index, node = row[:4]
        gpu = inventory_from_row(uuid, index, node, row[4:])
        seen = conn.execute("SELECT first_seen_ms, last_seen_ms FROM gpus WHERE uuid = ?", (uuid,)).fetchone()
        view = read_view(conn)
        deciding = view.deciding(uuid, node)
        lifecycle = {
            "current": view.gpu_state(uuid, node).value,
            "ticket": None if deciding is None else deciding.ticket,
            "history": [t.as_dict() for t in transitions(conn, node=node, gpu_uuid=uuid)],
        }
    finally:
        conn.close()
    return gpu, seen, lifecycle


def _counter_history(series: Series) -> dict[str, Any]:
    """A counter's last value and every change of it (the bucket where it moved), oldest first."""
    values = series.max
    known = np.flatnonzero(np.isfinite(values))
    changes = []
    previous: float | None = None
    for i in known.tolist():
        value = float(values[i])
        if previous is None or value != previous:
            changes.append({"ts": _when(float(series.ts[i])), "value": value})
            previous = value
    return {"last": previous, "changes": changes}


def _curve(series: Series) -> dict[str, Any]:
    """A gauge over the window: its extremes and mean, and the points (bucket start, min, avg, max)."""
    finite = np.isfinite(series.avg)
    return {
        "min": _number(float(np.nanmin(series.min))) if finite.any() else None,
        "avg": _number(float(np.nanmean(series.avg))) if finite.any() else None,
        "max": _number(float(np.nanmax(series.max))) if finite.any() else None,
        "resolution": series.resolution,
        "points": [
            {"ts": _when(float(t)), "min": _number(lo), "avg": _number(mean), "max": _number(hi)}
            for t, lo, mean, hi in zip(series.ts.tolist(), series.min.tolist(), series.avg.tolist(), series.max.tolist(),
                                       strict=True)
        ],
    }


def rma_report(path: Path, uuid: str, *, now: float) -> dict[str, Any]:
    """The report of GPU `uuid` from the history at `path` as of `now` (epoch s), JSON-ready.
    Raises StoreError (NoHistory, unknown GPU, unusable history)."""
    gpu, (first_seen_ms, last_seen_ms), lifecycle = _inventory(path, uuid)
    identity = {key: (None if field is None else getattr(gpu, field)) for key, field in IDENTITY}
    with HistoryReader(path, read_only=True) as reader:
        # The GPU's whole recorded life, not up to now: the finest resolution that still covers it.
        since, until = (first_seen_ms or 0) / 1000, min(now, (last_seen_ms or now * 1000) / 1000 + DAY_S)  # it lags
        xids = [
            {"ts": _when(e.ts), "code": e.code, "mnemonic": info.mnemonic, "description": info.description,
             "immediate_action": info.immediate_action or None, "action": info.immediate_action_text or None,
             "detail": e.detail}
            for e in reader.events(0, now, gpu_uuid=uuid, kinds=["xid"])
            if e.code is not None and (info := describe_xid(e.code))
        ]
        lost = reader.events(0, now, gpu_uuid=uuid, kinds=["gpu_lost", "gpu_recovered"])
        bus = [{"ts": _when(e.ts), "event": e.kind} for e in lost]
        counters = {m: _counter_history(reader.series(uuid, m, since, until, max_points=2000)) for m in ECC_COUNTERS}
        day = {m: _curve(reader.series(uuid, m, now - DAY_S, now, max_points=DAY_POINTS)) for m in ("temp_c", "power_w")}
    return {
        "report": "gpuops RMA report",
        "generated_at": _when(now),
        "gpu": identity,
        "not_reported": [key for key, value in identity.items() if value is None],
        "first_seen": None if first_seen_ms is None else format_ms(first_seen_ms),
        "lifecycle": lifecycle,
        "xid_history": xids,
        "bus_history": bus,
        "ecc_and_row_remap": counters,
        "last_24h": {"start": _when(now - DAY_S), "end": _when(now), **day},
    }

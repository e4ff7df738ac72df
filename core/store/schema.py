"""The history schema as an ordered list of migrations; `PRAGMA user_version` is how many have run.

A later feature (customers, allocations, alerts) appends its own function to MIGRATIONS. Each
function receives the database inside the transaction that also bumps the version, so a migration
either happens completely or not at all. Migrations are history: never edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from gpuops.core.alerts.schema import alerts_schema
from gpuops.core.allocations.schema import migrate_allocations
from gpuops.core.lifecycle.schema import migrate_lifecycle

_CHUNK_COLUMNS = {"id": int, "gpu_id": int, "t0_ms": int, "n": int, "data": bytes}
_FRAME_COLUMNS = {"id": int, "block": int, "ts_ms": int, "data": bytes}
# Fleet figures as of schema 1 (core/store/fleet.py FLEET_METRICS must match; a test checks).
_FLEET_METRICS_V1 = (
    "n_gpus", "n_ok", "n_lost", "n_unknown", "util_gpu_mean_pct", "util_mem_mean_pct",
    "power_total_w", "mem_used_total_bytes", "mem_total_total_bytes", "temp_max_c",
)


def _v1_history(db: sqlite_utils.Database) -> None:
    """Inventory, raw chunks and their head, rollups, fleet figures, events."""
    db.create_table("meta", {"key": str, "value": str}, pk="key")
    db.create_table(
        "nodes", {"id": int, "name": str, "first_seen_ms": int, "last_seen_ms": int}, pk="id", not_null={"name"}
    )
    db.table("nodes").create_index(["name"], unique=True)
    db.create_table(
        "gpus",
        {
            "id": int, "uuid": str, "node_id": int, "gpu_index": int, "name": str, "serial": str,
            "pci_bus_id": str, "mem_total_bytes": int, "power_limit_w": float, "driver_version": str,
            "nvml_version": str, "cuda_version": str, "mig_mode": int, "architecture": str,
            "vbios_version": str, "slowdown_temp_c": float, "shutdown_temp_c": float,
            "mem_max_temp_c": float, "site": str, "rack": str,
            "first_seen_ms": int, "last_seen_ms": int, "last_state": int,
        },
        pk="id",
        not_null={"uuid", "node_id"},
        foreign_keys=[("node_id", "nodes", "id")],
    )
    db.table("gpus").create_index(["uuid"], unique=True)
    # One row per poll and block of GPUs, until compaction turns them into per-GPU chunks.
    db.create_table("samples_head", {**_FRAME_COLUMNS, "keyframe": int}, pk="id")
    db.table("samples_head").create_index(["block", "ts_ms"], unique=True)
    # Whole polls kept after compaction, one per keyframe interval, for replaying the fleet.
    db.create_table("keyframes", _FRAME_COLUMNS, pk="id")
    db.table("keyframes").create_index(["block", "ts_ms"], unique=True)
    db.table("keyframes").create_index(["ts_ms"])
    for table in ("samples", "rollup_1m", "rollup_1h"):
        db.create_table(table, _CHUNK_COLUMNS, pk="id", foreign_keys=[("gpu_id", "gpus", "id")])
        db.table(table).create_index(["gpu_id", "t0_ms"], unique=True)
        db.table(table).create_index(["t0_ms"])
    db.create_table("fleet_samples", {"ts_ms": int, **{m: float for m in _FLEET_METRICS_V1}}, pk="ts_ms")
    rollup: dict[str, type] = {"ts_ms": int, "n": int}
    for metric in _FLEET_METRICS_V1:
        rollup.update({f"{metric}_min": float, f"{metric}_avg": float, f"{metric}_max": float})
    db.create_table("fleet_1m", rollup, pk="ts_ms")
    db.create_table("fleet_1h", rollup, pk="ts_ms")
    db.create_table(
        "events",
        {"id": int, "ts_ms": int, "kind": str, "gpu_id": int, "code": int, "detail": str},
        pk="id",
        not_null={"ts_ms", "kind"},
        foreign_keys=[("gpu_id", "gpus", "id")],
    )
    db.table("events").create_index(["ts_ms"])
    db.table("events").create_index(["gpu_id", "ts_ms"])


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _v1_history, alerts_schema, migrate_allocations, migrate_lifecycle,
)

SCHEMA_VERSION = len(MIGRATIONS)

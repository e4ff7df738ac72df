"""The alert tables, as one migration appended to `core.store.schema.MIGRATIONS`.

Times are UTC epoch seconds (REAL). Rules are stored as their JSON rules-file form, so the
database and an exported file say the same thing.
"""

from __future__ import annotations

import sqlite_utils


def alerts_schema(db: sqlite_utils.Database) -> None:
    """Rules, alerts (active and history), silences, nodes in maintenance, node GPU counts."""
    db.create_table("alert_rules", {"name": str, "position": int, "definition": str, "updated_at": float}, pk="name")
    db.create_table(
        "alerts",
        {
            "id": int, "rule": str, "key": str, "severity": int, "state": str, "labels": str,
            "node": str, "gpu_uuid": str, "summary": str, "runbook": str,
            "pending_at": float, "started_at": float, "last_true_at": float, "ended_at": float,
            "notified_at": float, "acknowledged_by": str, "acknowledged_at": float, "ack_note": str,
            "silenced_by": str, "inhibited": int,
        },
        pk="id",
        not_null={"rule", "key", "severity", "state", "labels", "pending_at"},
    )
    # At most one active episode per rule and subject.
    db.execute("CREATE UNIQUE INDEX idx_alerts_active ON alerts (rule, key) WHERE state IN ('pending', 'firing')")
    db.table("alerts").create_index(["state"])
    db.table("alerts").create_index(["gpu_uuid", "pending_at"])
    db.table("alerts").create_index(["node", "pending_at"])
    db.table("alerts").create_index(["pending_at"])
    db.create_table(
        "alert_silences",
        {"id": int, "matchers": str, "starts_at": float, "ends_at": float, "author": str, "comment": str,
         "created_at": float},
        pk="id",
        not_null={"matchers", "starts_at", "ends_at", "author"},
    )
    db.table("alert_silences").create_index(["ends_at"])
    db.create_table("alert_maintenance", {"node": str, "since": float, "author": str, "comment": str}, pk="node")
    db.create_table("alert_node_gpus", {"node": str, "max_gpus": int}, pk="node")

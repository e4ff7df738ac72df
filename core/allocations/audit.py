"""The audit log: who changed what, when, with the row as it was and as it became (JSON).

Entries are written inside the transaction of the change they describe, so the log never claims
a change that was rolled back and never misses one that was kept.
"""

from __future__ import annotations

import json
import os
import pwd
import socket
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpuops.core.allocations.sql_filters import where_clause
from gpuops.core.csv_cells import write_rows
from gpuops.core.timefmt import format_ms

AUDIT_CSV_COLUMNS = ("ts", "user", "action", "entity", "entity_id", "before", "after")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    ts_ms: int
    user: str
    action: str  # create, update, delete, import
    entity: str  # customer, contract, allocation
    entity_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def os_user() -> str:
    """Who is acting, as the OS knows them: `name@host`, the name of the process's real uid (not
    USER or LOGNAME, which anyone can set) and the host name; `uid N@host` for a uid without a
    passwd entry (some containers). Never fails."""
    uid = os.getuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = f"uid {uid}"
    return f"{name}@{socket.gethostname() or 'unknown-host'}"


def _json(row: Mapping[str, Any] | None) -> str | None:
    return None if row is None else json.dumps(dict(row), sort_keys=True)


def record_many(
    conn: sqlite3.Connection, ts_ms: int, user: str, entries: list[tuple[str, str, int | None, Mapping | None, Mapping | None]]
) -> None:
    """(action, entity, entity_id, before, after) entries; the caller holds the transaction."""
    conn.executemany(
        "INSERT INTO audit_log (ts_ms, user, action, entity, entity_id, before_json, after_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (ts_ms, user, action, entity, entity_id, _json(before), _json(after))
            for action, entity, entity_id, before, after in entries
        ],
    )


def list_audit(
    conn: sqlite3.Connection,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    entity: str | None = None,
    entity_id: int | None = None,
    limit: int | None = None,
) -> list[AuditEntry]:
    """Entries, newest first, optionally within [since_ms, until_ms) and for one entity."""
    where, params = where_clause(
        (("ts_ms >= ?", since_ms), ("ts_ms < ?", until_ms), ("entity = ?", entity), ("entity_id = ?", entity_id))
    )
    sql = "SELECT id, ts_ms, user, action, entity, entity_id, before_json, after_json FROM audit_log" + where
    sql += " ORDER BY ts_ms DESC, id DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [
        AuditEntry(i, ts, user, action, ent, eid, None if b is None else json.loads(b), None if a is None else json.loads(a))
        for i, ts, user, action, ent, eid, b, a in conn.execute(sql, params)
    ]


def export_audit_csv(conn: sqlite3.Connection, path: Path, **filters: Any) -> int:
    """Write the audit log (oldest first) to `path`; returns the number of entries."""
    entries = list(reversed(list_audit(conn, **filters)))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        return write_rows(
            handle,
            AUDIT_CSV_COLUMNS,
            ([format_ms(e.ts_ms), e.user, e.action, e.entity, e.entity_id, _json(e.before), _json(e.after)] for e in entries),
        )

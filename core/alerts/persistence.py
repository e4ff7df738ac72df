"""Alerts, rules, silences and maintenance in the history database (tables in `schema.py`), or in
a team's PostgreSQL database (the same tables, core/team/alert_schema.py): one store, one copy of
the SQL, over either connection (core/alerts/database.py).

Several processes share the file: the collector evaluates and writes lifecycle changes, the
console acknowledges, silences and marks notifications. Each writes only its own columns, so
neither overwrites the other: `apply()` never touches acknowledgement or notification columns.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from gpuops.core.alerts.builtin_rules import builtin_rules
from gpuops.core.alerts.database import AlertDatabase, alert_database
from gpuops.core.alerts.model import Alert, AlertChanges, AlertState, ChangeKind, Severity
from gpuops.core.alerts.rules import Rule, RuleError, parse_rules, rule_from_dict, rules_from_text, rules_to_text
from gpuops.core.alerts.silences import Maintenance, Matcher, Silence, SilenceError
from gpuops.core.allocations.audit import os_user

log = logging.getLogger("gpuops.alerts")

SEEDED_BUILTINS_KEY = "alert_builtin_rules"
# Bumped by every change to the rule set, so an evaluating process notices edits made elsewhere.
RULES_REVISION_KEY = "alert_rules_revision"
_ALERT_COLUMNS = (
    "id", "rule", "key", "severity", "state", "labels", "node", "gpu_uuid", "summary", "runbook", "pending_at",
    "started_at", "last_true_at", "ended_at", "notified_at", "acknowledged_by", "acknowledged_at", "ack_note",
    "silenced_by", "inhibited",
)
# What the evaluating process owns; the rest (acknowledgement, notification) belongs to the console.
_LIFECYCLE_COLUMNS = (
    "rule", "key", "severity", "state", "labels", "node", "gpu_uuid", "summary", "runbook", "pending_at",
    "started_at", "last_true_at", "ended_at", "silenced_by", "inhibited",
)


class AlertNotFound(LookupError):
    """No alert with that id (or it is no longer active)."""


def _row_to_alert(row: sqlite3.Row | tuple) -> Alert:
    v = dict(zip(_ALERT_COLUMNS, row, strict=True))
    return Alert(
        id=v["id"], rule=v["rule"], key=v["key"], severity=Severity(v["severity"]), state=AlertState(v["state"]),
        labels=json.loads(v["labels"]), summary=v["summary"] or "", runbook=v["runbook"] or "",
        pending_at=v["pending_at"], started_at=v["started_at"], last_true_at=v["last_true_at"],
        ended_at=v["ended_at"], notified_at=v["notified_at"], acknowledged_by=v["acknowledged_by"],
        acknowledged_at=v["acknowledged_at"], ack_note=v["ack_note"], silenced_by=v["silenced_by"],
        inhibited=bool(v["inhibited"]),
    )


def _lifecycle_values(alert: Alert) -> tuple:
    return (
        alert.rule, alert.key, int(alert.severity), alert.state.value, json.dumps(dict(alert.labels), sort_keys=True),
        alert.node, alert.gpu_uuid, alert.summary, alert.runbook, alert.pending_at, alert.started_at,
        alert.last_true_at, alert.ended_at, alert.silenced_by, int(alert.inhibited),
    )


class AlertStore:
    """Alert tables over an open history connection (autocommit, as `open_database` returns it).
    `read_only` (a connection from `open_read_only`): reads never write, not even the seeding of
    new built-in rules, which are then shown as they would be seeded."""

    def __init__(self, conn: sqlite3.Connection | AlertDatabase | Any, *, read_only: bool = False) -> None:
        self.db = alert_database(conn)
        self.conn = self.db.raw  # the connection itself (SQLite, or psycopg for a team database)
        self.read_only = read_only

    # ------------------------------------------------------------ rules

    def rules(self) -> tuple[Rule, ...]:
        """The stored rules in order; built-in rules this database has not seen yet are added first
        (so a newer gpuops brings its new rules, while rules an operator deleted stay deleted)."""
        if not self.read_only:
            self._seed_new_builtins()
        rows = self.db.execute("SELECT name, definition FROM alert_rules ORDER BY position, name").fetchall()
        stored = tuple(rule_from_dict(json.loads(definition), f"stored rule {name!r}") for name, definition in rows)
        if self.read_only:  # as seeding would add them, without writing
            names = {r.name for r in stored}
            stored += tuple(r for r in self._builtins_seen()[1] if r.name not in names)
        return stored

    def _builtins_seen(self) -> tuple[set[str], list[Rule]]:
        """The built-in rule names this database has seen, and the built-in rules it has not."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (SEEDED_BUILTINS_KEY,)).fetchone()
        seeded = set(json.loads(row[0])) if row else set()
        return seeded, [r for r in builtin_rules() if r.name not in seeded]

    def _seed_new_builtins(self) -> None:
        seeded, fresh = self._builtins_seen()
        if not fresh:
            return
        with self.db.transaction():
            start = self.db.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM alert_rules").fetchone()[0]
            self.db.executemany(
                "INSERT INTO alert_rules (name, position, definition, updated_at) VALUES (?, ?, ?, NULL) "
                "ON CONFLICT (name) DO NOTHING",
                [(r.name, start + i, json.dumps(r.to_dict()), ) for i, r in enumerate(fresh)],
            )
            names = sorted(seeded | {r.name for r in builtin_rules()})
            self.db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (SEEDED_BUILTINS_KEY, json.dumps(names)),
            )
            self._bump_rules_revision()

    def _bump_rules_revision(self) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, '1') "
            "ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)",
            (RULES_REVISION_KEY,),
        )

    def rules_revision(self) -> int:
        """Changes with every edit of the rule set, by any process (one indexed row: cheap per poll)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (RULES_REVISION_KEY,)).fetchone()
        return 0 if row is None else int(row[0])

    def replace_rules(self, rules: Sequence[Rule], now: float) -> None:
        """Make `rules` the whole rule set, in this order (validated again: all or nothing)."""
        parse_rules([r.to_dict() for r in rules], "new rules")
        self._seed_new_builtins()  # so that the built-ins are not seeded back on top afterwards
        with self.db.transaction():
            self.db.execute("DELETE FROM alert_rules")
            self.db.executemany(
                "INSERT INTO alert_rules (name, position, definition, updated_at) VALUES (?, ?, ?, ?)",
                [(r.name, i, json.dumps(r.to_dict()), now) for i, r in enumerate(rules)],
            )
            self._bump_rules_revision()

    def save_rule(self, rule: Rule, now: float, *, replaces: str | None = None) -> Rule:
        """Add `rule` at the end, or put it in the place of the rule named `replaces` (an edit,
        possibly renaming it). Checked again like an imported rule; RuleError if it is invalid,
        its name is taken by another rule, or `replaces` is gone (someone deleted it meanwhile)."""
        rule = rule_from_dict(rule.to_dict(), "rule")
        self._seed_new_builtins()
        with self.db.transaction():
            names = {name for (name,) in self.db.execute("SELECT name FROM alert_rules")}
            if replaces is not None and replaces not in names:
                raise RuleError(f"rule {replaces!r} no longer exists (deleted meanwhile?); nothing saved")
            if rule.name in names and rule.name != replaces:
                raise RuleError(f"a rule named {rule.name!r} exists already; choose another name")
            definition = json.dumps(rule.to_dict())
            if replaces is None:
                self.db.execute(
                    "INSERT INTO alert_rules (name, position, definition, updated_at) "
                    "VALUES (?, (SELECT COALESCE(MAX(position), -1) + 1 FROM alert_rules), ?, ?)",
                    (rule.name, definition, now),
                )
            else:
                self.db.execute(
                    "UPDATE alert_rules SET name = ?, definition = ?, updated_at = ? WHERE name = ?",
                    (rule.name, definition, now, replaces),
                )
            self._bump_rules_revision()
        return rule

    def set_rule_enabled(self, name: str, enabled: bool, now: float) -> Rule:
        """Switch a rule on or off without touching the rest of its definition."""
        with self.db.transaction():
            row = self.db.execute("SELECT definition FROM alert_rules WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise RuleError(f"no rule {name!r}")
            rule = rule_from_dict({**json.loads(row[0]), "enabled": bool(enabled)}, f"stored rule {name!r}")
            self.db.execute(
                "UPDATE alert_rules SET definition = ?, updated_at = ? WHERE name = ?",
                (json.dumps(rule.to_dict()), now, name),
            )
            self._bump_rules_revision()
        return rule

    def delete_rule(self, name: str) -> None:
        """Remove a rule for good (a deleted built-in is not seeded back; an import brings it back)."""
        self._seed_new_builtins()
        with self.db.transaction():
            if self.db.execute("DELETE FROM alert_rules WHERE name = ?", (name,)).rowcount == 0:
                raise RuleError(f"no rule {name!r}")
            self._bump_rules_revision()

    def export_rules(self) -> str:
        return rules_to_text(self.rules())

    def import_rules(self, text: str, now: float, where: str = "rules file") -> tuple[Rule, ...]:
        """Replace the rule set with a rules file's; RuleError (and nothing changed) if any rule is invalid."""
        rules = rules_from_text(text, where)
        self.replace_rules(rules, now)
        return rules

    # ------------------------------------------------------------ alerts

    def apply(self, changes: AlertChanges) -> None:
        """Persist one evaluation's changes (lifecycle columns only)."""
        if not changes:
            return
        placeholders = ", ".join("?" for _ in _LIFECYCLE_COLUMNS)
        assignments = ", ".join(f"{c} = excluded.{c}" for c in _LIFECYCLE_COLUMNS)
        upsert = (
            f"INSERT INTO alerts (id, {', '.join(_LIFECYCLE_COLUMNS)}) VALUES (?, {placeholders}) "
            f"ON CONFLICT(id) DO UPDATE SET {assignments}"
        )
        with self.db.transaction():
            cancelled = [(c.alert.id,) for c in changes.changes if c.kind is ChangeKind.CANCELLED]
            kept = [(c.alert.id, *_lifecycle_values(c.alert)) for c in changes.changes if c.kind is not ChangeKind.CANCELLED]
            if cancelled:
                self.db.executemany("DELETE FROM alerts WHERE id = ?", cancelled)
            if kept:
                self.db.executemany(upsert, kept)
            if changes.node_gpu_counts:
                self.db.executemany(
                    "INSERT INTO alert_node_gpus (node, max_gpus) VALUES (?, ?) "
                    "ON CONFLICT(node) DO UPDATE SET max_gpus = excluded.max_gpus",
                    list(changes.node_gpu_counts.items()),
                )

    def _select(self, where: str = "", params: Sequence = (), order: str = "id", limit: int | None = None) -> list[Alert]:
        sql = f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts {where} ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_row_to_alert(row) for row in self.db.execute(sql, params)]

    def active_alerts(self) -> list[Alert]:
        return self._select("WHERE state IN ('pending', 'firing')")

    def alert(self, alert_id: int) -> Alert:
        found = self._select("WHERE id = ?", (alert_id,))
        if not found:
            raise AlertNotFound(f"no alert {alert_id}")
        return found[0]

    def history(
        self,
        *,
        states: Iterable[AlertState] | None = None,
        min_severity: Severity | None = None,
        node: str | None = None,
        gpu_uuid: str | None = None,
        rule: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = 1000,
    ) -> list[Alert]:
        """Alerts newest first, filtered; `since`/`until` keep those active at any time in the window."""
        clauses: list[str] = []
        params: list = []
        if states is not None:
            state_values = [AlertState(s).value for s in states]
            clauses.append(f"state IN ({', '.join('?' for _ in state_values)})")
            params += state_values
        for column, value in (("node", node), ("gpu_uuid", gpu_uuid), ("rule", rule)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if min_severity is not None:
            clauses.append("severity >= ?")
            params.append(int(min_severity))
        if since is not None:
            clauses.append("(ended_at IS NULL OR ended_at >= ?)")
            params.append(since)
        if until is not None:
            clauses.append("pending_at <= ?")
            params.append(until)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._select(where, params, order="pending_at DESC, id DESC", limit=limit)

    def timeline(self, gpu_uuid: str, since: float, until: float) -> list[Alert]:
        """One GPU's alerts overlapping [since, until], oldest first (for drawing as bars)."""
        return sorted(self.history(gpu_uuid=gpu_uuid, since=since, until=until, limit=None), key=lambda a: a.pending_at)

    def counts_by_severity(self, *, include_muted: bool = True) -> dict[str, int]:
        """Firing alerts per severity label (every severity present, 0 when none)."""
        muted = "" if include_muted else "AND silenced_by IS NULL AND inhibited = 0"
        rows = self.db.execute(f"SELECT severity, COUNT(*) FROM alerts WHERE state = 'firing' {muted} GROUP BY severity")
        counts = {s.label: 0 for s in Severity}
        for severity, count in rows:
            counts[Severity(severity).label] = count
        return counts

    def grouped(self, by: str) -> dict[str, list[Alert]]:
        """Active alerts grouped by "node" or "rule" (source alerts under "" for node)."""
        if by not in ("node", "rule"):
            raise ValueError(f"group alerts by node or rule, not {by!r}")
        groups: dict[str, list[Alert]] = {}
        for alert in self.active_alerts():
            groups.setdefault((alert.node or "") if by == "node" else alert.rule, []).append(alert)
        return dict(sorted(groups.items()))

    def max_alert_id(self) -> int:
        return self.db.execute("SELECT COALESCE(MAX(id), 0) FROM alerts").fetchone()[0]

    def acknowledge(self, alert_id: int, now: float, note: str = "", user: str | None = None) -> Alert:
        """Record who (the OS user unless given) acknowledged an active alert, and why."""
        with self.db.transaction():
            cursor = self.db.execute(
                "UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ?, ack_note = ? "
                "WHERE id = ? AND state IN ('pending', 'firing')",
                (user or os_user(), now, note, alert_id),
            )
        if cursor.rowcount == 0:
            raise AlertNotFound(f"no active alert {alert_id} to acknowledge")
        return self.alert(alert_id)

    def mark_notified(self, alert_ids: Iterable[int], now: float) -> None:
        ids = [(now, i) for i in alert_ids]
        if ids:
            with self.db.transaction():
                self.db.executemany("UPDATE alerts SET notified_at = ? WHERE id = ? AND notified_at IS NULL", ids)

    def node_baseline(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT node, max_gpus FROM alert_node_gpus"))

    # ------------------------------------------------------------ silences and maintenance

    def silences(self, *, active_at: float | None = None) -> list[Silence]:
        """All silences, or those not yet over at `active_at` (including future ones)."""
        where, params = ("WHERE ends_at > ?", (active_at,)) if active_at is not None else ("", ())
        rows = self.db.execute(
            f"SELECT id, matchers, starts_at, ends_at, author, comment, created_at FROM alert_silences {where} ORDER BY id",
            params,
        )
        return [
            Silence(i, Silence.matchers_from_json(json.loads(m)), s, e, a, c or "", created)
            for i, m, s, e, a, c, created in rows
        ]

    def add_silence(
        self, matchers: Sequence[Matcher | str], starts_at: float, ends_at: float, comment: str, now: float,
        author: str | None = None,
    ) -> Silence:
        parsed = tuple(m if isinstance(m, Matcher) else Matcher.parse(m) for m in matchers)
        silence = Silence(0, parsed, starts_at, ends_at, author or os_user(), comment, now)  # validates
        with self.db.transaction():
            [(silence_id,)] = self.db.execute(
                "INSERT INTO alert_silences (matchers, starts_at, ends_at, author, comment, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (json.dumps([m.to_dict() for m in parsed]), starts_at, ends_at, silence.author, comment, now),
            ).fetchall()
        return Silence(silence_id, parsed, starts_at, ends_at, silence.author, comment, now)

    def expire_silence(self, silence_id: int, now: float) -> None:
        with self.db.transaction():
            cursor = self.db.execute(
                "UPDATE alert_silences SET ends_at = CASE WHEN ? > starts_at + 0.001 THEN ? ELSE starts_at + 0.001 END"
                " WHERE id = ? AND ends_at > ?",
                (now, now, silence_id, now),
            )
        if cursor.rowcount == 0:
            raise SilenceError(f"no silence {silence_id} in force")

    def maintenance(self) -> dict[str, Maintenance]:
        rows = self.db.execute("SELECT node, since, author, comment FROM alert_maintenance ORDER BY node")
        return {node: Maintenance(node, since, author, comment or "") for node, since, author, comment in rows}

    def start_maintenance(self, node: str, now: float, comment: str = "", author: str | None = None) -> Maintenance:
        entry = Maintenance(node, now, author or os_user(), comment)
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO alert_maintenance (node, since, author, comment) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(node) DO UPDATE SET since = excluded.since, author = excluded.author, comment = excluded.comment",
                (node, now, entry.author, comment),
            )
        return entry

    def end_maintenance(self, node: str) -> None:
        with self.db.transaction():
            self.db.execute("DELETE FROM alert_maintenance WHERE node = ?", (node,))


__all__ = ["AlertNotFound", "AlertStore", "RuleError"]

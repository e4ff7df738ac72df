"""Everything the console does with alerts in SQLite, on one worker thread (a `StoreWorker`:
the GUI thread only queues requests and hears back frozen snapshots through signals).

The rules are evaluated by whoever records the history (`gpuops collect`, or the console's
`HistoryRecorder`, both through `core.pipeline`); this worker reads what they stored. The Alerts
tab's reads (active alerts, history, a GPU's timeline, the rules) and writes (acknowledge,
silence, maintenance, notification marks, rule edits, rules files imported and exported) happen
here too. Which new alerts deserve a desktop notification is
decided here after every read of the active alerts (`NotificationPolicy`), and marked notified in
the store before it is shown.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from gpuops.core.alerts.model import Alert, AlertState, Severity
from gpuops.core.alerts.notifications import Notification, NotificationPolicy
from gpuops.core.alerts.persistence import AlertNotFound, AlertStore
from gpuops.core.alerts.rules import Rule, RuleError, rules_to_text
from gpuops.core.alerts.silences import Maintenance, Silence, SilenceError
from gpuops.core.store import NoHistory, StoreError
from gpuops.core.store.connection import open_database, open_read_only, snapshot_outdated
from gpuops.core.timefmt import local_time
from gpuops.gui.workers.store_worker import Jobs, Read, StoreWorker

log = logging.getLogger("gpuops.gui.alerts")

#: The active alerts are read again this often (and after each poll the console records).
REFRESH_S = 5.0


@dataclass(frozen=True)
class AlertSnapshot:
    """The active alerts as read at `read_at`, with what mutes them."""

    active: tuple[Alert, ...]
    silences: tuple[Silence, ...]
    maintenance: Mapping[str, Maintenance]
    read_at: float
    rules_revision: int = 0  # the tab reads the rules again when it changes

    def counts(self) -> dict[Severity, int]:
        """Firing alerts that want attention (not muted) per severity, every severity present."""
        counts = {s: 0 for s in Severity}
        for alert in self.active:
            if alert.state is AlertState.FIRING and not alert.muted:
                counts[alert.severity] += 1
        return counts

    def worst(self) -> Severity | None:
        counts = self.counts()
        return max((s for s, n in counts.items() if n), default=None)


@dataclass(frozen=True)
class HistoryQuery:
    """The history tab's filters; None means any."""

    states: tuple[AlertState, ...] | None = None
    min_severity: Severity | None = None
    node: str | None = None
    gpu_uuid: str | None = None
    rule: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 2000


@dataclass(frozen=True)
class Timeline:
    gpu_uuid: str
    since: float
    until: float
    alerts: tuple[Alert, ...]


@dataclass(frozen=True)
class ActionResult:
    """How an acknowledge / silence / maintenance request went, in one readable line."""

    ok: bool
    message: str
    details: str = ""  # every problem, one per line (a refused rules file)


@dataclass(frozen=True)
class RuleSet:
    """The stored rules in order, and the revision they were read at."""

    rules: tuple[Rule, ...]
    revision: int


class ActionRefused(Exception):
    """A write that cannot be done as asked (e.g. a file that cannot be read); the message says
    why in one line, `details` lists every problem."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


class AlertWorker(StoreWorker["_Session"]):
    """See the module docstring. Reads: "refresh", "history", "timeline", "rules"; a write is
    (action, the kind of read that follows it). `problem` (inherited): the alert tables cannot
    be read or written; "" once they can again."""

    unavailable_errors = (sqlite3.Error, StoreError)

    snapshotReady = Signal(object)  # AlertSnapshot
    historyReady = Signal(object)  # tuple[Alert, ...]
    timelineReady = Signal(object)  # Timeline
    rulesReady = Signal(object)  # RuleSet
    actionDone = Signal(object)  # ActionResult
    notificationDue = Signal(object)  # Notification (already marked notified)

    def __init__(
        self,
        db_path: Path,
        parent: QObject | None = None,
        *,
        policy: NotificationPolicy | None = None,
        clock: Callable[[], float] = time.time,
        refresh_s: float = REFRESH_S,
        read_only: bool = False,
    ) -> None:
        super().__init__(parent, area="alerts", log=log)
        self.db_path = Path(db_path)
        self.read_only = read_only
        # Read-only, notified alerts cannot be marked in the history: remembered here instead.
        self._notified: set[int] = set()
        self._policy = policy or NotificationPolicy()
        self._clock = clock
        signals = {
            "refresh": self.snapshotReady, "history": self.historyReady, "timeline": self.timelineReady,
            "rules": self.rulesReady, "action": self.actionDone, "notify": self.notificationDue,
        }
        self._start(signals, refresh_s, self.refresh)

    # --- requests (GUI thread; never block) ----------------------------------------------

    def refresh(self) -> None:
        self._read("refresh")

    def query_history(self, query: HistoryQuery) -> None:
        self._read("history", query)

    def query_timeline(self, gpu_uuid: str, since: float, until: float) -> None:
        self._read("timeline", (gpu_uuid, since, until))

    def query_rules(self) -> None:
        self._read("rules")

    def save_rule(self, rule: Rule, replaces: str | None = None) -> None:
        """Add `rule`, or put it in the place of the rule named `replaces`."""
        def save(store: AlertStore, now: float) -> str:
            store.save_rule(rule, now, replaces=replaces)
            if replaces is None:
                return f"Rule {rule.name} added"
            renamed = f" (was {replaces})" if replaces != rule.name else ""
            return f"Rule {rule.name}{renamed} saved"

        self._change(save, "rules")

    def set_rule_enabled(self, name: str, enabled: bool) -> None:
        def switch(store: AlertStore, now: float) -> str:
            store.set_rule_enabled(name, enabled, now)
            return f"Rule {name} {'enabled' if enabled else 'disabled'}"

        self._change(switch, "rules")

    def delete_rule(self, name: str) -> None:
        def delete(store: AlertStore, now: float) -> str:
            store.delete_rule(name)
            return f"Rule {name} deleted"

        self._change(delete, "rules")

    def import_rules(self, path: Path) -> None:
        """Replace the rule set with a rules file's (read here, off the GUI thread); all or nothing."""
        self._change(lambda store, now: _import_rules(store, now, Path(path)), "rules")

    def export_rules(self, path: Path) -> None:
        self._change(lambda store, now: _export_rules(store, Path(path)), "rules")

    def acknowledge(self, alert_id: int, note: str) -> None:
        self._change(lambda store, now: _acknowledge(store, now, alert_id, note))

    def add_silence(self, matchers: Sequence[str], starts_at: float, ends_at: float, comment: str) -> None:
        self._change(lambda store, now: _silence(store, now, matchers, starts_at, ends_at, comment))

    def expire_silence(self, silence_id: int) -> None:
        def expire(store: AlertStore, now: float) -> str:
            store.expire_silence(silence_id, now)
            return f"Silence {silence_id} expired"

        self._change(expire)

    def set_maintenance(self, node: str, on: bool, comment: str = "") -> None:
        def change(store: AlertStore, now: float) -> str:
            if on:
                store.start_maintenance(node, now, comment)
                return f"{node} is in maintenance: its alerts are muted"
            store.end_maintenance(node)
            return f"{node} left maintenance"

        self._change(change)

    def _change(self, action: Callable[[AlertStore, float], str], reread: str = "refresh") -> None:
        """Queue the write `action`; the `reread` kind of read follows it (the rules after a rule edit)."""
        self._write((action, reread))

    # --- the worker thread ----------------------------------------------------------------

    def _open_session(self) -> _Session:
        return _Session(self.db_path, self.read_only, self.watch)

    def _problem_line(self, exc: Exception) -> str:
        if isinstance(exc, NoHistory):
            return f"alerts: {exc}"
        return f"alerts not available: {exc}"

    def _run(self, session: _Session, jobs: Jobs) -> None:
        store = session.store()
        now = self._clock()
        changed = bool(jobs.writes)
        for action, reread in jobs.writes:
            self._send("action", _attempt(action, store, now))
            if not jobs.stopping:  # the window is closing: nobody is left to read for
                jobs.reads.setdefault(reread, Read(reread, self._generation))
        if changed and not jobs.stopping and "refresh" not in jobs.reads:
            jobs.reads["refresh"] = Read("refresh", self._generation)
        for read in jobs.reads.values():
            self._send(read.kind, self._answer(store, read, now), read.generation)

    def _answer(self, store: AlertStore, read: Read, now: float) -> object:
        if read.kind == "history":
            q: HistoryQuery = read.argument
            return tuple(store.history(
                states=q.states, min_severity=q.min_severity, node=q.node, gpu_uuid=q.gpu_uuid, rule=q.rule,
                since=q.since, until=q.until, limit=q.limit,
            ))
        if read.kind == "timeline":
            uuid, since, until = read.argument
            return Timeline(uuid, since, until, tuple(store.timeline(uuid, since, until)))
        if read.kind == "rules":
            rules = store.rules()
            return RuleSet(rules, store.rules_revision())
        snapshot = AlertSnapshot(
            tuple(store.active_alerts()), tuple(store.silences(active_at=now)), store.maintenance(), now,
            store.rules_revision(),
        )
        note = self._policy.due((a for a in snapshot.active if a.id not in self._notified), now)
        if note is not None:
            if self.read_only:
                self._notified.update(note.alert_ids)
            else:
                store.mark_notified(note.alert_ids, now)
            self._send("notify", note)
        return snapshot


class _Session:
    """The worker's connection, opened on first use (the history may not exist yet), again after a
    failure, and (`read_only`) again once a writer starts on a history that was at rest."""

    def __init__(self, db_path: Path, read_only: bool, watch: Callable[[sqlite3.Connection], None]) -> None:
        self._db_path = db_path
        self._read_only = read_only
        self._watch = watch  # lets the worker abandon a read when it stops
        self._store: AlertStore | None = None

    def store(self) -> AlertStore:
        if self._store is not None and snapshot_outdated(self._store.conn, self._db_path):
            self.close()
        if self._store is None:
            if self._read_only:
                conn, _layout = open_read_only(self._db_path)
            else:
                conn, _layout = open_database(self._db_path, create=False)
            self._watch(conn)
            self._store = AlertStore(conn, read_only=self._read_only)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.conn.close()
        self._store = None


def _attempt(action: Callable[[AlertStore, float], str], store: AlertStore, now: float) -> ActionResult:
    """Run a write; refusals (no such alert, bad silence, bad rules) come back as a failed result."""
    try:
        return ActionResult(True, action(store, now))
    except ActionRefused as exc:
        return ActionResult(False, str(exc), exc.details)
    except (AlertNotFound, SilenceError, RuleError) as exc:
        return ActionResult(False, str(exc))


def _import_rules(store: AlertStore, now: float, path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ActionRefused(f"Cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ActionRefused(f"{path} is not a rules file: it is not UTF-8 text") from None
    try:
        rules = store.import_rules(text, now, where=path.name)
    except RuleError as exc:
        problems = str(exc).splitlines()
        raise ActionRefused(
            f"Rules not imported from {path.name}, nothing changed: {len(problems)} problem(s), listed below", str(exc)
        ) from None
    return f"Imported {len(rules)} rules from {path}"


def _export_rules(store: AlertStore, path: Path) -> str:
    rules = store.rules()
    try:
        path.write_text(rules_to_text(rules), encoding="utf-8")
    except OSError as exc:
        raise ActionRefused(f"Cannot write {path}: {exc.strerror or exc}") from None
    return f"Exported {len(rules)} rules to {path}"


def _acknowledge(store: AlertStore, now: float, alert_id: int, note: str) -> str:
    alert = store.acknowledge(alert_id, now, note=note)
    return f"Alert {alert.id} ({alert.rule}) acknowledged by {alert.acknowledged_by}"


def _silence(store: AlertStore, now: float, matchers: Sequence[str], starts_at: float, ends_at: float, comment: str) -> str:
    silence = store.add_silence(matchers, starts_at, ends_at, comment, now)
    matchers = " ".join(str(m) for m in silence.matchers)
    return f"Silence {silence.id} ({matchers}) in force until {local_time(silence.ends_at, with_seconds=False)}"


__all__ = ["ActionRefused", "ActionResult", "AlertSnapshot", "AlertWorker", "HistoryQuery", "Notification", "RuleSet", "Timeline"]

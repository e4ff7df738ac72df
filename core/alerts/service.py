"""One call per poll for whoever collects (`gpuops collect`, or the console collecting itself):
evaluate every rule, persist what changed, forward to Alertmanager if configured.

    service = AlertService(conn, poll_interval_s=5.0)
    changes = service.process(sample, allocated=mask, customers=mapping)

The console's Alerts tab reads `service.store` (or its own AlertStore on a read connection):
active alerts grouped, history with filters, a GPU's timeline, counts by severity; it
acknowledges and silences through the store, and asks `NotificationPolicy.due()` what to show.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from gpuops.core.alerts.alertmanager import AlertmanagerForwarder, BackgroundForwarder
from gpuops.core.alerts.engine import AlertEngine, evaluation_time
from gpuops.core.alerts.model import AlertChanges, ChangeKind
from gpuops.core.alerts.persistence import AlertStore
from gpuops.core.logonce import LastingProblem
from gpuops.core.store.connection import open_database
from gpuops.core.store.errors import StoreError
from gpuops.core.telemetry import FleetSample

log = logging.getLogger("gpuops.alerts")


class AlertService:
    def __init__(
        self, conn: sqlite3.Connection, *, poll_interval_s: float, forwarder: BackgroundForwarder | None = None
    ) -> None:
        self.store = AlertStore(conn)
        self.forwarder = forwarder
        self._owns_connection = False
        self._problem = LastingProblem(log)
        rules = self.store.rules()  # seeds new built-ins first, which bumps the revision
        self._rules_revision = self.store.rules_revision()
        self.engine = AlertEngine(
            rules,
            poll_interval_s=poll_interval_s,
            active=self.store.active_alerts(),
            next_id=self.store.max_alert_id() + 1,
            node_baseline=self.store.node_baseline(),
        )

    def reload_rules(self) -> None:
        """After rules were edited or imported (by this or another process)."""
        rules = self.store.rules()
        self._rules_revision = self.store.rules_revision()
        self.engine.set_rules(rules)

    def _follow_rule_changes(self) -> None:
        """Pick up rules imported or edited elsewhere (e.g. `gpuops alerts --import-rules`
        while this collector runs): one small read per poll."""
        if self.store.rules_revision() != self._rules_revision:
            log.info("alert rules changed: reloading them")
            self.reload_rules()

    def process(
        self,
        sample: FleetSample,
        now: float | None = None,
        *,
        allocated: np.ndarray | None = None,
        customers: Mapping[str, str] | None = None,
        last_fresh_ts: np.ndarray | None = None,
    ) -> AlertChanges:
        now = evaluation_time(now)
        self._refresh_settings(now)
        changes = self.engine.evaluate(sample, now, allocated=allocated, customers=customers, last_fresh_ts=last_fresh_ts)
        return self._record(changes, now)

    def source_failed(self, error: str, now: float | None = None) -> AlertChanges:
        """A poll failed outright (SourceError): the `source_down` rule sees it."""
        now = evaluation_time(now)
        self._refresh_settings(now)
        return self._record(self.engine.source_failed(error, now), now)

    def _refresh_settings(self, now: float) -> None:
        # Rules, silences and maintenance may be changed by another process: a few rows.
        self._follow_rule_changes()
        self.engine.set_silences(self.store.silences(active_at=now), self.store.maintenance())

    def _record(self, changes: AlertChanges, now: float) -> AlertChanges:
        self.store.apply(changes)
        if self.forwarder is not None:
            self.forwarder.submit(self.engine.active, changes.of_kind(ChangeKind.RESOLVED), now)
        return changes

    @classmethod
    def for_collector(cls, db_path: Path, *, poll_interval_s: float, alertmanager_url: str | None = None) -> AlertService:
        """An alert service on its own connection to the history at `db_path` (which the
        collector's writer has created), forwarding to `alertmanager_url` if given."""
        forwarder = BackgroundForwarder(AlertmanagerForwarder(alertmanager_url), db_path=db_path) if alertmanager_url else None
        conn, _layout = open_database(db_path, create=False)
        service = cls(conn, poll_interval_s=poll_interval_s, forwarder=forwarder)
        service._owns_connection = True
        return service

    def on_sample(
        self,
        sample: FleetSample,
        now: float | None = None,
        *,
        allocated: np.ndarray | None = None,
        customers: Mapping[str, str] | None = None,
    ) -> AlertChanges | None:
        """`process` for a collecting loop: a database problem is logged (once while it lasts)
        and never ends collection (None); the next poll tries again."""
        return self._guarded(lambda: self.process(sample, now, allocated=allocated, customers=customers))

    def on_source_error(self, error: str, now: float | None = None) -> AlertChanges | None:
        """`source_failed` for a collecting loop, guarded like `on_sample`."""
        return self._guarded(lambda: self.source_failed(error, now))

    def _guarded(self, evaluate: Callable[[], AlertChanges]) -> AlertChanges | None:
        failures: tuple[type[BaseException], ...] = (*self.store.db.errors, StoreError)  # SQLite's or PostgreSQL's
        try:
            changes = evaluate()
        except failures as exc:
            self._problem.occur(f"evaluating alerts failed: {exc}")
            return None
        self._problem.resolve()
        return changes

    def close(self) -> None:
        if self.forwarder is not None:
            self.forwarder.close()
        if self._owns_connection:
            self.store.conn.close()

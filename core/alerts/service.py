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
import time
from pathlib import Path
from typing import Mapping

import numpy as np

from core.alerts.alertmanager import AlertmanagerForwarder, BackgroundForwarder
from core.alerts.engine import AlertEngine
from core.alerts.model import AlertChanges, ChangeKind
from core.alerts.persistence import AlertStore
from core.store.connection import open_database
from core.store.errors import StoreError
from core.telemetry import FleetSample

log = logging.getLogger("gpuops.alerts")


class AlertService:
    def __init__(
        self, conn: sqlite3.Connection, *, poll_interval_s: float, forwarder: BackgroundForwarder | None = None
    ) -> None:
        self.store = AlertStore(conn)
        self.forwarder = forwarder
        self._owns_connection = False
        self._last_error: str | None = None
        self.engine = AlertEngine(
            self.store.rules(),
            poll_interval_s=poll_interval_s,
            active=self.store.active_alerts(),
            next_id=self.store.max_alert_id() + 1,
            node_baseline=self.store.node_baseline(),
        )

    def reload_rules(self) -> None:
        """After rules were edited or imported (by this or another process)."""
        self.engine.set_rules(self.store.rules())

    def process(
        self,
        sample: FleetSample,
        now: float | None = None,
        *,
        allocated: np.ndarray | None = None,
        customers: Mapping[str, str] | None = None,
        last_fresh_ts: np.ndarray | None = None,
    ) -> AlertChanges:
        now = time.time() if now is None else float(now)
        # Silences and maintenance may be set by the console in another process: a few rows.
        self.engine.set_silences(self.store.silences(active_at=now), self.store.maintenance())
        changes = self.engine.evaluate(sample, now, allocated=allocated, customers=customers, last_fresh_ts=last_fresh_ts)
        self.store.apply(changes)
        if self.forwarder is not None:
            self.forwarder.submit(self.engine.active, changes.of_kind(ChangeKind.RESOLVED), now)
        return changes

    @classmethod
    def for_collector(cls, db_path: Path, *, poll_interval_s: float, alertmanager_url: str | None = None) -> "AlertService":
        """An alert service on its own connection to the history at `db_path` (which the
        collector's writer has created), forwarding to `alertmanager_url` if given."""
        forwarder = BackgroundForwarder(AlertmanagerForwarder(alertmanager_url)) if alertmanager_url else None
        conn, _layout = open_database(db_path, create=False)
        service = cls(conn, poll_interval_s=poll_interval_s, forwarder=forwarder)
        service._owns_connection = True
        return service

    def on_sample(self, sample: FleetSample) -> None:
        """`process` for a collecting loop: a database problem is logged (once while it lasts)
        and never ends collection; the next poll tries again."""
        try:
            self.process(sample)
        except (sqlite3.Error, StoreError) as exc:
            if str(exc) != self._last_error:
                log.error("evaluating alerts failed: %s", exc)
            self._last_error = str(exc)
        else:
            self._last_error = None

    def close(self) -> None:
        if self.forwarder is not None:
            self.forwarder.close()
        if self._owns_connection:
            self.store.conn.close()

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
from typing import Mapping

import numpy as np

from core.alerts.alertmanager import BackgroundForwarder
from core.alerts.engine import AlertEngine
from core.alerts.model import AlertChanges, ChangeKind
from core.alerts.persistence import AlertStore
from core.telemetry import FleetSample

log = logging.getLogger("gpuops.alerts")


class AlertService:
    def __init__(
        self, conn: sqlite3.Connection, *, poll_interval_s: float, forwarder: BackgroundForwarder | None = None
    ) -> None:
        self.store = AlertStore(conn)
        self.forwarder = forwarder
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

    def close(self) -> None:
        if self.forwarder is not None:
            self.forwarder.close()

"""Forwarding alerts to a Prometheus Alertmanager (`POST /api/v2/alerts`).

Alertmanager expects clients to re-send firing alerts periodically: each carries an endsAt a
few resend intervals ahead, so the alert resolves by itself if gpuops stops. Resolved alerts are
sent once with their real endsAt. Pending alerts are not sent; locally silenced ones are (on-call
relies on Alertmanager, which has its own silences).

`sync()` does the HTTP call in the caller's thread; `BackgroundForwarder` runs it on its own
thread, so a dead Alertmanager (timeouts) never holds up polling, and records when each firing
alert was last sent in the history (`meta`), so a restarted collector does not send them all
again inside the resend interval. `close()` aborts a request still running: a hung Alertmanager
never delays a stop.

Labels and annotations follow dcgm-exporter's and Prometheus' conventions (docs/fleet.md), so
routes and templates written for dcgm-exporter alerts match ours: `alertname`, `severity`,
`Hostname` and `node`, `gpu` (the index), `UUID`, `modelName`, `customer`, `site`; annotations
`summary`, `description` (the runbook text) and `runbook_url` (GPUOPS_RUNBOOK_BASE_URL/<rule>).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from gpuops.core import jsontext
from gpuops.core.alerts.model import Alert, AlertState
from gpuops.core.logonce import LastingProblem
from gpuops.core.sources.http_fetch import FetchError, HttpFetcher, HttpOptions
from gpuops.core.timefmt import iso_utc

log = logging.getLogger("gpuops.alerts")

DEFAULT_RESEND_INTERVAL_S = 60.0
ENDS_AT_RESENDS = 4  # a firing alert's endsAt lies this many resend intervals ahead
MAX_UNSENT_RESOLVED = 10_000
RUNBOOK_BASE_ENV = "GPUOPS_RUNBOOK_BASE_URL"
SENT_AT_KEY = "alertmanager_sent_at"  # meta row: {alert id: UTC epoch s of the last send}
CLOSE_WAIT_S = 1.0
#: Credentials and TLS for Alertmanager from GPUOPS_ALERTMANAGER_CA_FILE, _INSECURE,
#: _BEARER_TOKEN(_FILE), _USERNAME, _PASSWORD(_FILE), as GPUOPS_PROMETHEUS_* for the prometheus:
#: source (the forwarder here and the API client in core.alerts.alertmanager_api).
ENV_PREFIX = "GPUOPS_ALERTMANAGER"
# Our alert label -> the names Alertmanager receives (dcgm-exporter's where it has one).
FORWARDED_LABELS: dict[str, tuple[str, ...]] = {
    "severity": ("severity",),
    "node": ("Hostname", "node"),
    "gpu_index": ("gpu",),
    "gpu": ("UUID",),
    "model": ("modelName",),
    "customer": ("customer",),
    "site": ("site",),
}
_NOT_FORWARDED = {"rule"}  # it is `alertname`


class ForwardError(Exception):
    """Alertmanager could not be reached or refused the alerts; one line naming it and why."""


class AlertmanagerForwarder:
    def __init__(
        self, url: str, *, resend_interval_s: float = DEFAULT_RESEND_INTERVAL_S, timeout_s: float = 5.0,
        generator_url: str | None = None, runbook_base_url: str | None = None,
        environ: Mapping[str, str] | None = None, options: HttpOptions | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Alertmanager URL {url!r} must start with http:// or https://")
        env = os.environ if environ is None else environ
        base = runbook_base_url if runbook_base_url is not None else env.get(RUNBOOK_BASE_ENV, "")
        if base and not base.startswith(("http://", "https://")):
            raise ValueError(f"{RUNBOOK_BASE_ENV}={base!r} must start with http:// or https://")
        self.endpoint = url.rstrip("/") + "/api/v2/alerts"
        self.resend_interval_s = resend_interval_s
        self.timeout_s = timeout_s
        self.generator_url = generator_url
        self.runbook_base_url = base.rstrip("/") or None
        self._fetcher = HttpFetcher(options or HttpOptions.from_env(ENV_PREFIX, env), timeout_s=timeout_s, max_bytes=2**20)
        self._sent_at: dict[int, float] = {}
        self._unsent_resolved: dict[int, Alert] = {}

    @property
    def sent_at(self) -> dict[int, float]:
        """When each firing alert was last sent (UTC epoch s), to persist across restarts."""
        return dict(self._sent_at)

    def remember_sent(self, sent_at: Mapping[int, float]) -> None:
        """Sends made before a restart: not repeated before their resend interval is over."""
        for alert_id, ts in sent_at.items():
            self._sent_at[alert_id] = max(ts, self._sent_at.get(alert_id, ts))

    def labels(self, alert: Alert) -> dict[str, str]:
        """Alertmanager labels for `alert` (FORWARDED_LABELS; other labels keep their names)."""
        labels = {"alertname": alert.rule}
        for name, value in alert.labels.items():
            if value and name not in _NOT_FORWARDED:
                for forwarded in FORWARDED_LABELS.get(name, (name,)):
                    labels[forwarded] = str(value)
        return labels

    def payload(self, alert: Alert, now: float) -> dict:
        annotations = {"summary": alert.summary}
        if alert.runbook:
            annotations["description"] = alert.runbook
        if self.runbook_base_url:
            annotations["runbook_url"] = f"{self.runbook_base_url}/{alert.rule}"
        if alert.acknowledged_by:
            annotations["acknowledged_by"] = alert.acknowledged_by
        ends = alert.ended_at if alert.state is AlertState.RESOLVED else now + ENDS_AT_RESENDS * self.resend_interval_s
        item = {
            "labels": self.labels(alert), "annotations": annotations,
            "startsAt": iso_utc(alert.started_at or alert.pending_at), "endsAt": iso_utc(ends or now),
        }
        if self.generator_url:
            item["generatorURL"] = self.generator_url
        return item

    def due(self, active: Iterable[Alert], resolved: Iterable[Alert], now: float) -> list[Alert]:
        """Firing alerts not sent within the resend interval, and resolved alerts not yet sent."""
        for alert in resolved:
            if alert.started_at is not None:  # it fired, so Alertmanager may know it
                self._unsent_resolved[alert.id] = alert
                self._sent_at.pop(alert.id, None)
        while len(self._unsent_resolved) > MAX_UNSENT_RESOLVED:
            self._unsent_resolved.pop(next(iter(self._unsent_resolved)))
        firing = [a for a in active if a.state is AlertState.FIRING
                  and now - self._sent_at.get(a.id, -float("inf")) >= self.resend_interval_s]
        return firing + list(self._unsent_resolved.values())

    def sync(self, active: Iterable[Alert], resolved: Iterable[Alert], now: float) -> int:
        """Send what is due; returns how many alerts went out. Raises ForwardError (and keeps
        them due) if Alertmanager cannot take them."""
        batch = self.due(active, resolved, now)
        if not batch:
            return 0
        body = jsontext.dumps([self.payload(a, now) for a in batch]).encode()
        try:
            self._fetcher.post(self.endpoint, body, "application/json")
        except FetchError as exc:
            if str(exc).startswith("HTTP "):
                detail = exc.body[:300].decode("utf-8", "replace").strip()
                raise ForwardError(f"Alertmanager {self.endpoint} refused the alerts: {exc} {detail}".rstrip()) from None
            raise ForwardError(f"cannot reach Alertmanager {self.endpoint}: {exc}") from None
        for alert in batch:
            if alert.state is AlertState.RESOLVED:
                self._unsent_resolved.pop(alert.id, None)
            else:
                self._sent_at[alert.id] = now
        firing = {a.id for a in active if a.state is AlertState.FIRING}
        for alert_id in self._sent_at.keys() - firing:
            del self._sent_at[alert_id]
        return len(batch)

    def close(self) -> None:
        """Abort a request in progress (from any thread)."""
        self._fetcher.close()


class BackgroundForwarder:
    """Runs `sync` on its own thread with the newest alert state; `submit` never blocks. With
    `db_path` (the history), the send times survive a restart (SENT_AT_KEY in `meta`)."""

    def __init__(self, forwarder: AlertmanagerForwarder, *, db_path: Path | None = None) -> None:
        self.forwarder = forwarder
        self._db_path = db_path
        self._problem = LastingProblem(log, logging.WARNING)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._active: list[Alert] = []
        self._resolved: list[Alert] = []
        self._now = 0.0
        self._thread = threading.Thread(target=self._run, name="gpuops-alertmanager", daemon=True)
        self._thread.start()

    @property
    def last_error(self) -> str | None:
        """Why the last send failed (None once one succeeds)."""
        return self._problem.message

    def submit(self, active: Iterable[Alert], resolved: Iterable[Alert], now: float) -> None:
        with self._lock:
            self._active = list(active)
            self._resolved.extend(resolved)
            self._now = now
        self._wake.set()

    def _run(self) -> None:
        conn = self._open_memory()
        try:
            self._forward(conn)
        finally:
            if conn is not None:
                conn.close()

    def _open_memory(self) -> sqlite3.Connection | None:
        """This thread's connection to the history, with the send times of the last run loaded."""
        if self._db_path is None:
            return None
        from gpuops.core.store.connection import open_database
        from gpuops.core.store.errors import StoreError

        try:
            conn, _ = open_database(self._db_path, create=False)
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (SENT_AT_KEY,)).fetchone()
            if row is not None:
                self.forwarder.remember_sent({int(k): float(v) for k, v in json.loads(row[0]).items()})
        except (StoreError, sqlite3.Error, ValueError, TypeError, AttributeError) as exc:
            log.warning("Alertmanager send times from the last run are not available (%s): firing alerts are re-sent", exc)
            return None
        return conn

    def _save_memory(self, conn: sqlite3.Connection | None, saved: dict[int, float]) -> dict[int, float]:
        sent_at = self.forwarder.sent_at
        if conn is None or sent_at == saved:
            return saved
        try:
            with conn:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (SENT_AT_KEY, jsontext.dumps({str(k): v for k, v in sent_at.items()})),
                )
        except sqlite3.Error as exc:
            log.warning("cannot record Alertmanager send times: %s", exc)
            return saved
        return sent_at

    def _forward(self, conn: sqlite3.Connection | None) -> None:
        saved = self.forwarder.sent_at
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                if self._stop:
                    return
                active, resolved, now = self._active, self._resolved, self._now
                self._resolved = []
            try:
                self.forwarder.sync(active, resolved, now)
                self._problem.resolve()
            except ForwardError as exc:
                with self._lock:
                    if self._stop:
                        return
                self._problem.occur(str(exc))
            saved = self._save_memory(conn, saved)

    def close(self, timeout_s: float = CLOSE_WAIT_S) -> None:
        """Stop: a send in progress is aborted, so this returns within about `timeout_s` even
        when Alertmanager accepts connections and never answers."""
        with self._lock:
            self._stop = True
        self._wake.set()
        self.forwarder.close()
        self._thread.join(timeout_s)

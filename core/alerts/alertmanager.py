"""Forwarding alerts to a Prometheus Alertmanager (`POST /api/v2/alerts`).

Alertmanager expects clients to re-send firing alerts periodically: each carries an endsAt a
few resend intervals ahead, so the alert resolves by itself if gpuops stops. Resolved alerts are
sent once with their real endsAt. Pending alerts are not sent; locally silenced ones are (on-call
relies on Alertmanager, which has its own silences).

`sync()` does the HTTP call in the caller's thread; `BackgroundForwarder` runs it on its own
thread, so a dead Alertmanager (timeouts) never holds up polling.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Iterable

from gpuops.core.alerts.model import Alert, AlertState

log = logging.getLogger("gpuops.alerts")

DEFAULT_RESEND_INTERVAL_S = 60.0
ENDS_AT_RESENDS = 4  # a firing alert's endsAt lies this many resend intervals ahead
MAX_UNSENT_RESOLVED = 10_000


class ForwardError(Exception):
    """Alertmanager could not be reached or refused the alerts; one line naming it and why."""


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AlertmanagerForwarder:
    def __init__(
        self, url: str, *, resend_interval_s: float = DEFAULT_RESEND_INTERVAL_S, timeout_s: float = 5.0,
        generator_url: str | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Alertmanager URL {url!r} must start with http:// or https://")
        self.endpoint = url.rstrip("/") + "/api/v2/alerts"
        self.resend_interval_s = resend_interval_s
        self.timeout_s = timeout_s
        self.generator_url = generator_url
        self._sent_at: dict[int, float] = {}
        self._unsent_resolved: dict[int, Alert] = {}

    def payload(self, alert: Alert, now: float) -> dict:
        labels = {"alertname": alert.rule, **{k: str(v) for k, v in alert.labels.items() if v}}
        annotations = {"summary": alert.summary}
        if alert.runbook:
            annotations["runbook"] = alert.runbook
        if alert.acknowledged_by:
            annotations["acknowledged_by"] = alert.acknowledged_by
        ends = alert.ended_at if alert.state is AlertState.RESOLVED else now + ENDS_AT_RESENDS * self.resend_interval_s
        item = {
            "labels": labels, "annotations": annotations,
            "startsAt": rfc3339(alert.started_at or alert.pending_at), "endsAt": rfc3339(ends or now),
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
        body = json.dumps([self.payload(a, now) for a in batch]).encode()
        request = urllib.request.Request(self.endpoint, data=body, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode("utf-8", "replace").strip()
            raise ForwardError(f"Alertmanager {self.endpoint} refused the alerts: HTTP {exc.code} {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ForwardError(f"cannot reach Alertmanager {self.endpoint}: {reason}") from None
        for alert in batch:
            if alert.state is AlertState.RESOLVED:
                self._unsent_resolved.pop(alert.id, None)
            else:
                self._sent_at[alert.id] = now
        return len(batch)


class BackgroundForwarder:
    """Runs `sync` on its own thread with the newest alert state; `submit` never blocks."""

    def __init__(self, forwarder: AlertmanagerForwarder) -> None:
        self.forwarder = forwarder
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._active: list[Alert] = []
        self._resolved: list[Alert] = []
        self._now = 0.0
        self._thread = threading.Thread(target=self._run, name="gpuops-alertmanager", daemon=True)
        self._thread.start()

    def submit(self, active: Iterable[Alert], resolved: Iterable[Alert], now: float) -> None:
        with self._lock:
            self._active = list(active)
            self._resolved.extend(resolved)
            self._now = now
        self._wake.set()

    def _run(self) -> None:
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
                self.last_error = None
            except ForwardError as exc:
                if str(exc) != self.last_error:
                    log.warning("%s", exc)
                self.last_error = str(exc)

    def close(self, timeout_s: float = 10.0) -> None:
        with self._lock:
            self._stop = True
        self._wake.set()
        self._thread.join(timeout_s)

"""Which alerts deserve a desktop notification, and when: new critical alerts, at most one
notification per `min_interval_s`, alerts arriving meanwhile coalesced into the next one.

The decision reads only alert state (`notified_at` in the store), so a restarted console never
notifies an alert again; showing it (QSystemTrayIcon) is the console's job.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gpuops.core.alerts.model import Alert, AlertState, Severity

DEFAULT_MIN_INTERVAL_S = 60.0
MAX_LISTED = 3


@dataclass(frozen=True)
class Notification:
    title: str
    body: str
    alert_ids: tuple[int, ...]  # mark these notified once shown (AlertStore.mark_notified)


class NotificationPolicy:
    def __init__(self, *, min_interval_s: float = DEFAULT_MIN_INTERVAL_S, min_severity: Severity = Severity.CRITICAL) -> None:
        self.min_interval_s = min_interval_s
        self.min_severity = min_severity
        self._last_at: float | None = None

    def candidates(self, alerts: Iterable[Alert]) -> list[Alert]:
        """Firing, severe enough, not yet notified, not muted and not acknowledged."""
        return [
            a for a in alerts
            if a.state is AlertState.FIRING and a.severity >= self.min_severity and a.notified_at is None
            and not a.muted and a.acknowledged_by is None
        ]

    def due(self, alerts: Iterable[Alert], now: float) -> Notification | None:
        """The notification to show now, or None (nothing new, or the last one was too recent:
        then the new alerts wait and go out together)."""
        pending = sorted(self.candidates(alerts), key=lambda a: (-a.severity, a.started_at or 0.0, a.id))
        if not pending:
            return None
        if self._last_at is not None and now - self._last_at < self.min_interval_s:
            return None
        self._last_at = now
        if len(pending) == 1:
            alert = pending[0]
            return Notification(f"{alert.severity.label.capitalize()}: {alert.rule}", alert.summary, (alert.id,))
        lines = [a.summary for a in pending[:MAX_LISTED]]
        if len(pending) > MAX_LISTED:
            lines.append(f"and {len(pending) - MAX_LISTED} more")
        worst = pending[0].severity.label
        return Notification(f"{len(pending)} new alerts ({worst})", "\n".join(lines), tuple(a.id for a in pending))

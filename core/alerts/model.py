"""What an alert is once it leaves the engine: frozen snapshots that cross threads and reach
the store, the CLI and the console."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, IntEnum


class Severity(IntEnum):
    """Ordered so that `max()` gives the worst."""

    INFO = 1
    WARNING = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"severity {text!r} is not one of info, warning, critical") from None


class AlertState(str, Enum):
    PENDING = "pending"  # condition true, waiting for the rule's `for` duration
    FIRING = "firing"
    RESOLVED = "resolved"


ACTIVE_STATES = (AlertState.PENDING, AlertState.FIRING)


@dataclass(frozen=True)
class Alert:
    """One episode of one rule on one subject (a GPU, a node, or the telemetry source).

    Times are UTC epoch seconds. `started_at` is when it began firing (None while pending);
    `last_true_at` is the last evaluation at which the condition held (for keep_firing_for).
    `silenced_by` (a silence id, or "maintenance") and `inhibited` mute notifications and the
    console's attention without hiding the alert.
    """

    id: int
    rule: str
    key: str  # the subject: a GPU uuid, "node:<name>" or "source"
    severity: Severity
    state: AlertState
    labels: Mapping[str, str]
    summary: str
    runbook: str
    pending_at: float
    started_at: float | None = None
    last_true_at: float | None = None
    ended_at: float | None = None
    notified_at: float | None = None
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    ack_note: str | None = None
    silenced_by: str | None = None
    inhibited: bool = False

    @property
    def gpu_uuid(self) -> str | None:
        return self.labels.get("gpu")

    @property
    def node(self) -> str | None:
        return self.labels.get("node")

    @property
    def muted(self) -> bool:
        return self.silenced_by is not None or self.inhibited

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def to_json(self) -> dict:
        """The `gpuops alerts --json` object (documented keys; extra keys may be added)."""
        return {
            "id": self.id,
            "rule": self.rule,
            "severity": self.severity.label,
            "state": self.state.value,
            "gpu_uuid": self.gpu_uuid,
            "node": self.node,
            "pending_at": self.pending_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "summary": self.summary,
            "runbook": self.runbook,
            "labels": dict(self.labels),
            "acknowledged_by": self.acknowledged_by,
            "acknowledged_at": self.acknowledged_at,
            "ack_note": self.ack_note,
            "silenced_by": self.silenced_by,
            "inhibited": self.inhibited,
            "notified_at": self.notified_at,
        }


class ChangeKind(str, Enum):
    PENDING = "pending"  # a new alert, waiting for `for`
    FIRING = "firing"  # began firing (from pending, or at once when `for` is 0)
    CANCELLED = "cancelled"  # pending alert whose condition went away before `for`: forgotten
    RESOLVED = "resolved"
    UPDATED = "updated"  # still active; last_true_at, mute or acknowledgement changed


@dataclass(frozen=True)
class AlertChange:
    kind: ChangeKind
    alert: Alert


@dataclass(frozen=True)
class AlertChanges:
    """What one evaluation changed; the store persists exactly this."""

    ts: float
    changes: tuple[AlertChange, ...] = ()
    node_gpu_counts: Mapping[str, int] = field(default_factory=dict)  # raised baselines only

    def __bool__(self) -> bool:
        return bool(self.changes) or bool(self.node_gpu_counts)

    def of_kind(self, kind: ChangeKind) -> list[Alert]:
        return [c.alert for c in self.changes if c.kind is kind]

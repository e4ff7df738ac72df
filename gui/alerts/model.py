"""The active alerts as a two-level tree (group → alert) for a QTreeView, and history as a table.

Both models take whole snapshots. When a refresh keeps the same groups and alert ids, the tree
emits one ranged dataChanged over the groups and one over each group whose alerts changed
(never a signal per cell); when the structure changed it resets, which at a few hundred rows is
cheaper than working out inserts and removals.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from PySide6.QtCore import QAbstractItemModel, QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from gpuops.core.alerts.model import Alert, AlertState, Severity
from gpuops.core.timefmt import local_time
from gpuops.core.units import format_age

#: The role carrying the Alert of a row (None on group rows).
ALERT_ROLE = Qt.ItemDataRole.UserRole + 1
#: How the active alerts are grouped, as Alertmanager's group_by: [node], [alertname] or both.
GROUP_BY = {"node": "Node", "rule": "Rule", "rule_node": "Rule and node"}
#: Okabe-Ito colours, distinguishable with colour-blindness, as elsewhere in the console.
SEVERITY_COLORS = {Severity.CRITICAL: QColor("#d55e00"), Severity.WARNING: QColor("#e69f00"), Severity.INFO: QColor("#0072b2")}
_MUTED = QColor("#808080")
NO_NODE = "(fleet)"

ACTIVE_COLUMNS = ("Severity", "State", "Subject", "Summary", "Since", "Acknowledged")
SINCE_COLUMN = ACTIVE_COLUMNS.index("Since")
HISTORY_COLUMNS = ("ID", "Severity", "State", "Rule", "Node", "GPU", "Began", "Ended", "Summary", "Acknowledged")

_Index = QModelIndex | QPersistentModelIndex


def when(ts: float | None) -> str:
    return "" if ts is None else local_time(ts)


def state_text(alert: Alert) -> str:
    text = alert.state.value
    if alert.silenced_by == "maintenance":
        text += " (maintenance)"
    elif alert.silenced_by is not None:
        text += f" (silenced #{alert.silenced_by})"
    elif alert.inhibited:
        text += " (inhibited)"
    return text


def ack_text(alert: Alert) -> str:
    if alert.acknowledged_by is None:
        return ""
    return f"{alert.acknowledged_by}: {alert.ack_note}" if alert.ack_note else alert.acknowledged_by


def subject_text(alert: Alert) -> str:
    """What the alert is about: the GPU (node and index), the node, or the source."""
    if alert.gpu_uuid is not None:
        return f"{alert.node} GPU {alert.labels.get('gpu_index', '?')}"
    return alert.node or "telemetry source"


def severity_counts(alerts: Sequence[Alert]) -> dict[Severity, int]:
    """How many of `alerts` have each severity, the worst first."""
    return {severity: sum(1 for a in alerts if a.severity is severity) for severity in sorted(Severity, reverse=True)}


def group_text(key: str, alerts: Sequence[Alert]) -> str:
    """"ecc_uncorrectable — 3 alerts: 2 critical, 1 warning" (only the severities present)."""
    counts = ", ".join(f"{n} {severity.label}" for severity, n in severity_counts(alerts).items() if n)
    return f"{key} — {len(alerts)} alert{'s' if len(alerts) != 1 else ''}: {counts}"


class ActiveAlertsModel(QAbstractItemModel):
    """Groups (by node or rule, worst first) of active alerts; see the module docstring."""

    def __init__(self, parent=None, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(parent)
        self._clock = clock  # "Since" reads "3 min ago" against it
        self._group_by = "node"
        self._alerts: tuple[Alert, ...] = ()
        self._groups: list[tuple[str, list[Alert]]] = []

    @property
    def group_by(self) -> str:
        return self._group_by

    def set_group_by(self, group_by: str) -> None:
        if group_by not in GROUP_BY:
            raise ValueError(f"group alerts by {' or '.join(GROUP_BY)}, not {group_by!r}")
        if group_by != self._group_by:
            self._group_by = group_by
            self.beginResetModel()
            self._groups = self._grouped(self._alerts)
            self.endResetModel()

    def set_alerts(self, alerts: Sequence[Alert]) -> None:
        alerts = tuple(alerts)
        groups = self._grouped(alerts)
        old = self._groups
        self._alerts = alerts
        same_shape = [k for k, _ in old] == [k for k, _ in groups] and all(
            [a.id for a in o] == [a.id for a in n] for (_, o), (_, n) in zip(old, groups, strict=True)
        )
        if not same_shape:
            self.beginResetModel()
            self._groups = groups
            self.endResetModel()
            return
        self._groups = groups
        last_column = len(ACTIVE_COLUMNS) - 1
        changed_groups = [g for g, ((_, o), (_, n)) in enumerate(zip(old, groups, strict=True)) if o != n]
        if changed_groups:
            self.dataChanged.emit(self.index(0, 0), self.index(len(groups) - 1, last_column))
        for g in changed_groups:
            parent = self.index(g, 0)
            self.dataChanged.emit(self.index(0, 0, parent), self.index(len(groups[g][1]) - 1, last_column, parent))

    def refresh_ages(self) -> None:
        """Time went by: the "Since" column again, one ranged dataChanged per group."""
        for g, (_, members) in enumerate(self._groups):
            parent = self.index(g, 0)
            self.dataChanged.emit(
                self.index(0, SINCE_COLUMN, parent), self.index(len(members) - 1, SINCE_COLUMN, parent),
                [Qt.ItemDataRole.DisplayRole],
            )

    def _grouped(self, alerts: Sequence[Alert]) -> list[tuple[str, list[Alert]]]:
        groups: dict[str, list[Alert]] = {}
        for alert in alerts:
            node = alert.node or NO_NODE
            key = node if self._group_by == "node" else alert.rule if self._group_by == "rule" else f"{alert.rule} · {node}"
            groups.setdefault(key, []).append(alert)
        for members in groups.values():
            members.sort(key=lambda a: (-a.severity, a.state is not AlertState.FIRING, a.id))
        # Criticals first: the worst severity, then how many of each severity from the worst down.
        return sorted(groups.items(), key=lambda item: (
            *(-n for n in severity_counts(item[1]).values()), item[0]
        ))

    # --- what the view and tests read ------------------------------------------------------

    def groups(self) -> list[str]:
        return [key for key, _ in self._groups]

    def alert_at(self, index: _Index) -> Alert | None:
        value = index.data(ALERT_ROLE) if index.isValid() else None
        return value if isinstance(value, Alert) else None

    def index_of(self, alert_id: int) -> QModelIndex:
        for g, (_, members) in enumerate(self._groups):
            for row, alert in enumerate(members):
                if alert.id == alert_id:
                    return self.index(row, 0, self.index(g, 0))
        return QModelIndex()

    # --- QAbstractItemModel -------------------------------------------------------------------

    def index(self, row: int, column: int, parent: _Index = QModelIndex()) -> QModelIndex:
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        # Group rows carry internal id 0; alert rows carry their group's row + 1.
        return self.createIndex(row, column, 0 if not parent.isValid() else parent.row() + 1)

    def parent(self, index: _Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # not QObject.parent()
        if not index.isValid() or index.internalId() == 0:
            return QModelIndex()
        return self.createIndex(index.internalId() - 1, 0, 0)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        if not parent.isValid():
            return len(self._groups)
        if parent.internalId() == 0 and parent.column() == 0:
            return len(self._groups[parent.row()][1])
        return 0

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return len(ACTIVE_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return ACTIVE_COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        if index.internalId() == 0:
            return self._group_data(index, role)
        alert = self._groups[index.internalId() - 1][1][index.row()]
        if role == ALERT_ROLE:
            return alert
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            subject = f"{alert.rule} · {subject_text(alert)}" if self._group_by == "node" else subject_text(alert)
            return (
                alert.severity.label, state_text(alert), subject, alert.summary,
                format_age(self._clock() - (alert.started_at or alert.pending_at)), ack_text(alert),
            )[column]
        if role == Qt.ItemDataRole.ForegroundRole:
            if alert.muted:
                return QBrush(_MUTED)
            if column == 0:
                return QBrush(SEVERITY_COLORS[alert.severity])
        if role == Qt.ItemDataRole.FontRole and (alert.muted or alert.state is AlertState.PENDING):
            font = QFont()
            font.setItalic(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == SINCE_COLUMN:
                return when(alert.started_at or alert.pending_at)
            return "\n".join(filter(None, (alert.summary, alert.runbook, f"alert {alert.id}, rule {alert.rule}")))
        return None

    def _group_data(self, index: _Index, role: int):
        key, members = self._groups[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return group_text(key, members) if index.column() == 0 else None
        if role == Qt.ItemDataRole.FontRole:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 0:
            return QBrush(SEVERITY_COLORS[max(a.severity for a in members)])
        return None


class HistoryModel(QAbstractTableModel):
    """Alerts newest first, as the worker read them for the history filters."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._alerts: tuple[Alert, ...] = ()

    def set_alerts(self, alerts: Sequence[Alert]) -> None:
        self.beginResetModel()
        self._alerts = tuple(alerts)
        self.endResetModel()

    def alerts(self) -> tuple[Alert, ...]:
        return self._alerts

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._alerts)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(HISTORY_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HISTORY_COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        alert = self._alerts[index.row()]
        if role == ALERT_ROLE:
            return alert
        if role == Qt.ItemDataRole.DisplayRole:
            gpu = alert.labels.get("gpu_index", "") if alert.gpu_uuid else ""
            return (
                str(alert.id), alert.severity.label, state_text(alert), alert.rule, alert.node or "", gpu,
                when(alert.started_at or alert.pending_at), when(alert.ended_at), alert.summary, ack_text(alert),
            )[index.column()]
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 1:
            return QBrush(SEVERITY_COLORS[alert.severity])
        if role == Qt.ItemDataRole.ToolTipRole:
            return alert.gpu_uuid or alert.summary
        return None

"""The alert rules as a table: one row per rule, in the stored order, in words an operator reads
at a glance (what it compares, for how long, where, how it clears, and whether gpuops shipped it).

The model only shows what the alert worker read. Ticking the Enabled box asks for the change
(`enabledToggled`); the box follows once the worker has written it and read the rules again.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor

from gpuops.core.alerts.builtin_rules import rule_origin
from gpuops.core.alerts.rules import Condition, Rule
from gpuops.core.alerts.signals import DERIVED_GPU_SIGNALS, GPU, NODE, NODE_SIGNALS, SOURCE_SIGNALS
from gpuops.gui.alerts.model import SEVERITY_COLORS

#: The role carrying the Rule of a row.
RULE_ROLE = Qt.ItemDataRole.UserRole + 2
RULE_COLUMNS = ("Name", "Enabled", "Severity", "Applies to", "Condition", "For", "Keep firing / clear", "Origin")
ENABLED_COLUMN = RULE_COLUMNS.index("Enabled")
_DISABLED = QColor("#808080")
_TARGET_WORDS = {GPU: "GPUs", NODE: "nodes"}
SIGNAL_HELP: dict[str, str] = {**DERIVED_GPU_SIGNALS, **NODE_SIGNALS, **SOURCE_SIGNALS}

_Index = QModelIndex | QPersistentModelIndex


def duration_text(seconds: float) -> str:
    """Seconds as the shortest whole "90s", "2m", "1h", "1d" (what `parse_duration` reads back)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def conditions_text(conditions: Sequence[Condition]) -> str:
    return " and ".join(c.describe() for c in conditions)


def applies_to_text(rule: Rule) -> str:
    """"GPUs in the fleet", "nodes of site fra1", "the telemetry source"."""
    if rule.target not in _TARGET_WORDS:
        return "the telemetry source"
    subjects = _TARGET_WORDS[rule.target]
    if rule.scope.kind == "fleet":
        return f"{subjects} in the fleet"
    return f"{subjects} of {rule.scope.kind} {', '.join(rule.scope.values)}"


def keep_firing_text(rule: Rule) -> str:
    parts = []
    if rule.keep_firing_for_s:
        parts.append(f"{duration_text(rule.keep_firing_for_s)} after")
    if rule.clear:
        parts.append(f"until {conditions_text(rule.clear)}")
    return ", ".join(parts) or "—"


class RulesModel(QAbstractTableModel):
    """See the module docstring."""

    #: (rule name, enabled) the user asked for by ticking or unticking the Enabled box.
    enabledToggled = Signal(str, bool)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rules: tuple[Rule, ...] = ()
        self.editable = True

    def set_rules(self, rules: Sequence[Rule]) -> None:
        rules = tuple(rules)
        if rules == self._rules:
            return
        if [r.name for r in rules] == [r.name for r in self._rules]:
            self._rules = rules
            self.dataChanged.emit(self.index(0, 0), self.index(len(rules) - 1, len(RULE_COLUMNS) - 1))
            return
        self.beginResetModel()
        self._rules = rules
        self.endResetModel()

    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    def rule_at(self, index: _Index) -> Rule | None:
        return self._rules[index.row()] if index.isValid() and index.row() < len(self._rules) else None

    def row_of(self, name: str) -> int:
        """The row of the rule called `name`, or -1."""
        return next((i for i, r in enumerate(self._rules) if r.name == name), -1)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rules)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(RULE_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return RULE_COLUMNS[section]
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        flags = super().flags(index)
        if index.isValid() and index.column() == ENABLED_COLUMN and self.editable:
            flags |= Qt.ItemFlag.ItemIsUserCheckable
        return flags

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        rule = self.rule_at(index)
        if rule is None:
            return None
        column = index.column()
        if role == RULE_ROLE:
            return rule
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                rule.name, "yes" if rule.enabled else "no", rule.severity.label, applies_to_text(rule),
                conditions_text(rule.conditions), duration_text(rule.for_s) if rule.for_s else "at once",
                keep_firing_text(rule), rule_origin(rule),
            )[column]
        if role == Qt.ItemDataRole.CheckStateRole and column == ENABLED_COLUMN:
            return Qt.CheckState.Checked if rule.enabled else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.ForegroundRole:
            if not rule.enabled:
                return QBrush(_DISABLED)
            if column == RULE_COLUMNS.index("Severity"):
                return QBrush(SEVERITY_COLORS[rule.severity])
        if role == Qt.ItemDataRole.ToolTipRole:
            signals = sorted(rule.signals())
            return "\n".join([rule.summary, *(f"{s}: {SIGNAL_HELP[s]}" for s in signals if s in SIGNAL_HELP)])
        return None

    def setData(self, index: _Index, value: object, role: int = Qt.ItemDataRole.EditRole) -> bool:
        """Ticking the box asks the worker; nothing changes here until it answers."""
        rule = self.rule_at(index)
        if rule is None or role != Qt.ItemDataRole.CheckStateRole or index.column() != ENABLED_COLUMN or not self.editable:
            return False
        enabled = Qt.CheckState(value) == Qt.CheckState.Checked
        if enabled != rule.enabled:
            self.enabledToggled.emit(rule.name, enabled)
        return False

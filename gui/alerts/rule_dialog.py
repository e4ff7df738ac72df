"""The rule dialog (new, edit, duplicate): every field of a rule, checked as it is typed by the
core's own checks (`rule_from_dict`, `parse_duration`), so the dialog accepts exactly what an
imported rules file may say. OK stays disabled while a line says what is wrong; a preview shows
the summary and runbook rendered for an example GPU as the engine would render them.

The form is turned into the rules-file dict as typed (numbers that are not numbers stay text) so
that the core, not the dialog, words every complaint.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gpuops.core.alerts.model import Severity
from gpuops.core.alerts.preview import EXAMPLE_DESCRIPTION, preview_rule
from gpuops.core.alerts.rules import OPERATORS, SCOPE_KINDS, TEMPLATE_FIELDS, Condition, Rule, RuleError, rule_from_dict
from gpuops.core.alerts.signals import GPU, NODE, SOURCE, ref_names, signal_names
from gpuops.core.timefmt import BadTimeSpec, parse_duration
from gpuops.gui.alerts.dialogs import dialog_frame
from gpuops.gui.alerts.rules_model import SIGNAL_HELP, duration_text

TARGET_LABELS = {GPU: "GPUs", NODE: "nodes", SOURCE: "the telemetry source"}
FIXED, RELATIVE = "fixed value", "relative to"
NO_PREVIEW = "(the preview appears once the rule is valid)"
DEFAULT_CONDITION = Condition("temp_c", ">=", 85.0)


def _number(text: str) -> float | str:
    """A float, or the text itself for the core to refuse in words."""
    try:
        return float(text.strip())
    except ValueError:
        return text.strip()


def _set_items(combo: QComboBox, names: Collection[str], keep: str | None) -> None:
    """Fill `combo` with `names` (tooltips from the signal descriptions), keeping `keep` if it is one."""
    combo.blockSignals(True)
    combo.clear()
    for name in names:
        combo.addItem(name)
        if name in SIGNAL_HELP:
            combo.setItemData(combo.count() - 1, SIGNAL_HELP[name], Qt.ItemDataRole.ToolTipRole)
    if keep in names:
        combo.setCurrentText(keep)
    combo.blockSignals(False)


class ConditionRow(QWidget):
    """signal, comparator, then a fixed threshold or `ref × scale + offset`."""

    changed = Signal()
    removeRequested = Signal(object)

    def __init__(self, target: str, condition: Condition, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.signal_combo = QComboBox()
        self.op_combo = QComboBox()
        self.op_combo.addItems(OPERATORS)
        self.op_combo.setCurrentText(condition.op)
        self.mode_combo = QComboBox()
        self.mode_combo.addItems((FIXED, RELATIVE))
        self.mode_combo.setToolTip("Compare with a fixed number, or with a figure of each GPU (e.g. its slowdown temperature)")
        self.value_edit = QLineEdit()
        self.ref_combo = QComboBox()
        self.scale_edit = QLineEdit(f"{condition.scale:g}")
        self.scale_edit.setToolTip("The reference is multiplied by this (0.98: 98% of it)")
        self.offset_edit = QLineEdit()
        self.offset_edit.setToolTip("Added to the reference after scaling (-5: five below it)")
        relative = condition.ref is not None
        self.mode_combo.setCurrentText(RELATIVE if relative else FIXED)
        self.value_edit.setText("" if relative else f"{condition.value:g}")
        self.offset_edit.setText(f"{condition.value:g}" if relative else "0")
        self.times = QLabel("×")
        self.plus = QLabel("+")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove this condition")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.signal_combo, self.op_combo, self.mode_combo, self.value_edit, self.ref_combo, self.times,
                       self.scale_edit, self.plus, self.offset_edit, self.remove_button):
            layout.addWidget(widget)
        for edit in (self.value_edit, self.scale_edit, self.offset_edit):
            edit.setMaximumWidth(80)
        self.set_target(target, condition.signal, condition.ref)
        for combo in (self.signal_combo, self.op_combo, self.ref_combo):
            combo.currentIndexChanged.connect(lambda _: self.changed.emit())
        self.mode_combo.currentIndexChanged.connect(lambda _: self._mode_changed())
        for edit in (self.value_edit, self.scale_edit, self.offset_edit):
            edit.textChanged.connect(lambda _: self.changed.emit())
        self.remove_button.clicked.connect(lambda: self.removeRequested.emit(self))
        self._show_mode()

    def set_target(self, target: str, signal: str | None = None, ref: str | None = None) -> None:
        """Offer the signals and references of rules on `target`, keeping the chosen ones if they still apply."""
        _set_items(self.signal_combo, signal_names(target), signal or self.signal_combo.currentText())
        _set_items(self.ref_combo, ref_names(target), ref or self.ref_combo.currentText())

    def _mode_changed(self) -> None:
        self._show_mode()
        self.changed.emit()

    def _show_mode(self) -> None:
        relative = self.mode_combo.currentText() == RELATIVE
        self.value_edit.setVisible(not relative)
        for widget in (self.ref_combo, self.times, self.scale_edit, self.plus, self.offset_edit):
            widget.setVisible(relative)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"signal": self.signal_combo.currentText(), "op": self.op_combo.currentText()}
        if self.mode_combo.currentText() == RELATIVE:
            out.update(ref=self.ref_combo.currentText(), scale=_number(self.scale_edit.text()),
                       offset=_number(self.offset_edit.text()))
        else:
            out["value"] = _number(self.value_edit.text())
        return out


class ConditionList(QWidget):
    """Conditions that must all hold, with Add and Remove; `required`: at least one."""

    changed = Signal()

    def __init__(self, target: str, conditions: tuple[Condition, ...], *, required: bool, add_text: str) -> None:
        super().__init__()
        self.required = required
        self.target = target
        self.rows: list[ConditionRow] = []
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.add_button = QPushButton(add_text)
        self._layout.addWidget(self.add_button)
        self.add_button.clicked.connect(lambda: self.add())
        for condition in conditions:
            self.add(condition)

    def add(self, condition: Condition | None = None) -> ConditionRow:
        if condition is None:
            condition = DEFAULT_CONDITION if self.target == GPU else Condition(signal_names(self.target)[0], ">", 0.0)
        row = ConditionRow(self.target, condition)
        row.changed.connect(self.changed)
        row.removeRequested.connect(self._remove)
        self._layout.insertWidget(len(self.rows), row)
        self.rows.append(row)
        self._update_remove()
        self.changed.emit()
        return row

    def _remove(self, row: ConditionRow) -> None:
        self.rows.remove(row)
        row.setParent(None)
        row.deleteLater()
        self._update_remove()
        self.changed.emit()

    def _update_remove(self) -> None:
        for row in self.rows:
            row.remove_button.setEnabled(not self.required or len(self.rows) > 1)

    def set_target(self, target: str) -> None:
        self.target = target
        for row in self.rows:
            row.set_target(target)

    def dicts(self) -> list[dict[str, Any]]:
        return [row.to_dict() for row in self.rows]


class RuleDialog(QDialog):
    """See the module docstring. `replaces`: the stored rule this edits (None: a new rule);
    `taken`: names other rules use already."""

    def __init__(
        self, rule: Rule | None, *, title: str, taken: Collection[str], replaces: str | None = None,
        read_only: bool = False, parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        form, self.error, self.buttons = dialog_frame(
            self, title, "A rule fires for each GPU (node, or the source) where all its conditions hold."
        )
        self.replaces = replaces
        self.taken = frozenset(taken)
        self._rule: Rule | None = None
        rule = rule or Rule(name="", severity=Severity.WARNING, conditions=(DEFAULT_CONDITION,), summary="")

        self.name_edit = QLineEdit(rule.name)
        self.name_edit.setPlaceholderText("lower_case_with_underscores")
        self.enabled_check = QCheckBox("Evaluate this rule")
        self.enabled_check.setChecked(rule.enabled)
        self.target_combo = QComboBox()
        for target, label in TARGET_LABELS.items():
            self.target_combo.addItem(label, target)
        self.target_combo.setCurrentIndex(self.target_combo.findData(rule.target))
        self.scope_combo = QComboBox()
        self.scope_combo.addItems(SCOPE_KINDS)
        self.scope_combo.setCurrentText(rule.scope.kind)
        self.scope_combo.setToolTip("The whole fleet, or only the listed sites, nodes, GPU models or customers")
        self.scope_values = QLineEdit(", ".join(rule.scope.values))
        self.scope_values.setPlaceholderText("names, comma-separated")
        self.severity_combo = QComboBox()
        self.severity_combo.addItems([s.label for s in Severity])
        self.severity_combo.setCurrentText(rule.severity.label)
        self.conditions = ConditionList(rule.target, rule.conditions, required=True, add_text="Add condition (all must hold)")
        self.for_edit = QLineEdit(duration_text(rule.for_s))
        self.for_edit.setToolTip("How long the conditions must hold before it fires, e.g. 0, 90s, 2m, 1h")
        self.keep_edit = QLineEdit(duration_text(rule.keep_firing_for_s))
        self.keep_edit.setToolTip("Once firing, it resolves only after the conditions were false this long")
        self.clear = ConditionList(rule.target, rule.clear, required=False, add_text="Add clear condition")
        self.clear.setToolTip("Optional hysteresis: once firing, it resolves only when these hold too (e.g. 2 °C lower)")
        self.summary_edit = QLineEdit(rule.summary)
        self.runbook_edit = QPlainTextEdit(rule.runbook)
        self.runbook_edit.setFixedHeight(self.fontMetrics().lineSpacing() * 4)
        self.preview = QLabel()
        self.preview.setWordWrap(True)
        self.preview.setToolTip(f"Rendered for an example: {EXAMPLE_DESCRIPTION}")

        applies = QHBoxLayout()
        for widget in (self.target_combo, QLabel("scope"), self.scope_combo, self.scope_values):
            applies.addWidget(widget)
        durations = QHBoxLayout()
        for widget in (self.for_edit, QLabel("keep firing for"), self.keep_edit):
            durations.addWidget(widget)
        form.addRow("Name", self.name_edit)
        form.addRow("", self.enabled_check)
        form.addRow("Applies to", applies)
        form.addRow("Severity", self.severity_combo)
        form.addRow("Fires when", self.conditions)
        form.addRow("For", durations)
        form.addRow("Clears when", self.clear)
        form.addRow("Summary", self.summary_edit)
        form.addRow("Runbook", self.runbook_edit)
        form.addRow("Preview", self.preview)

        self.target_combo.currentIndexChanged.connect(lambda _: self._target_changed())
        self.scope_combo.currentIndexChanged.connect(lambda _: self._scope_changed())
        self.severity_combo.currentIndexChanged.connect(lambda _: self._validate())
        self.enabled_check.toggled.connect(lambda _: self._validate())
        for edit in (self.name_edit, self.scope_values, self.for_edit, self.keep_edit, self.summary_edit):
            edit.textChanged.connect(lambda _: self._validate())
        self.runbook_edit.textChanged.connect(self._validate)
        self.conditions.changed.connect(self._validate)
        self.clear.changed.connect(self._validate)
        self.scope_values.setEnabled(rule.scope.kind != "fleet")
        if read_only:
            for widget in self.findChildren(QWidget):
                if (
                    isinstance(widget, (QLineEdit, QComboBox, QCheckBox, QPushButton, QPlainTextEdit))
                    and widget.parent() is not self.buttons
                ):
                    widget.setEnabled(False)
            self.buttons.button(QDialogButtonBox.StandardButton.Ok).hide()
        self._edited = False  # no complaint before the first edit (OK stays disabled meanwhile)
        self._target_changed()
        self._edited = True

    # --- the form as a rule ------------------------------------------------------------------

    @property
    def target(self) -> str:
        return self.target_combo.currentData()

    def _target_changed(self) -> None:
        target = self.target
        self.conditions.set_target(target)
        self.clear.set_target(target)
        fields = ", ".join(f"{{{name}}}" for name in TEMPLATE_FIELDS[target])
        tip = f"A Python format template; placeholders: {fields}. Formats work too, e.g. {{value:.0f}}."
        self.summary_edit.setToolTip(tip)
        self.runbook_edit.setToolTip(tip)
        self._validate()

    def _scope_changed(self) -> None:
        self.scope_values.setEnabled(self.scope_combo.currentText() != "fleet")
        self._validate()

    def rule_dict(self) -> dict[str, Any]:
        """The form in the rules-file form (durations in seconds once `parse_duration` read them)."""
        kind = self.scope_combo.currentText()
        scope: dict[str, Any] = {"kind": kind}
        if kind != "fleet":
            scope["values"] = [v.strip() for v in self.scope_values.text().split(",") if v.strip()]
        out: dict[str, Any] = {
            "name": self.name_edit.text().strip(), "enabled": self.enabled_check.isChecked(), "target": self.target,
            "severity": self.severity_combo.currentText(), "conditions": self.conditions.dicts(),
            "for_s": _seconds(self.for_edit.text()), "keep_firing_for_s": _seconds(self.keep_edit.text()),
            "scope": scope, "summary": self.summary_edit.text(), "runbook": self.runbook_edit.toPlainText(),
        }
        clear = self.clear.dicts()
        if clear:
            out["clear"] = clear
        return out

    def problem(self) -> str | None:
        """Everything wrong with the form, one problem per line; None when it can be saved."""
        try:
            for label, edit in (("For", self.for_edit), ("Keep firing for", self.keep_edit)):
                try:
                    _checked_seconds(edit.text())
                except BadTimeSpec as exc:
                    raise BadTimeSpec(f"{label}: {exc}") from None
            rule = rule_from_dict(self.rule_dict(), "rule")
        except (BadTimeSpec, RuleError) as exc:
            self._rule = None
            return str(exc)
        self._rule = rule
        if rule.name in self.taken:
            return f"a rule named {rule.name!r} exists already; choose another name"
        return None

    def rule(self) -> Rule:
        """The checked rule (only when OK is enabled)."""
        if self._rule is None:
            raise RuleError(self.problem() or "the rule is not valid")
        return self._rule

    def _validate(self) -> None:
        problem = self.problem()
        self.error.setText((problem or "") if self._edited else "")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(problem is None)
        if self._rule is None:
            self.preview.setText(NO_PREVIEW)
        else:
            shown = preview_rule(self._rule)
            self.preview.setText(f"{shown.summary}\n{shown.runbook}".strip())


def _checked_seconds(text: str) -> float:
    """Seconds of "0", "90", "90s", "2m", "1h"; BadTimeSpec (its words) otherwise."""
    text = text.strip()
    if not text:
        return 0.0
    try:
        return float(text)
    except ValueError:
        return parse_duration(text)


def _seconds(text: str) -> float | str:
    """Like `_checked_seconds`, but bad text stays text (the problem is reported from `_checked_seconds`)."""
    try:
        return _checked_seconds(text)
    except BadTimeSpec:
        return text


def free_name(name: str, taken: Collection[str]) -> str:
    """`name_copy`, `name_copy2`, … whichever is not taken (and still a valid rule name)."""
    base = f"{name[:55]}_copy"
    candidate, i = base, 1
    while candidate in taken:
        i += 1
        candidate = f"{base}{i}"
    return candidate

"""Acknowledge and Silence dialogs: they check what is typed as it is typed (OK stays disabled
and a line says what is wrong), and hand back plain values; the alert worker does the writing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from PySide6.QtCore import QDateTime
from PySide6.QtWidgets import (
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from gpuops.core.alerts.model import Alert
from gpuops.core.alerts.silences import MATCHER_LABELS, Matcher, Silence, SilenceError
from gpuops.core.allocations.audit import os_user

NOTE_MAX_CHARS = 500
ERROR_STYLE = "color: #b00020;"
#: Wide enough for a note of a sentence or two and an alert summary without squeezing either.
DIALOG_MIN_WIDTH = 560
#: Silence lengths offered in one click: label -> seconds ("Custom" leaves the end as typed).
SILENCE_PRESETS: dict[str, int] = {
    "15 min": 15 * 60, "1 h": 3600, "2 h": 2 * 3600, "4 h": 4 * 3600, "8 h (until end of shift)": 8 * 3600,
}
CUSTOM_PRESET = "Custom end"


def dialog_frame(dialog: QDialog, title: str, about: str) -> tuple[QFormLayout, QLabel, QDialogButtonBox]:
    dialog.setWindowTitle(title)
    dialog.setMinimumWidth(DIALOG_MIN_WIDTH)
    layout = QVBoxLayout(dialog)
    heading = QLabel(about)
    heading.setWordWrap(True)
    layout.addWidget(heading)
    form = QFormLayout()
    layout.addLayout(form)
    error = QLabel()
    error.setStyleSheet(ERROR_STYLE)
    error.setWordWrap(True)
    layout.addWidget(error)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    return form, error, buttons


class AcknowledgeDialog(QDialog):
    """Who (the OS user, shown, not editable) acknowledges `alert`, and a note saying why."""

    def __init__(self, alert: Alert, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form, self.error, self.buttons = dialog_frame(self, f"Acknowledge alert {alert.id}", alert.summary)
        self.alert = alert
        self.user = QLabel(os_user())
        self.note_edit = QLineEdit()
        self.note_edit.setPlaceholderText("What is being done, e.g. 'RMA opened, ticket 4711'")
        form.addRow("Acknowledged by", self.user)
        form.addRow("Note", self.note_edit)
        self.note_edit.textChanged.connect(self._validate)
        self._validate()

    def problem(self) -> str | None:
        note = self.note_edit.text().strip()
        if not note:
            return "Say what is being done about it (the next shift reads this note)."
        if len(note) > NOTE_MAX_CHARS:
            return f"The note is {len(note)} characters long; keep it under {NOTE_MAX_CHARS}."
        return None

    @property
    def note(self) -> str:
        return self.note_edit.text().strip()

    def _validate(self) -> None:
        problem = self.problem()
        self.error.setText(problem or "")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(problem is None)


@dataclass(frozen=True)
class SilenceRequest:
    matchers: tuple[str, ...]
    starts_at: float
    ends_at: float
    comment: str


class Silenceable(Protocol):
    """What a silence is prefilled from: gpuops' `Alert` or Alertmanager's `AmAlert`."""

    @property
    def rule(self) -> str: ...
    @property
    def gpu_uuid(self) -> str | None: ...
    @property
    def node(self) -> str | None: ...
    @property
    def summary(self) -> str: ...


def prefilled_matchers(alert: Silenceable) -> list[str]:
    """Matchers for exactly this kind of alert on this subject: its rule, and its GPU or node."""
    matchers = [f"rule={alert.rule}"]
    if alert.gpu_uuid is not None:
        matchers.append(f"gpu={alert.gpu_uuid}")
    elif alert.node is not None:
        matchers.append(f"node={alert.node}")
    return matchers


class SilenceDialog(QDialog):
    """Matchers (one per line, prefilled from the alert), start, end and a comment."""

    DEFAULT_S = 2 * 3600

    def __init__(self, alert: Silenceable | None, parent: QWidget | None = None, *, now: float | None = None) -> None:
        super().__init__(parent)
        about = f"Mute alerts like: {alert.summary}" if alert is not None else "Mute the alerts matching every line below."
        form, self.error, self.buttons = dialog_frame(self, "Silence alerts", about)
        now = time.time() if now is None else now
        self.matchers_edit = QPlainTextEdit("\n".join(prefilled_matchers(alert)) if alert is not None else "")
        self.matchers_edit.setToolTip(
            f"One matcher per line: label=value, label!=value, label=~regex, label!~regex. Labels: {', '.join(MATCHER_LABELS)}"
        )
        self.matchers_edit.setFixedHeight(self.fontMetrics().lineSpacing() * 5)
        self.start_edit = QDateTimeEdit(QDateTime.fromSecsSinceEpoch(int(now)))
        self.end_edit = QDateTimeEdit(QDateTime.fromSecsSinceEpoch(int(now + self.DEFAULT_S)))
        for edit in (self.start_edit, self.end_edit):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd HH:mm")
        self.preset_combo = QComboBox()
        self.preset_combo.addItems([*SILENCE_PRESETS, CUSTOM_PRESET])
        self.preset_combo.setCurrentText(next(k for k, v in SILENCE_PRESETS.items() if v == self.DEFAULT_S))
        self.preset_combo.setToolTip("How long from the start; choosing an end yourself makes it a custom end")
        self.comment_edit = QLineEdit()
        self.comment_edit.setPlaceholderText("Why, e.g. 'firmware update on this node'")
        form.addRow("Matchers", self.matchers_edit)
        form.addRow("Starts", self.start_edit)
        form.addRow("For", self.preset_combo)
        form.addRow("Ends", self.end_edit)
        form.addRow("Comment", self.comment_edit)
        form.addRow("Author", QLabel(os_user()))
        self.matchers_edit.textChanged.connect(self._validate)
        self.start_edit.dateTimeChanged.connect(lambda _: self._apply_preset())
        self.preset_combo.currentTextChanged.connect(lambda _: self._apply_preset())
        self.end_edit.dateTimeChanged.connect(lambda _: self._end_edited())
        self.comment_edit.textChanged.connect(self._validate)
        self._setting_end = False
        self._validate()

    def _apply_preset(self) -> None:
        """A preset keeps the end that long after the start (moving the start moves the end)."""
        seconds = SILENCE_PRESETS.get(self.preset_combo.currentText())
        if seconds is not None:
            self._setting_end = True
            try:
                self.end_edit.setDateTime(self.start_edit.dateTime().addSecs(seconds))
            finally:
                self._setting_end = False
        self._validate()

    def _end_edited(self) -> None:
        if not self._setting_end:
            self.preset_combo.blockSignals(True)
            self.preset_combo.setCurrentText(CUSTOM_PRESET)
            self.preset_combo.blockSignals(False)
        self._validate()

    def _lines(self) -> list[str]:
        return [line.strip() for line in self.matchers_edit.toPlainText().splitlines() if line.strip()]

    def problem(self) -> str | None:
        """The first thing wrong with the form, in words; None when it can be saved."""
        try:
            matchers = tuple(Matcher.parse(line) for line in self._lines())
            Silence(0, matchers, self._starts_at(), self._ends_at(), os_user(), "", 0.0)
        except SilenceError as exc:
            return str(exc)
        if not self.comment_edit.text().strip():
            return "Say why (the comment is shown with every muted alert)."
        return None

    def _starts_at(self) -> float:
        return float(self.start_edit.dateTime().toSecsSinceEpoch())

    def _ends_at(self) -> float:
        return float(self.end_edit.dateTime().toSecsSinceEpoch())

    def request(self) -> SilenceRequest:
        return SilenceRequest(tuple(self._lines()), self._starts_at(), self._ends_at(), self.comment_edit.text().strip())

    def _validate(self) -> None:
        problem = self.problem()
        self.error.setText(problem or "")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(problem is None)

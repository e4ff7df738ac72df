"""Acknowledge and Silence dialogs: they check what is typed as it is typed (OK stays disabled
and a line says what is wrong), and hand back plain values; the alert worker does the writing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from PySide6.QtCore import QDateTime
from PySide6.QtWidgets import (
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


def dialog_frame(dialog: QDialog, title: str, about: str) -> tuple[QFormLayout, QLabel, QDialogButtonBox]:
    dialog.setWindowTitle(title)
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
        self.comment_edit = QLineEdit()
        self.comment_edit.setPlaceholderText("Why, e.g. 'firmware update on node07'")
        form.addRow("Matchers", self.matchers_edit)
        form.addRow("Starts", self.start_edit)
        form.addRow("Ends", self.end_edit)
        form.addRow("Comment", self.comment_edit)
        form.addRow("Author", QLabel(os_user()))
        self.matchers_edit.textChanged.connect(self._validate)
        self.start_edit.dateTimeChanged.connect(self._validate)
        self.end_edit.dateTimeChanged.connect(self._validate)
        self.comment_edit.textChanged.connect(self._validate)
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

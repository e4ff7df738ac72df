"""The time-range picker of the history plots: Live, 15 m … 30 d, or a custom range."""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QDateTime, Signal
from PySide6.QtWidgets import QButtonGroup, QDateTimeEdit, QHBoxLayout, QPushButton, QToolButton, QWidget

#: Preset ranges: label -> seconds (None is live: the in-memory minutes, updated every poll).
PRESETS: dict[str, float | None] = {
    "Live": None,
    "15 m": 15 * 60.0,
    "1 h": 3600.0,
    "6 h": 6 * 3600.0,
    "24 h": 86400.0,
    "7 d": 7 * 86400.0,
    "30 d": 30 * 86400.0,
}
CUSTOM = "Custom"


@dataclass(frozen=True)
class TimeRange:
    """Live, or [start, end) in UTC epoch seconds; `span_s` for presets that follow now."""

    label: str
    start: float | None = None
    end: float | None = None
    span_s: float | None = None

    @property
    def live(self) -> bool:
        return self.start is None

    def resolved(self, now: float | None = None) -> tuple[float, float]:
        """(start, end) now: presets end at `now`, custom ranges are fixed."""
        if self.span_s is not None:
            end = time.time() if now is None else now
            return end - self.span_s, end
        if self.start is None or self.end is None:
            raise ValueError("a live range has no fixed start and end")
        return self.start, self.end


def preset(label: str) -> TimeRange:
    span = PRESETS[label]
    return TimeRange(label) if span is None else TimeRange(label, start=0.0, span_s=span)


class TimeRangePicker(QWidget):
    """A row of toggle buttons and, for Custom, two date-time fields (local time) and Apply."""

    rangeChanged = Signal(object)  # TimeRange
    #: Custom was chosen: the owner may offer the fields a better start (`offer_custom`).
    customOpened = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.buttons: dict[str, QToolButton] = {}
        self._group = QButtonGroup(self)
        for label in (*PRESETS, CUSTOM):
            button = QToolButton()
            button.setText(label)
            button.setCheckable(True)
            button.setAutoRaise(True)
            button.setToolTip(
                "The last minutes kept in memory, updated every poll" if label == "Live"
                else "Choose start and end below, then Apply" if label == CUSTOM
                else f"The last {label} from the history database"
            )
            self._group.addButton(button)
            layout.addWidget(button)
            self.buttons[label] = button
            button.clicked.connect(lambda _=False, chosen=label: self._chosen(chosen))
        now = QDateTime.currentDateTime()
        self.start_edit = QDateTimeEdit(now.addSecs(-3600))
        self.end_edit = QDateTimeEdit(now)
        for edit, words in ((self.start_edit, "Start"), (self.end_edit, "End")):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd HH:mm")
            edit.setToolTip(f"{words} of the custom range, local time")
            edit.setVisible(False)
            layout.addWidget(edit)
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Show the custom range")
        self.apply_button.setVisible(False)
        self.apply_button.clicked.connect(self._apply_custom)
        layout.addWidget(self.apply_button)
        layout.addStretch(1)
        self.buttons["Live"].setChecked(True)
        self._range = preset("Live")

    @property
    def current(self) -> TimeRange:
        return self._range

    def choose(self, label: str) -> None:
        """Pick a preset (or "Custom", which shows the fields) as if clicked."""
        self.buttons[label].setChecked(True)
        self._chosen(label)

    def set_custom(self, start: float, end: float) -> None:
        """Show [start, end) (epoch seconds), as the custom range."""
        self.buttons[CUSTOM].setChecked(True)
        self.start_edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(start)))
        self.end_edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(end)))
        self._show_custom(True)
        self._set(TimeRange(CUSTOM, start=float(start), end=float(end)))

    def offer_custom(self, start: float, end: float) -> None:
        """Put [start, end) in the custom fields (the last recorded hour, when the history ended
        before now), unless a custom range is already shown: that one is the user's."""
        if self._range.label == CUSTOM:
            return
        self.start_edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(start)))
        self.end_edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(end)))

    def _chosen(self, label: str) -> None:
        self._show_custom(label == CUSTOM)
        if label != CUSTOM:
            self._set(preset(label))
        else:
            self.customOpened.emit()

    def _show_custom(self, visible: bool) -> None:
        for widget in (self.start_edit, self.end_edit, self.apply_button):
            widget.setVisible(visible)

    def _apply_custom(self) -> None:
        start = self.start_edit.dateTime().toSecsSinceEpoch()
        end = self.end_edit.dateTime().toSecsSinceEpoch()
        if end <= start:
            self.end_edit.setToolTip("The end must be after the start")
            self.end_edit.setStyleSheet("color: #b00020;")
            return
        self.end_edit.setStyleSheet("")
        self._set(TimeRange(CUSTOM, start=float(start), end=float(end)))

    def _set(self, chosen: TimeRange) -> None:
        self._range = chosen
        self.rangeChanged.emit(chosen)

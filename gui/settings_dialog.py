"""File → Settings: where the console reads from and how it shows things. Saved per user
(see `gui.settings_store`); the source, poll interval and history file apply the next time
gpuops starts, and the dialog says so."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.sources.factory import SOURCE_HELP
from core.timespec import BadTimeSpec, parse_duration
from gui.settings_store import UNIT_SYSTEMS, Preferences

RESTART_NOTE = (
    "Source, poll interval and history file apply the next time gpuops starts. "
    "Retention and units are saved for the history writer and the displays, which do not read them yet."
)


class SettingsDialog(QDialog):
    """Edits a `Preferences`; `preferences()` gives the result once accepted."""

    def __init__(self, current: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("gpuops settings")
        self._theme = current.theme
        self.source = QLineEdit(current.source or "")
        self.source.setPlaceholderText("auto")
        self.source.setToolTip(SOURCE_HELP)
        self.interval = QDoubleSpinBox()
        self.interval.setRange(0.1, 3600.0)
        self.interval.setDecimals(1)
        self.interval.setSuffix(" s")
        self.interval.setValue(current.interval_s)
        self.db_path = QLineEdit(current.db_path or "")
        self.db_path.setPlaceholderText("default (in the user data directory)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        db_row = QHBoxLayout()
        db_row.addWidget(self.db_path, 1)
        db_row.addWidget(browse)
        self.keep_raw = QLineEdit(current.keep_raw)
        self.keep_raw.setToolTip("How long every poll is kept before only 1-minute rollups remain: 48h, 7d, …")
        self.units = QComboBox()
        self.units.addItems(UNIT_SYSTEMS)
        self.units.setCurrentText(current.units)
        self.problem = QLabel()
        self.problem.setStyleSheet("color: #a00000;")

        form = QFormLayout()
        form.addRow("Telemetry source:", self.source)
        form.addRow("Poll interval:", self.interval)
        form.addRow("History file:", db_row)
        form.addRow("Keep every poll for:", self.keep_raw)
        form.addRow("Units:", self.units)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept_if_valid)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        note = QLabel(RESTART_NOTE)
        note.setWordWrap(True)
        layout.addWidget(note)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "History file", self.db_path.text(), "SQLite history (*.sqlite);;All files (*)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if path:
            self.db_path.setText(path)

    def problems(self) -> list[str]:
        try:
            parse_duration(self.keep_raw.text().strip())
        except BadTimeSpec as exc:
            return [f"Keep every poll for: {exc}"]
        return []

    def _accept_if_valid(self) -> None:
        problems = self.problems()
        self.problem.setText("\n".join(problems))
        if not problems:
            self.accept()

    def preferences(self) -> Preferences:
        return Preferences(
            source=self.source.text().strip() or None,
            interval_s=self.interval.value(),
            db_path=self.db_path.text().strip() or None,
            keep_raw=self.keep_raw.text().strip(),
            units=self.units.currentText(),
            theme=self._theme,
        )

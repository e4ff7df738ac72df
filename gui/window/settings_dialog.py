"""File → Settings: where the console reads from, how long its history is kept, and how it shows
things. Saved per user (see `gui.settings_store`); the source, poll interval, history file and
retention apply the next time gpuops starts, units and theme at once, and the dialog says so."""

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

from gpuops.core.history_retention import retention_policy
from gpuops.core.sources.factory import SOURCE_HELP
from gpuops.core.units import MEMORY_UNITS, TEMPERATURE_UNITS
from gpuops.gui.app.settings_store import THEMES, Preferences

RESTART_NOTE = (
    "Source, poll interval, history file and retention apply the next time gpuops starts "
    "(retention: when this console writes the history; a running gpuops collect keeps its own --keep-*). "
    "Units and theme apply at once."
)
UNITS_NOTE = "Units change only what you read: exports (CSV, JSON) and the history always hold °C and bytes."
_TEMPERATURE_LABELS = {"C": "°C (Celsius)", "F": "°F (Fahrenheit)"}
_MEMORY_LABELS = {"binary": "GiB (binary, 1024³, as nvidia-smi)", "decimal": "GB (decimal, 1000³)"}
_THEME_LABELS = {"system": "System (follow the desktop)", "light": "Light", "dark": "Dark"}


def _choices(labels: dict[str, str], keys: tuple[str, ...], current: str) -> QComboBox:
    combo = QComboBox()
    for key in keys:
        combo.addItem(labels[key], key)
    combo.setCurrentIndex(keys.index(current))
    return combo


class SettingsDialog(QDialog):
    """Edits a `Preferences`; `preferences()` gives the result once accepted."""

    def __init__(self, current: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("gpuops settings")
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
        self.keep_1m = QLineEdit(current.keep_1m)
        self.keep_1m.setToolTip("How long 1-minute rollups are kept before only 1-hour rollups remain: 90d, …")
        self.keep_1h = QLineEdit(current.keep_1h)
        self.keep_1h.setToolTip("How long 1-hour rollups are kept: 3y, …")
        self.temperature = _choices(_TEMPERATURE_LABELS, TEMPERATURE_UNITS, current.temperature_unit)
        self.memory = _choices(_MEMORY_LABELS, MEMORY_UNITS, current.memory_units)
        self.theme = _choices(_THEME_LABELS, THEMES, current.theme)
        self.problem = QLabel()
        self.problem.setStyleSheet("color: #a00000;")

        form = QFormLayout()
        form.addRow("Telemetry source:", self.source)
        form.addRow("Poll interval:", self.interval)
        form.addRow("History file:", db_row)
        form.addRow("Keep every poll for:", self.keep_raw)
        form.addRow("Keep 1-minute rollups for:", self.keep_1m)
        form.addRow("Keep 1-hour rollups for:", self.keep_1h)
        form.addRow("Temperatures in:", self.temperature)
        form.addRow("Memory in:", self.memory)
        units_note = QLabel(UNITS_NOTE)
        units_note.setWordWrap(True)
        form.addRow("", units_note)
        form.addRow("Theme:", self.theme)
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
            retention_policy(self.keep_raw.text().strip(), self.keep_1m.text().strip(), self.keep_1h.text().strip())
        except ValueError as exc:  # BadTimeSpec included: a duration that does not parse
            return [f"Retention: {exc}"]
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
            keep_1m=self.keep_1m.text().strip(),
            keep_1h=self.keep_1h.text().strip(),
            temperature_unit=self.temperature.currentData(),
            memory_units=self.memory.currentData(),
            theme=self.theme.currentData(),
        )

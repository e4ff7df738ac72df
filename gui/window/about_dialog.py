"""Help → About: what this console is built from, for bug reports and support calls."""

from __future__ import annotations

import platform

import pyqtgraph
import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout, QWidget

from gpuops import __version__
from gpuops.core.telemetry import FleetSample

NOT_KNOWN = "not known (no GPU read yet)"


def _first_known(sample: FleetSample | None, field: str) -> str | None:
    if sample is None:
        return None
    return next((value for gpu in sample.gpus if (value := getattr(gpu, field))), None)


def version_rows(sample: FleetSample | None, source_name: str | None = None) -> list[tuple[str, str]]:
    """(component, version) pairs; driver and NVML come from the source's inventory, and the
    telemetry source closes the list when it is known."""
    rows = [
        ("gpuops", __version__),
        ("Python", platform.python_version()),
        ("Qt", qVersion()),
        ("PySide6", PySide6.__version__),
        ("pyqtgraph", pyqtgraph.__version__),
        ("NVIDIA driver", _first_known(sample, "driver_version") or NOT_KNOWN),
        ("NVML", _first_known(sample, "nvml_version") or NOT_KNOWN),
        ("CUDA (driver)", _first_known(sample, "cuda_version") or NOT_KNOWN),
    ]
    return rows + [("Telemetry source", source_name)] if source_name else rows


class AboutDialog(QDialog):
    def __init__(self, sample: FleetSample | None, source_name: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About gpuops")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>gpuops</b> — operations console for a GPU cloud"))
        form = QFormLayout()
        self.rows = version_rows(sample, source_name)
        for name, value in self.rows:
            label = QLabel(value)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(f"{name}:", label)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

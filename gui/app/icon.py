"""The gpuops icon for windows and the taskbar, from the shipped SVG and its rendered sizes."""

from __future__ import annotations

from PySide6.QtGui import QIcon

from gpuops.core.desktop_integration import ICON_SIZES
from gpuops.resources import resource_path


def app_icon() -> QIcon:
    """Every rendered size (crisp at small sizes), plus the SVG for anything larger."""
    icon = QIcon()
    for size in ICON_SIZES:
        icon.addFile(str(resource_path(f"icons/gpuops-{size}.png")))
    icon.addFile(str(resource_path("icons/gpuops.svg")))
    return icon

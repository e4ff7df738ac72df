"""Regenerate resources/icons/gpuops-<size>.png from gpuops.svg (run after editing the SVG).

The PNGs are committed because the hicolor icon theme wants fixed sizes and desktop
environments differ in how well they scale SVG.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtGui, QtSvg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gpuops.core.desktop_integration import ICON_SIZES

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"


def main() -> int:
    _app = QtGui.QGuiApplication([])  # kept alive: QPainter needs a GUI application
    renderer = QtSvg.QSvgRenderer(str(ICONS / "gpuops.svg"))
    if not renderer.isValid():
        print("gpuops.svg does not parse", file=sys.stderr)
        return 1
    for size in ICON_SIZES:
        image = QtGui.QImage(size, size, QtGui.QImage.Format.Format_ARGB32)
        image.fill(0)
        painter = QtGui.QPainter(image)
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        image.save(str(ICONS / f"gpuops-{size}.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

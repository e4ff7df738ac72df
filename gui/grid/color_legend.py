"""The key to the fleet grid's colours: the value scale with its unit, and the reserved colours."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from gpuops.gui.common import palette
from gpuops.gui.grid.metrics import GridMetric

_BAR_WIDTH = 160
#: The colour bar shrinks to this before the window has to grow (a 1366-px laptop screen).
_MIN_BAR_WIDTH = 48
_SWATCH = 12
_GAP = 6


def _qcolor(rgba: np.ndarray) -> QColor:
    return QColor(int(rgba[0]), int(rgba[1]), int(rgba[2]), int(rgba[3]))


class ColorLegend(QWidget):
    """Paints "0 % [viridis bar] 100 %   ■ no data  ■ lost  ■ stale" for the current metric, or
    "■ ok ■ warning ■ critical ■ stale ■ lost" when the grid is coloured by health. Short of room,
    the bar narrows and the swatches that do not fit are left out (the tooltip still names them)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._low_text = ""
        self._high_text = ""
        self._health = False
        self._cmap = palette.COLOR_MAP_NAME
        self._metric: GridMetric | None = None
        self._categories: tuple[tuple[str, QColor], ...] | None = None
        self._set_colors()
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def _set_colors(self) -> None:
        colors = palette.value_colors(self._cmap)
        self._gradient_stops = [(i / (len(colors) - 1), _qcolor(c)) for i, c in enumerate(colors)]
        if self._categories is not None:
            self._swatches = self._categories
        elif self._health:
            rgb = palette.HEALTH_RGB
            self._swatches = (
                ("ok", QColor(*rgb[palette.HEALTH_OK])),
                ("warning", QColor(*rgb[palette.HEALTH_WARNING])),
                ("critical", QColor(*rgb[palette.HEALTH_CRITICAL])),
                ("stale", QColor(*rgb[palette.HEALTH_STALE])),
                ("unknown", QColor(*palette.NO_DATA_RGB)),
                ("lost", QColor(*palette.LOST_RGB)),
            )
        else:
            mid = colors[len(colors) // 2]
            self._swatches = (
                ("no data", QColor(*palette.NO_DATA_RGB)),
                ("lost", QColor(*palette.LOST_RGB)),
                ("stale", _qcolor(palette.washed_out(mid))),
            )

    def set_metric(self, metric: GridMetric) -> None:
        self._health = False
        self._categories = None
        self._metric = metric
        self._low_text = f"{metric.low:g} {metric.unit}"
        self._high_text = f"{metric.high:g} {metric.unit}"
        self.setToolTip(f"{metric.label}: {self._low_text} to {self._high_text} ({self._cmap} colour map)")
        self._changed()

    def set_health(self) -> None:
        self._health = True
        self._categories = None
        self._low_text = self._high_text = ""
        self.setToolTip(
            "Health: ok, warning, critical (from the health model's findings), stale (no fresh data for "
            "3 polls), lost (an X marks it too)"
        )
        self._changed()

    def set_categories(self, swatches: tuple[tuple[str, QColor], ...], tooltip: str) -> None:
        """One swatch per category (e.g. per customer), no value scale."""
        self._health = True  # no bar, as for health
        self._categories = swatches
        self._low_text = self._high_text = ""
        self.setToolTip(tooltip)
        self._changed()

    def set_colormap(self, name: str) -> None:
        self._cmap = name
        if self._metric is not None and not self._health:
            self.set_metric(self._metric)
        else:
            self._changed()

    def _changed(self) -> None:
        self._set_colors()
        self.updateGeometry()
        self.update()

    def _text_width(self, text: str) -> int:
        return self.fontMetrics().horizontalAdvance(text)

    def _scale_width(self, bar_width: int) -> int:
        if self._health:
            return 0
        return self._text_width(self._low_text) + self._text_width(self._high_text) + bar_width + 4 * _GAP

    def _swatch_width(self, label: str) -> int:
        return _SWATCH + _GAP + self._text_width(label) + 2 * _GAP

    def sizeHint(self) -> QSize:
        swatches = sum(self._swatch_width(label) for label, _ in self._swatches)
        return QSize(self._scale_width(_BAR_WIDTH) + swatches, self.fontMetrics().height() + 6)

    def minimumSizeHint(self) -> QSize:
        """The value scale with a short bar, or the first swatch: a long list of customers must not
        widen the window."""
        first = self._swatch_width(self._swatches[0][0]) if self._health and self._swatches else 0
        return QSize(self._scale_width(_MIN_BAR_WIDTH) + first, self.fontMetrics().height() + 6)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        height = self.height()
        bar_height = min(_SWATCH, height - 2)
        top = (height - bar_height) / 2
        x = 0.0
        shortfall = max(0, self.sizeHint().width() - self.width())
        bar_width = max(_MIN_BAR_WIDTH, _BAR_WIDTH - shortfall)
        text_flags = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft

        def text(label: str) -> None:
            nonlocal x
            width = self._text_width(label)
            painter.drawText(QRectF(x, 0, width + 1, height), text_flags, label)
            x += width + _GAP

        if not self._health:
            text(self._low_text)
            gradient = QLinearGradient(x, 0, x + bar_width, 0)
            for position, color in self._gradient_stops:
                gradient.setColorAt(position, color)
            painter.fillRect(QRectF(x, top, bar_width, bar_height), gradient)
            x += bar_width + _GAP
            text(self._high_text)
        for label, color in self._swatches:
            if x + self._swatch_width(label) > self.width():
                break
            x += _GAP
            swatch = QRectF(x, top, _SWATCH, bar_height)
            painter.fillRect(swatch, color)
            if label == "lost":  # the grid marks lost GPUs with an X as well as the colour
                cross = swatch.adjusted(2, 2, -2, -2)
                pen = painter.pen()
                painter.setPen(QPen(QColor(255, 255, 255), 1.5))
                painter.drawLine(cross.topLeft(), cross.bottomRight())
                painter.drawLine(cross.bottomLeft(), cross.topRight())
                painter.setPen(pen)
            x += _SWATCH + _GAP
            text(label)
        painter.end()

"""The grid's left axis: node names (or group names with their GPU counts) by row, and on hover
the full text of the row under the mouse, since the axis is capped in width and long group names
(a customer, a model, a site) are cut there."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtWidgets import QToolTip


class RowAxis(pg.AxisItem):
    def __init__(self) -> None:
        super().__init__(orientation="left")
        self.setAcceptHoverEvents(True)
        self._rows: dict[int, str] = {}

    def set_row_texts(self, rows: dict[int, str]) -> None:
        """Full text of each labelled row (grid row -> text) for the hover."""
        self._rows = rows

    def text_at_scene_y(self, scene_y: float) -> str | None:
        view = self.linkedView()
        if view is None:
            return None
        y = view.mapSceneToView(pg.Point(0.0, scene_y)).y()
        return self._rows.get(math.floor(y)) if math.isfinite(y) else None

    def hoverEvent(self, event) -> None:  # pyqtgraph's hover, not Qt's
        text = None if event.isExit() else self.text_at_scene_y(event.scenePos().y())
        if text:
            QToolTip.showText(event.screenPos().toPoint(), text)
        else:
            QToolTip.hideText()

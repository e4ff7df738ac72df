"""The fleet's headline numbers: how many GPUs, how many in each condition, how busy, how much
power. The condition tiles speak the one health vocabulary (`core.condition`) the grid, its
filter and the exports use, and clicking one filters the grid to those GPUs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from gpuops.core.condition import Condition, count_conditions
from gpuops.core.telemetry import FleetSample, GpuState
from gpuops.core.units import format_optional


@dataclass(frozen=True)
class FleetKpis:
    """Counts, and aggregates over the GPUs that answer (None when none reports the value).
    `conditions`: GPUs per condition, each GPU in exactly one. `answering`, `lost` and `unknown`
    count GPU states, as the fleet history records them for the trends."""

    total: int
    conditions: Mapping[Condition, int]
    answering: int
    lost: int
    unknown: int
    util_mean_pct: float | None
    power_total_w: float | None


def fleet_kpis(sample: FleetSample, condition: np.ndarray) -> FleetKpis:
    """The headline numbers of `sample`, whose GPUs are in `condition` (`core.condition.conditions`)."""
    ok = sample.state == GpuState.OK
    util = sample.metrics["util_gpu_pct"][ok]
    util = util[np.isfinite(util)]
    power = sample.metrics["power_w"][ok]
    power = power[np.isfinite(power)]
    return FleetKpis(
        total=len(sample),
        conditions=count_conditions(condition),
        answering=int(np.count_nonzero(ok)),
        lost=int(np.count_nonzero(sample.state == GpuState.LOST)),
        unknown=int(np.count_nonzero(sample.state == GpuState.UNKNOWN)),
        util_mean_pct=float(util.mean()) if util.size else None,
        power_total_w=float(power.sum()) if power.size else None,
    )


#: Condition tiles, in the order an operator reads them, with what each means.
_CONDITION_TILES: tuple[tuple[Condition, str], ...] = (
    (Condition.OK, "GPUs with nothing to report"),
    (Condition.WARNING, "GPUs with a warning finding (near slowdown, row remap pending, ...)"),
    (Condition.CRITICAL, "GPUs with a critical finding (uncorrectable ECC, at slowdown, fatal XID, ...)"),
    (Condition.LOST, "GPUs that stopped answering (fell off the bus, driver lost them)"),
    (Condition.STALE, "GPUs whose node sent no fresh data for several polls"),
    (Condition.UNKNOWN, "GPUs whose state the driver could not tell"),
)
#: Colour of a count that needs a look, by condition.
_ALARM_STYLE = {
    Condition.WARNING: "color: #a07800;",
    Condition.CRITICAL: "color: #c04000;",
    Condition.LOST: "color: #c8005a;",
    Condition.UNKNOWN: "color: #6a6a6a;",
    Condition.STALE: "color: #6a6a6a;",
}


class _Tile(QFrame):
    clicked = Signal()

    def __init__(self, title: str, tooltip: str, *, clickable: bool = False) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setToolTip(tooltip)
        self._clickable = clickable
        if clickable:
            self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.value = QLabel("—")
        font = self.value.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.value.setFont(font)
        self.title = QLabel(title)
        self._sizes = (self.title.font().pointSizeF(), font.pointSizeF())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 4, 10, 4)
        layout.setSpacing(0)
        layout.addWidget(self.title)
        layout.addWidget(self.value)

    def set_scale(self, factor: float) -> None:
        for label, size in zip((self.title, self.value), self._sizes, strict=True):
            font = label.font()
            font.setPointSizeF(size * factor)
            label.setFont(font)

    def set_value(self, text: str, style: str = "") -> None:
        self.value.setText(text)
        if self.value.styleSheet() != style:  # setting a style sheet re-polishes the label: not every poll
            self.value.setStyleSheet(style)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._clickable and event.button() == Qt.MouseButton.LeftButton and self.rect().contains(event.position().toPoint()):
            self.clicked.emit()
        super().mouseReleaseEvent(event)


class KpiStrip(QWidget):
    """A row of tiles; greyed out (disabled look) while the data is stale. A click on a
    condition's count asks for the grid filter `health:<condition>` (`filterRequested`)."""

    filterRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tiles: dict[str, _Tile] = {"total": _Tile("GPUs", "GPUs the source knows")}
        for condition, meaning in _CONDITION_TILES:
            title = "OK" if condition is Condition.OK else condition.label.capitalize()
            tile = _Tile(title, f"{meaning}. Click to show only these in the grid.", clickable=True)
            tile.clicked.connect(lambda condition=condition: self.filterRequested.emit(f"health:{condition.label}"))
            self.tiles[condition.label] = tile
        self.tiles["util"] = _Tile("Fleet utilization", "Mean GPU utilization over the GPUs that answer")
        self.tiles["power"] = _Tile("Power", "Total board power of the GPUs that answer")
        #: What the strip's neighbours show, when it is not the whole fleet (a wallboard's site).
        self.caption = QLabel()
        self.caption.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for tile in self.tiles.values():
            layout.addWidget(tile)
        layout.addSpacing(16)
        layout.addWidget(self.caption)
        layout.addStretch(1)

    def value_text(self, key: str) -> str:
        return self.tiles[key].value.text()

    def show_kpis(self, kpis: FleetKpis) -> None:
        self.tiles["total"].set_value(f"{kpis.total:,}")
        for condition, _meaning in _CONDITION_TILES:
            count = kpis.conditions.get(condition, 0)
            tile = self.tiles[condition.label]
            tile.set_value(f"{count:,}", _ALARM_STYLE.get(condition, "") if count else "")
            # Stale and unknown are rare: their tiles show only while they count something.
            if condition in (Condition.STALE, Condition.UNKNOWN):
                tile.setVisible(count > 0)
        self.tiles["util"].set_value(format_optional(kpis.util_mean_pct, "{:.1f} %"))
        self.tiles["power"].set_value(
            format_optional(None if kpis.power_total_w is None else kpis.power_total_w / 1000, "{:.1f} kW")
        )

    def set_stale(self, stale: bool) -> None:
        self.setEnabled(not stale)

    def set_scale(self, factor: float) -> None:
        """Text `factor` times its usual size (a wallboard is read from across a room)."""
        for tile in self.tiles.values():
            tile.set_scale(factor)
        font = self.caption.font()
        font.setPointSizeF(self.tiles["total"].title.font().pointSizeF())
        font.setBold(True)
        self.caption.setFont(font)

    def set_caption(self, text: str) -> None:
        self.caption.setText(text)
        self.caption.setVisible(bool(text))

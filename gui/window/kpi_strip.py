"""The fleet's headline numbers: how many GPUs, how many answer, how busy, how much power."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from gpuops.core.telemetry import FleetSample, GpuState
from gpuops.core.units import format_optional


@dataclass(frozen=True)
class FleetKpis:
    """Counts, and aggregates over the GPUs that answer (None when none reports the value)."""

    total: int
    ok: int
    lost: int
    unknown: int
    util_mean_pct: float | None
    power_total_w: float | None


def fleet_kpis(sample: FleetSample) -> FleetKpis:
    ok = sample.state == GpuState.OK
    util = sample.metrics["util_gpu_pct"][ok]
    util = util[np.isfinite(util)]
    power = sample.metrics["power_w"][ok]
    power = power[np.isfinite(power)]
    return FleetKpis(
        total=len(sample),
        ok=int(np.count_nonzero(ok)),
        lost=int(np.count_nonzero(sample.state == GpuState.LOST)),
        unknown=int(np.count_nonzero(sample.state == GpuState.UNKNOWN)),
        util_mean_pct=float(util.mean()) if util.size else None,
        power_total_w=float(power.sum()) if power.size else None,
    )


class _Tile(QFrame):
    def __init__(self, title: str, tooltip: str) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setToolTip(tooltip)
        self.value = QLabel("—")
        font = self.value.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.value.setFont(font)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 4, 10, 4)
        layout.setSpacing(0)
        layout.addWidget(QLabel(title))
        layout.addWidget(self.value)


class KpiStrip(QWidget):
    """A row of tiles; greyed out (disabled look) while the data is stale."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tiles = {
            "total": _Tile("GPUs", "GPUs the source knows"),
            "ok": _Tile("OK", "GPUs that answered the last poll"),
            "lost": _Tile("Lost", "GPUs that stopped answering (fell off the bus, driver lost them)"),
            "util": _Tile("Fleet utilization", "Mean GPU utilization over the GPUs that answer"),
            "power": _Tile("Power", "Total board power of the GPUs that answer"),
        }
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for tile in self.tiles.values():
            layout.addWidget(tile)
        layout.addStretch(1)

    def value_text(self, key: str) -> str:
        return self.tiles[key].value.text()

    def show_kpis(self, kpis: FleetKpis) -> None:
        lost = self.tiles["lost"].value
        self.tiles["total"].value.setText(f"{kpis.total:,}")
        self.tiles["ok"].value.setText(f"{kpis.ok:,}")
        lost.setText(f"{kpis.lost:,}")
        style = "color: #c8005a;" if kpis.lost else ""
        if lost.styleSheet() != style:  # setting a style sheet re-polishes the label: not every poll
            lost.setStyleSheet(style)
        self.tiles["util"].value.setText(format_optional(kpis.util_mean_pct, "{:.1f} %"))
        self.tiles["power"].value.setText(
            format_optional(None if kpis.power_total_w is None else kpis.power_total_w / 1000, "{:.1f} kW")
        )
        unknown = f"; {kpis.unknown:,} in an unknown state" if kpis.unknown else ""
        self.tiles["ok"].setToolTip(f"GPUs that answered the last poll{unknown}")

    def set_stale(self, stale: bool) -> None:
        self.setEnabled(not stale)

"""Headline numbers for a sample whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from gpuops.core.telemetry import FleetSample, GpuState, empty_metrics
from gpuops.gui.window.kpi_strip import FleetKpis, KpiStrip, fleet_kpis
from tests.gui_support import make_inventory
from tests.samples import edited


def four_gpu_sample() -> FleetSample:
    """OK at 20 % and 300 W; OK without a utilization reading at 900 W; lost; unknown."""
    metrics = empty_metrics(4)
    metrics["util_gpu_pct"][:] = [20.0, np.nan, np.nan, 90.0]
    metrics["power_w"][:] = [300.0, 900.0, np.nan, 400.0]
    state = np.array([GpuState.OK, GpuState.OK, GpuState.LOST, GpuState.UNKNOWN], dtype=np.uint8)
    return FleetSample(ts=0.0, gpus=make_inventory(4), metrics=metrics, state=state, processes=((),) * 4)


def test_kpis_count_states_and_aggregate_over_answering_gpus_only():
    assert fleet_kpis(four_gpu_sample()) == FleetKpis(
        total=4, ok=2, lost=1, unknown=1, util_mean_pct=20.0, power_total_w=1200.0
    )


def test_kpis_without_any_reading_are_none_not_zero():
    def blank(metrics: dict[str, np.ndarray]) -> None:
        metrics["util_gpu_pct"][:] = np.nan
        metrics["power_w"][:] = np.nan

    sample = edited(four_gpu_sample(), blank)
    kpis = fleet_kpis(sample)
    assert kpis.util_mean_pct is None and kpis.power_total_w is None


@pytest.mark.qt_log_ignore(r"This plugin does not support")
def test_strip_shows_the_numbers_with_units(qtbot):
    strip = KpiStrip()
    qtbot.addWidget(strip)
    strip.show_kpis(fleet_kpis(four_gpu_sample()))
    assert [strip.value_text(k) for k in ("total", "ok", "lost", "util", "power")] == [
        "4", "2", "1", "20.0 %", "1.2 kW"
    ]
    assert "1 in an unknown state" in strip.tiles["ok"].toolTip()
    strip.show_kpis(FleetKpis(total=10_000, ok=10_000, lost=0, unknown=0, util_mean_pct=None, power_total_w=None))
    assert [strip.value_text(k) for k in ("total", "lost", "util", "power")] == ["10,000", "0", "—", "—"]

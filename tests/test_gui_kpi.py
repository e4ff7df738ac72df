"""Headline numbers for a sample whose answers are known by hand, in the one health vocabulary
(ok, warning, critical, lost, stale, unknown) that the grid, its filter and the exports share;
clicking a count filters the grid to exactly the GPUs it counted."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from gpuops.core.condition import Condition, conditions, count_conditions
from gpuops.core.health import Health
from gpuops.core.telemetry import FleetSample, GpuState, empty_metrics
from gpuops.gui.live.poller import PollResult
from gpuops.gui.window.kpi_strip import FleetKpis, KpiStrip, fleet_kpis
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, close_windows, make_inventory, make_sample, window_factory
from tests.samples import edited

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)


def four_gpu_sample() -> FleetSample:
    """OK at 20 % and 300 W; OK without a utilization reading at 900 W; lost; unknown."""
    metrics = empty_metrics(4)
    metrics["util_gpu_pct"][:] = [20.0, np.nan, np.nan, 90.0]
    metrics["power_w"][:] = [300.0, 900.0, np.nan, 400.0]
    state = np.array([GpuState.OK, GpuState.OK, GpuState.LOST, GpuState.UNKNOWN], dtype=np.uint8)
    return FleetSample(ts=0.0, gpus=make_inventory(4), metrics=metrics, state=state, processes=((),) * 4)


def four_gpu_conditions() -> np.ndarray:
    """The second GPU has a warning finding; nothing is stale."""
    level = np.array([Health.OK, Health.WARNING, Health.CRITICAL, Health.OK], dtype=np.uint8)
    return conditions(level, four_gpu_sample().state, None)


def test_each_gpu_has_exactly_one_condition_lost_first():
    assert [Condition(int(c)) for c in four_gpu_conditions()] == [
        Condition.OK, Condition.WARNING, Condition.LOST, Condition.UNKNOWN,
    ]
    stale = np.array([True, False, True, False])
    codes = conditions(np.zeros(4, dtype=np.uint8), four_gpu_sample().state, stale)
    assert [Condition(int(c)) for c in codes] == [Condition.STALE, Condition.OK, Condition.LOST, Condition.UNKNOWN]
    counts = count_conditions(codes)
    assert set(counts) == set(Condition) and sum(counts.values()) == 4


def test_kpis_count_conditions_and_aggregate_over_answering_gpus_only():
    assert fleet_kpis(four_gpu_sample(), four_gpu_conditions()) == FleetKpis(
        total=4,
        conditions={Condition.OK: 1, Condition.STALE: 0, Condition.UNKNOWN: 1, Condition.WARNING: 1,
                    Condition.CRITICAL: 0, Condition.LOST: 1},
        answering=2, lost=1, unknown=1, util_mean_pct=20.0, power_total_w=1200.0,
    )


def test_kpis_without_any_reading_are_none_not_zero():
    def blank(metrics: dict[str, np.ndarray]) -> None:
        metrics["util_gpu_pct"][:] = np.nan
        metrics["power_w"][:] = np.nan

    kpis = fleet_kpis(edited(four_gpu_sample(), blank), four_gpu_conditions())
    assert kpis.util_mean_pct is None and kpis.power_total_w is None


def test_strip_shows_every_count_with_units(qtbot):
    strip = KpiStrip()
    qtbot.addWidget(strip)
    strip.show()
    strip.show_kpis(fleet_kpis(four_gpu_sample(), four_gpu_conditions()))
    keys = ("total", "ok", "warning", "critical", "lost", "unknown", "util", "power")
    assert [strip.value_text(k) for k in keys] == ["4", "1", "1", "0", "1", "1", "20.0 %", "1.2 kW"]
    assert strip.tiles["unknown"].isVisible() and not strip.tiles["stale"].isVisible(), "rare conditions show when they count"
    many = FleetKpis(10_000, {c: (10_000 if c is Condition.OK else 0) for c in Condition}, 10_000, 0, 0, None, None)
    strip.show_kpis(many)
    assert [strip.value_text(k) for k in ("total", "ok", "lost", "util", "power")] == ["10,000", "10,000", "0", "—", "—"]
    assert not strip.tiles["unknown"].isVisible()


@pytest.fixture
def window(qtbot):
    cleanups: list = []
    window = window_factory(qtbot, cleanups)(FakeSource(16), start=False, size=(1200, 800))
    yield window
    close_windows(cleanups)


def test_clicking_a_count_filters_the_grid_to_the_gpus_it_counted(window, qtbot):
    gpus = make_inventory(16)
    window.apply_result(PollResult(make_sample(gpus, lost=frozenset({3, 9})), 0.01))
    QApplication.processEvents()
    assert window.kpi_strip.value_text("lost") == "2"
    QTest.mouseClick(window.kpi_strip.tiles["lost"], Qt.MouseButton.LeftButton)
    assert window.grid.filter_edit.text() == "health:lost"
    qtbot.waitUntil(lambda: window.grid.message.text() == "Showing 2 of 16 GPUs")
    QTest.mouseClick(window.kpi_strip.tiles["lost"], Qt.MouseButton.LeftButton)  # again: everything
    assert window.grid.filter_edit.text() == ""
    window.grid.set_filter("lost")  # the bare word finds the same GPUs
    qtbot.waitUntil(lambda: window.grid.message.text() == "Showing 2 of 16 GPUs")
    window.grid.set_filter("health:nonsense")  # a bad filter keeps the grid and says why
    qtbot.waitUntil(lambda: window.grid.message.text().startswith("Filter not applied"))
    assert "lost" in window.grid.message.text() and "unknown" in window.grid.message.text()

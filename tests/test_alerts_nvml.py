"""Alerts from the real NVML source (real pynvml over the fake driver): ECC errors, a lost GPU
and an XID event raise the right alerts, and clear when the driver says so."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from gpuops.core.alerts.builtin_rules import builtin_rules
from gpuops.core.alerts.engine import AlertEngine
from gpuops.core.alerts.model import AlertState
from gpuops.core.sources.nvml import NvmlSource
from gpuops.core.telemetry import FleetSample
from tests.fake_nvml import ECC_INDEX, LOST_INDEX, PCIE_INDEX, SXM_INDEX, FakeNvml

PATIENCE_S = 20.0


@pytest.fixture
def source(fake_nvml: FakeNvml) -> Iterator[NvmlSource]:
    with NvmlSource(node="node-a") as opened:
        yield opened


def firing(engine: AlertEngine) -> set[tuple[str, str]]:
    return {(a.rule, a.key) for a in engine.active if a.state is AlertState.FIRING}


def poll_until_xid(source: NvmlSource) -> FleetSample:
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        sample = source.poll()
        if sample.xid_events:
            return sample
        time.sleep(0.05)
    raise AssertionError(f"no XID arrived within {PATIENCE_S:.0f} s")


def test_ecc_errors_and_a_lost_gpu_fire_and_clear(fake_nvml: FakeNvml, source: NvmlSource) -> None:
    engine = AlertEngine(builtin_rules(), poll_interval_s=1.0)
    ecc, pcie = fake_nvml.uuid(ECC_INDEX), fake_nvml.uuid(PCIE_INDEX)
    sample = source.poll()
    # Lost since before the source opened: the driver could not even give its uuid.
    lost_at_open = next(g.uuid for g in sample.gpus if g.index == LOST_INDEX)
    engine.evaluate(sample, sample.ts)
    assert {("ecc_uncorrectable", ecc), ("row_remap_pending", ecc), ("gpu_lost", lost_at_open)} <= firing(engine)
    assert ("row_remap_failure", ecc) not in firing(engine)
    assert ("gpu_lost", pcie) not in firing(engine)

    fake_nvml.set_value(ECC_INDEX, "remapped_rows_failure", 1)
    fake_nvml.set_lost(PCIE_INDEX)
    sample = source.poll()
    engine.evaluate(sample, sample.ts)
    assert {("row_remap_failure", ecc), ("gpu_lost", pcie)} <= firing(engine)

    # The GPU is reset: counters back to zero, remaps done; the lost GPU answers again.
    for key in ("ecc_uncorrected_volatile", "remapped_rows_pending", "remapped_rows_failure"):
        fake_nvml.set_value(ECC_INDEX, key, 0)
    fake_nvml.set_lost(PCIE_INDEX, False)
    sample = source.poll()
    engine.evaluate(sample, sample.ts)
    assert {(rule, key) for rule, key in firing(engine) if key in (ecc, pcie)} == set()


def test_an_xid_event_fires_an_alert_naming_the_catalogue_action(fake_nvml: FakeNvml, source: NvmlSource) -> None:
    engine = AlertEngine(builtin_rules(), poll_interval_s=1.0)
    sample = source.poll()
    engine.evaluate(sample, sample.ts)
    assert fake_nvml.inject_xid(SXM_INDEX, 79) == 1
    sample = poll_until_xid(source)
    engine.evaluate(sample, sample.ts)
    [alert] = [a for a in engine.active if a.rule == "xid_critical"]
    assert alert.key == fake_nvml.uuid(SXM_INDEX)
    assert "XID 79 GPU has fallen off the bus: RESTART_BM" in alert.summary
    # Reported once by the driver, the alert lingers for keep_firing_for, then resolves.
    rule = next(r for r in builtin_rules() if r.name == "xid_critical")
    later = source.poll()
    engine.evaluate(later, sample.ts + rule.keep_firing_for_s - 1)
    assert ("xid_critical", alert.key) in firing(engine)
    engine.evaluate(source.poll(), sample.ts + rule.keep_firing_for_s)
    assert ("xid_critical", alert.key) not in firing(engine)


def test_the_issue_gpu_at_93_c_with_two_uncorrectable_errors_alerts_on_every_driver_family(
    fake_nvml: FakeNvml, source: NvmlSource
) -> None:
    """Issue 13's report: a driver without nvmlDeviceGetFieldValues raised neither alert. This runs on
    every driver family (tests/test_source_nvml_profiles.py reruns it per profile)."""
    engine = AlertEngine(builtin_rules(), poll_interval_s=1.0)
    hot = fake_nvml.uuid(SXM_INDEX)
    fake_nvml.set_value(SXM_INDEX, "temp_c", 93)  # slowdown threshold 89 °C
    fake_nvml.set_value(SXM_INDEX, "ecc_uncorrected_volatile", 2)
    sample = source.poll()
    engine.evaluate(sample, sample.ts)
    assert {("gpu_temp_at_slowdown", hot), ("ecc_uncorrectable", hot)} <= firing(engine)

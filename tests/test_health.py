"""Health grading: worst wins, each GPU says why, nodes roll up, XIDs linger, staleness is separate."""

from __future__ import annotations

import numpy as np

from gpuops.core.health import Health, HealthModel, stale_mask, xid_severity
from gpuops.core.telemetry import GpuState, encode_throttle_reasons
from tests.samples import make_sample


def test_healthy_fleet_is_ok_with_no_reasons() -> None:
    health = HealthModel().assess(make_sample(16))
    assert health.level.tolist() == [Health.OK] * 16
    assert set(health.reasons) == {""}
    assert set(health.node_level.values()) == {Health.OK}


def test_each_finding_grades_and_explains_its_gpu() -> None:
    sample = make_sample(
        16,
        states={0: GpuState.LOST, 1: GpuState.UNKNOWN},
        values={
            "ecc_uncorrected_volatile": {2: 3},
            "remapped_rows_pending": {3: 1},
            "remapped_rows_failure": {4: 1},
            "temp_c": {5: 84.0, 6: 88.0},
            "mem_temp_c": {7: 96.0},
            "throttle_reasons_mask": {
                8: encode_throttle_reasons(["hw_thermal_slowdown"]),
                9: encode_throttle_reasons(["sw_power_cap"]),
            },
        },
    )
    health = HealthModel().assess(sample)
    expected = {
        0: (Health.CRITICAL, "GPU lost (fell off the bus)"),
        1: (Health.WARNING, "GPU state unknown (driver error)"),
        2: (Health.CRITICAL, "3 uncorrectable ECC errors"),
        3: (Health.WARNING, "row remap pending (reset needed)"),
        4: (Health.CRITICAL, "row remap failure (RMA)"),
        5: (Health.WARNING, "GPU 84 °C near slowdown (87 °C)"),
        6: (Health.CRITICAL, "GPU 88 °C at slowdown (87 °C)"),
        7: (Health.CRITICAL, "HBM 96 °C at slowdown (95 °C)"),
        8: (Health.WARNING, "HW thermal slowdown"),
        9: (Health.OK, ""),  # power capping under load is normal operation
    }
    for i, (level, reason) in expected.items():
        assert (health.of(i), health.reasons[i]) == (level, reason), i


def test_worst_finding_wins_and_leads_the_reason() -> None:
    sample = make_sample(8, values={"remapped_rows_pending": {0: 2}, "ecc_uncorrected_volatile": {0: 1}})
    health = HealthModel().assess(sample)
    assert health.of(0) == Health.CRITICAL
    assert health.reasons[0] == "1 uncorrectable ECC errors; row remap pending (reset needed)"


def test_node_health_is_its_worst_gpu() -> None:
    sample = make_sample(24, values={"remapped_rows_pending": {3: 1}, "remapped_rows_failure": {17: 1}})
    health = HealthModel().assess(sample)
    assert health.node_level == {"node00": Health.WARNING, "node01": Health.OK, "node02": Health.CRITICAL}


def test_xid_grade_follows_the_catalogue_and_lingers_for_the_window() -> None:
    model = HealthModel(xid_window_s=600)
    first = model.assess(make_sample(8, ts=1000.0, xids=((2, 79), (3, 13), (4, 63))))
    assert first.of(2) == Health.CRITICAL and first.reasons[2] == "XID 79: GPU has fallen off the bus (RESTART_BM)"
    assert first.of(3) == Health.WARNING  # RESTART_APP: the application's problem
    assert first.of(4) == Health.OK  # catalogue says IGNORE
    later = model.assess(make_sample(8, ts=1500.0))
    assert later.of(2) == Health.CRITICAL
    expired = model.assess(make_sample(8, ts=1601.0))
    assert expired.of(2) == Health.OK


def test_xid_severity_classes() -> None:
    assert xid_severity(48) == Health.CRITICAL
    assert xid_severity(31) == Health.WARNING
    assert xid_severity(43) == Health.OK


def test_unsupported_values_are_not_findings() -> None:
    sample = make_sample(
        4, values={"temp_c": {0: np.nan}, "ecc_uncorrected_volatile": {0: np.nan}, "throttle_reasons_mask": {0: np.nan}}
    )
    assert HealthModel().assess(sample).of(0) == Health.OK


def test_stale_after_three_intervals() -> None:
    last = np.array([100.0, 97.0, 96.9, np.nan])
    assert stale_mask(last, now=100.0, interval_s=1.0).tolist() == [False, False, True, True]

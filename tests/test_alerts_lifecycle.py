"""Alert lifecycle gaps a long-running collector meets: rules edited by another process,
the source failing outright, GPUs leaving the inventory."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gpuops.core.alerts.builtin_rules import builtin_rules
from gpuops.core.alerts.model import AlertState, ChangeKind, Severity
from gpuops.core.alerts.persistence import AlertStore
from gpuops.core.pipeline import PollPipeline, collect_loop
from gpuops.core.sources.base import SourceError, TelemetrySource
from gpuops.core.store.connection import open_database
from gpuops.core.telemetry import FleetSample
from tests.alerts_support import open_service
from tests.samples import make_inventory, make_sample

T0 = 1_763_798_400.0
N = 16


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite"


def test_a_running_service_picks_up_rules_imported_by_another_process(db_path: Path) -> None:
    service = open_service(db_path)
    hot = make_sample(N, ts=T0, values={"temp_c": {2: 75.0}})
    assert service.process(hot, T0).of_kind(ChangeKind.FIRING) == []
    # Another process (e.g. `gpuops alerts --import-rules`) adds a rule on its own connection.
    other_conn, _ = open_database(db_path, create=False)
    other = AlertStore(other_conn)
    warm = {
        "name": "warm_gpu", "severity": "warning", "conditions": [{"signal": "temp_c", "op": ">", "value": 70}],
        "summary": "{gpu}: {value:.0f} C",
    }
    from gpuops.core.alerts.rules import rule_from_dict

    other.replace_rules([*other.rules(), rule_from_dict(warm)], T0 + 1)
    other_conn.close()
    [fired] = service.process(make_sample(N, ts=T0 + 5, values={"temp_c": {2: 75.0}}), T0 + 5).of_kind(ChangeKind.FIRING)
    assert (fired.rule, fired.gpu_uuid) == ("warm_gpu", make_inventory(N)[2].uuid)


def test_rules_revision_changes_only_when_rules_change(db_path: Path) -> None:
    service = open_service(db_path)
    before = service.store.rules_revision()
    service.process(make_sample(N, ts=T0), T0)
    assert service.store.rules_revision() == before
    service.store.replace_rules(builtin_rules()[:3], T0)
    assert service.store.rules_revision() == before + 1


def test_a_source_that_stays_down_raises_a_critical_fleet_alert_that_resolves_when_data_returns(db_path: Path) -> None:
    service = open_service(db_path)
    service.process(make_sample(N, ts=T0), T0)
    assert service.source_failed("NVML: driver not loaded", T0 + 5).of_kind(ChangeKind.FIRING) == []
    service.source_failed("NVML: driver not loaded", T0 + 35)
    [alert] = service.store.active_alerts()
    assert (alert.rule, alert.state, alert.severity) == ("source_down", AlertState.FIRING, Severity.CRITICAL)
    assert alert.gpu_uuid is None and alert.node is None and alert.key == "source"
    assert alert.summary == "telemetry source down: NVML: driver not loaded"
    [resolved] = service.process(make_sample(N, ts=T0 + 40), T0 + 40).of_kind(ChangeKind.RESOLVED)
    assert resolved.id == alert.id
    assert service.store.active_alerts() == []


def test_a_source_failing_before_any_data_still_alerts(db_path: Path) -> None:
    service = open_service(db_path)
    service.source_failed("cannot reach http://exporter:9400", T0)
    service.source_failed("cannot reach http://exporter:9400", T0 + 30)
    assert [a.rule for a in service.store.active_alerts()] == ["source_down"]


def test_a_failed_poll_leaves_gpu_alerts_as_they_were(db_path: Path) -> None:
    service = open_service(db_path)
    [ecc] = service.process(make_sample(N, ts=T0, values={"ecc_uncorrected_volatile": {3: 1}}), T0).of_kind(ChangeKind.FIRING)
    changes = service.source_failed("timeout", T0 + 5)
    assert [c.alert.rule for c in changes.changes] == []
    assert [a.id for a in service.store.active_alerts()] == [ecc.id]


def test_a_vanished_gpu_has_its_alerts_resolved_and_the_node_alert_covers_it(db_path: Path) -> None:
    service = open_service(db_path)
    gpus = make_inventory(N)
    [ecc] = service.process(make_sample(ts=T0, gpus=gpus, values={"ecc_uncorrected_volatile": {15: 1}}), T0).of_kind(
        ChangeKind.FIRING
    )
    changes = service.process(make_sample(ts=T0 + 5, gpus=gpus[:-1]), T0 + 5)
    [resolved] = changes.of_kind(ChangeKind.RESOLVED)
    assert resolved.id == ecc.id and resolved.ended_at == T0 + 5
    [active] = service.store.active_alerts()
    assert (active.rule, active.node) == ("node_gpus_missing", gpus[15].node)
    # It comes back: a fresh alert, not the old one revived.
    changes = service.process(make_sample(ts=T0 + 10, gpus=gpus, values={"ecc_uncorrected_volatile": {15: 1}}), T0 + 10)
    [again] = changes.of_kind(ChangeKind.FIRING)
    assert again.gpu_uuid == gpus[15].uuid and again.id != ecc.id


class DownSource(TelemetrySource):
    name = "down"

    def poll(self) -> FleetSample:
        raise SourceError("no NVIDIA driver is loaded")

    def close(self) -> None:
        pass


def test_the_collect_loop_reports_failed_polls_to_the_alert_rules(db_path: Path) -> None:
    stop = threading.Event()
    errors: list[str] = []

    def on_source_error(message: str) -> None:
        errors.append(message)
        if len(errors) == 3:
            stop.set()

    pipeline = PollPipeline.open(db_path, poll_interval_s=0.01)
    try:
        collect_loop(DownSource(), pipeline, 0.01, stop, None, on_source_error)
    finally:
        pipeline.close()
    assert errors == ["no NVIDIA driver is loaded"] * 3

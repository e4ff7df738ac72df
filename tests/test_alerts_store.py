"""Alerts in the history database: restart without re-notifying, acknowledgement, silences,
maintenance, inhibition, history queries for the console, rules import/export, notifications."""

from __future__ import annotations

import dataclasses
import os
import pwd
import socket
from pathlib import Path

import pytest

from gpuops.core.alerts.builtin_rules import builtin_rules
from gpuops.core.alerts.model import AlertState, ChangeKind, Severity
from gpuops.core.alerts.notifications import NotificationPolicy
from gpuops.core.alerts.persistence import AlertNotFound
from gpuops.core.alerts.rules import RuleError, rules_to_text
from gpuops.core.alerts.silences import Matcher, SilenceError
from tests.alerts_support import open_service
from tests.samples import make_inventory, make_sample

WHO = f"{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"

T0 = 1_763_798_400.0
N = 16
UUIDS = [g.uuid for g in make_inventory(N)]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite"


def faulty(ts: float, **values: dict[int, float]):
    return make_sample(N, ts=ts, values=values or {"ecc_uncorrected_volatile": {3: 1}})


def test_a_restart_keeps_alerts_and_does_not_notify_them_again(db_path: Path) -> None:
    service = open_service(db_path)
    changes = service.process(faulty(T0), T0)
    [fired] = changes.of_kind(ChangeKind.FIRING)
    policy = NotificationPolicy(min_interval_s=60)
    note = policy.due(service.store.active_alerts(), T0)
    assert note is not None and note.alert_ids == (fired.id,)
    assert "uncorrectable ECC" in note.body
    service.store.mark_notified(note.alert_ids, T0)
    service.store.conn.close()

    again = open_service(db_path)
    [reloaded] = again.store.active_alerts()
    assert (reloaded.id, reloaded.state, reloaded.notified_at) == (fired.id, AlertState.FIRING, T0)
    changes = again.process(faulty(T0 + 5), T0 + 5)
    assert changes.of_kind(ChangeKind.FIRING) == [] and changes.of_kind(ChangeKind.PENDING) == []
    assert NotificationPolicy(min_interval_s=60).due(again.store.active_alerts(), T0 + 5) is None
    # A new problem after the restart gets a new id and is notified.
    changes = again.process(faulty(T0 + 10, ecc_uncorrected_volatile={3: 1, 9: 1}), T0 + 10)
    [new] = changes.of_kind(ChangeKind.FIRING)
    assert new.id > fired.id
    assert NotificationPolicy().due(again.store.active_alerts(), T0 + 10).alert_ids == (new.id,)


def test_a_pending_alert_keeps_its_for_timer_across_a_restart(db_path: Path) -> None:
    hot = {"temp_c": {3: 84.0}}  # near slowdown: fires after 120 s
    service = open_service(db_path)
    service.process(faulty(T0, **hot), T0)
    assert service.store.active_alerts() == []  # a blip is not worth a row yet
    service.process(faulty(T0 + 30, **hot), T0 + 30)
    [pending] = service.store.active_alerts()
    assert (pending.state, pending.pending_at) == (AlertState.PENDING, T0)
    service.store.conn.close()
    again = open_service(db_path)
    changes = again.process(faulty(T0 + 120, **hot), T0 + 120)
    assert [a.rule for a in changes.of_kind(ChangeKind.FIRING)] == ["gpu_temp_near_slowdown"]


def test_acknowledgement_records_who_and_survives_later_evaluations(db_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("USER", "mallory")  # the OS's word (real uid), not the environment's
    monkeypatch.setenv("LOGNAME", "mallory")
    service = open_service(db_path)
    [alert] = service.process(faulty(T0), T0).of_kind(ChangeKind.FIRING)
    acked = service.store.acknowledge(alert.id, T0 + 1, note="draining node00")
    assert (acked.acknowledged_by, acked.ack_note, acked.acknowledged_at) == (WHO, "draining node00", T0 + 1)
    service.process(faulty(T0 + 5), T0 + 5)
    service.process(make_sample(N, ts=T0 + 10), T0 + 10)  # resolves
    stored = service.store.alert(alert.id)
    assert stored.state is AlertState.RESOLVED and stored.acknowledged_by == WHO
    with pytest.raises(AlertNotFound, match=f"no active alert {alert.id}"):
        service.store.acknowledge(alert.id, T0 + 11)


def test_a_silence_mutes_matching_alerts_until_it_ends_or_expires(db_path: Path) -> None:
    service = open_service(db_path)
    store = service.store
    silence = store.add_silence(["node=node00", "rule=~ecc_.*"], T0, T0 + 3600, "reseating", T0, author="alice")
    other = store.add_silence(["severity!=critical"], T0, T0 + 3600, "noise", T0, author="bob")
    service.process(faulty(T0, ecc_uncorrected_volatile={3: 1, 9: 1}), T0)
    muted = {a.gpu_uuid: a.silenced_by for a in store.active_alerts()}
    assert muted == {UUIDS[3]: str(silence.id), UUIDS[9]: None}
    policy = NotificationPolicy()
    assert policy.due(store.active_alerts(), T0).alert_ids == (store.active_alerts()[1].id,)
    store.expire_silence(silence.id, T0 + 60)
    service.process(faulty(T0 + 60, ecc_uncorrected_volatile={3: 1, 9: 1}), T0 + 60)
    assert {a.gpu_uuid: a.silenced_by for a in store.active_alerts()} == {UUIDS[3]: None, UUIDS[9]: None}
    assert [s.id for s in store.silences(active_at=T0 + 61)] == [other.id]


def test_a_silence_starting_later_mutes_from_its_start(db_path: Path) -> None:
    service = open_service(db_path)
    service.store.add_silence([Matcher("gpu", "=", UUIDS[3])], T0 + 100, T0 + 200, "", T0, author="alice")
    for ts, expected in ((T0, None), (T0 + 100, "1"), (T0 + 150, "1"), (T0 + 200, None)):
        service.process(faulty(ts), ts)
        assert service.store.active_alerts()[0].silenced_by == expected, ts


@pytest.mark.parametrize(
    ("matchers", "message"),
    [
        (["node==x"], None),  # parses as node = "=x": allowed, matches nothing
        (["rack=r1"], "cannot match on label 'rack'"),
        (["gpu=~(unclosed"], "bad regex"),
        (["just text"], "must look like label=value"),
        ([], "at least one matcher"),
    ],
)
def test_invalid_silences_are_refused_and_store_nothing(db_path: Path, matchers: list[str], message: str | None) -> None:
    store = open_service(db_path).store
    if message is None:
        store.add_silence(matchers, T0, T0 + 1, "", T0, author="a")
        return
    with pytest.raises(SilenceError, match=message):
        store.add_silence(matchers, T0, T0 + 10, "", T0, author="a")
    assert store.silences() == []


def test_a_node_in_maintenance_mutes_its_alerts(db_path: Path) -> None:
    service = open_service(db_path)
    service.store.start_maintenance("node00", T0, comment="BIOS update", author="carol")
    service.process(faulty(T0, ecc_uncorrected_volatile={3: 1, 9: 1}), T0)
    assert {a.gpu_uuid: a.silenced_by for a in service.store.active_alerts()} == {UUIDS[3]: "maintenance", UUIDS[9]: None}
    service.store.end_maintenance("node00")
    service.process(faulty(T0 + 5, ecc_uncorrected_volatile={3: 1, 9: 1}), T0 + 5)
    assert all(a.silenced_by is None for a in service.store.active_alerts())


def test_a_stale_node_inhibits_its_gpu_alerts_but_not_its_own(db_path: Path) -> None:
    service = open_service(db_path)
    sample = dataclasses.replace(faulty(T0, ecc_uncorrected_volatile={3: 1, 9: 1}), stale_nodes=frozenset({"node01"}))
    service.process(sample, T0)
    active = service.store.active_alerts()
    inhibited = {a.key: a.inhibited for a in active if a.rule != "gpu_data_stale"}
    assert inhibited == {UUIDS[3]: False, UUIDS[9]: True, "node:node01": False}
    # Its GPUs' data is old, which the node alert already says.
    stale = [a for a in active if a.rule == "gpu_data_stale"]
    assert sorted(a.key for a in stale) == UUIDS[8:] and all(a.inhibited for a in stale)
    assert [a.rule for a in NotificationPolicy(min_severity=Severity.WARNING).candidates(service.store.active_alerts())] == [
        "ecc_uncorrectable", "node_telemetry_stale"
    ]
    service.process(faulty(T0 + 5, ecc_uncorrected_volatile={3: 1, 9: 1}), T0 + 5)
    assert not [a for a in service.store.active_alerts() if a.inhibited]


def test_history_timeline_counts_and_groups_for_the_console(db_path: Path) -> None:
    service = open_service(db_path)
    store = service.store
    service.process(faulty(T0, ecc_uncorrected_volatile={3: 1}, mem_used_bytes={9: 79 * 2**30}), T0)
    service.process(make_sample(N, ts=T0 + 10, values={"mem_used_bytes": {9: 79 * 2**30}}), T0 + 10)
    service.process(faulty(T0 + 20, ecc_uncorrected_volatile={3: 1}, mem_used_bytes={9: 79 * 2**30}), T0 + 20)
    assert store.counts_by_severity() == {"info": 1, "warning": 0, "critical": 1}
    assert list(store.grouped("node")) == ["node00", "node01"]
    assert list(store.grouped("rule")) == ["ecc_uncorrectable", "memory_nearly_full"]
    history = store.history(gpu_uuid=UUIDS[3])
    assert [(a.state, a.pending_at) for a in history] == [(AlertState.FIRING, T0 + 20), (AlertState.RESOLVED, T0)]
    assert store.history(states=[AlertState.RESOLVED]) == history[1:]
    assert [a.rule for a in store.history(min_severity=Severity.CRITICAL, node="node00")] == ["ecc_uncorrectable"] * 2
    timeline = store.timeline(UUIDS[3], T0 + 5, T0 + 30)
    assert [(a.pending_at, a.ended_at) for a in timeline] == [(T0, T0 + 10), (T0 + 20, None)]
    assert store.timeline(UUIDS[3], T0 + 11, T0 + 19) == []
    with pytest.raises(ValueError, match="by node or rule"):
        store.grouped("site")


def test_rules_are_seeded_editable_and_import_is_all_or_nothing(db_path: Path) -> None:
    service = open_service(db_path)
    store = service.store
    assert store.rules() == builtin_rules()
    tuned = [dataclasses.replace(r, for_s=0.0) if r.name == "gpu_temp_near_slowdown" else r
             for r in builtin_rules() if r.name != "power_at_limit"]
    store.import_rules(rules_to_text(tuned), T0)
    service.reload_rules()
    changes = service.process(faulty(T0, temp_c={3: 84.0}), T0)
    assert "gpu_temp_near_slowdown" in [a.rule for a in changes.of_kind(ChangeKind.FIRING)]
    exported = store.export_rules()
    broken = exported.replace('"critical"', '"severe"', 1)
    with pytest.raises(RuleError, match="severity 'severe'"):
        store.import_rules(broken, T0 + 1)
    assert store.export_rules() == exported
    store.conn.close()
    # A deleted built-in stays deleted after reopening.
    reopened = open_service(db_path).store
    assert "power_at_limit" not in [r.name for r in reopened.rules()]
    assert reopened.export_rules() == exported


def test_a_node_losing_a_gpu_is_remembered_across_a_restart(db_path: Path) -> None:
    service = open_service(db_path)
    service.process(make_sample(N, ts=T0), T0)
    service.store.conn.close()
    again = open_service(db_path)
    changes = again.process(make_sample(ts=T0 + 5, gpus=make_inventory(N)[:-2]), T0 + 5)
    [alert] = changes.of_kind(ChangeKind.FIRING)
    assert (alert.rule, alert.node) == ("node_gpus_missing", "node01")
    assert alert.summary == "node01: 2 GPU(s) fewer than before"


def test_notifications_are_rate_limited_and_coalesced() -> None:
    from gpuops.core.alerts.model import Alert

    def critical(i: int, ts: float) -> Alert:
        return Alert(id=i, rule="gpu_lost", key=f"g{i}", severity=Severity.CRITICAL, state=AlertState.FIRING,
                     labels={}, summary=f"GPU {i} lost", runbook="", pending_at=ts, started_at=ts)

    policy = NotificationPolicy(min_interval_s=60)
    first = policy.due([critical(1, T0)], T0)
    assert first.alert_ids == (1,) and first.title == "Critical: gpu_lost"
    notified = [dataclasses.replace(critical(1, T0), notified_at=T0)]
    later = notified + [critical(i, T0 + i) for i in range(2, 7)]
    assert policy.due(later, T0 + 10) is None  # too soon: held back
    coalesced = policy.due(later, T0 + 60)
    assert coalesced.alert_ids == (2, 3, 4, 5, 6)
    assert coalesced.title == "5 new alerts (critical)"
    assert coalesced.body.splitlines() == ["GPU 2 lost", "GPU 3 lost", "GPU 4 lost", "and 2 more"]
    warning = dataclasses.replace(critical(9, T0), severity=Severity.WARNING)
    assert NotificationPolicy().due([warning], T0) is None


def test_keep_firing_for_counts_from_the_stored_last_true_across_a_restart(db_path: Path) -> None:
    service = open_service(db_path)
    service.process(make_sample(N, ts=T0, xids=((3, 79),)), T0)  # an XID is reported once
    service.process(make_sample(N, ts=T0 + 5), T0 + 5)
    service.store.conn.close()
    again = open_service(db_path)
    assert again.process(make_sample(N, ts=T0 + 3000), T0 + 3000).changes == ()
    [alert] = again.store.active_alerts()
    assert (alert.rule, alert.state) == ("xid_critical", AlertState.FIRING)
    changes = again.process(make_sample(N, ts=T0 + 3600), T0 + 3600)
    assert [(a.rule, a.ended_at) for a in changes.of_kind(ChangeKind.RESOLVED)] == [("xid_critical", T0 + 3600)]

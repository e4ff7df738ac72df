"""The alerts model's refresh signals, and the alert worker's notifications: rate-limited and
coalesced by NotificationPolicy, marked in the store, handed to the notifier."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gpuops.core.alerts.model import Alert, AlertState, Severity
from gpuops.core.alerts.notifications import Notification, NotificationPolicy
from gpuops.core.alerts.service import AlertService
from gpuops.core.store.connection import open_database
from gpuops.gui.alerts.model import ActiveAlertsModel
from gpuops.gui.alerts.worker import AlertWorker
from tests.samples import make_sample

T0 = 1_763_798_400.0
N = 16


def alert(i: int, node: str, rule: str = "gpu_lost", severity: Severity = Severity.CRITICAL) -> Alert:
    return Alert(id=i, rule=rule, key=f"g{i}", severity=severity, state=AlertState.FIRING,
                 labels={"node": node, "gpu": f"g{i}", "gpu_index": str(i)}, summary=f"GPU {i} lost", runbook="",
                 pending_at=T0, started_at=T0)


def test_model_groups_switch_and_a_refresh_sends_ranged_signals_only(qtbot) -> None:
    model = ActiveAlertsModel()
    alerts = [alert(1, "n1"), alert(2, "n2", "hw_throttle", Severity.WARNING), alert(3, "n1", "hw_throttle", Severity.WARNING)]
    model.set_alerts(alerts)
    assert model.groups() == ["n1", "n2"]  # n1 holds a critical: first
    assert model.rowCount(model.index(0, 0)) == 2
    model.set_group_by("rule")
    assert model.groups() == ["gpu_lost", "hw_throttle"]
    model.set_group_by("node")

    changed: list[tuple] = []
    resets: list[int] = []
    model.dataChanged.connect(
        lambda tl, br, roles: changed.append((tl.parent().isValid(), tl.row(), br.row(), tl.column(), br.column()))
    )
    model.modelReset.connect(lambda: resets.append(1))
    model.set_alerts(alerts)
    assert changed == [] and resets == []  # nothing new: no signal at all
    acked = [alerts[0], dataclasses.replace(alerts[1], acknowledged_by="dave"), alerts[2]]
    model.set_alerts(acked)
    last = model.columnCount() - 1
    assert changed == [(False, 0, 1, 0, last), (True, 0, 0, 0, last)]  # the groups, then n2's alerts
    assert resets == []
    model.set_alerts([*acked, alert(4, "n3")])
    assert resets == [1] and model.groups() == ["n1", "n3", "n2"]


def seeded(path: Path) -> AlertService:
    conn, _ = open_database(path, create=True)
    service = AlertService(conn, poll_interval_s=5.0)
    service.process(make_sample(N, ts=T0, values={"ecc_uncorrected_volatile": {3: 1, 9: 1}}), T0)
    return service


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def worker_on(qtbot, tmp_path: Path):
    workers = []

    def make(clock: Clock) -> AlertWorker:
        worker = AlertWorker(
            tmp_path / "history.sqlite", policy=NotificationPolicy(min_interval_s=60), clock=clock, refresh_s=3600
        )
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        assert worker.stop()


def test_due_notifications_reach_the_notifier_rate_limited_and_marked(qtbot, tmp_path: Path, worker_on) -> None:
    service = seeded(tmp_path / "history.sqlite")
    clock = Clock()
    notes: list[Notification] = []
    snapshots = []
    worker = worker_on(clock)
    worker.notificationDue.connect(notes.append)
    worker.snapshotReady.connect(snapshots.append)
    qtbot.waitUntil(lambda: len(notes) == 1 and len(snapshots) == 1, timeout=10_000)
    assert notes[0].title == "2 new alerts (critical)" and len(notes[0].alert_ids) == 2
    assert all(a.notified_at == T0 for a in service.store.active_alerts())

    # A third critical alert 10 s later waits; a minute after the first it goes out alone.
    service.process(make_sample(N, ts=T0 + 10, values={"ecc_uncorrected_volatile": {3: 1, 9: 1, 12: 1}}), T0 + 10)
    clock.now = T0 + 10
    worker.refresh()
    qtbot.waitUntil(lambda: len(snapshots) == 2, timeout=10_000)
    assert len(notes) == 1
    clock.now = T0 + 61
    worker.refresh()
    qtbot.waitUntil(lambda: len(notes) == 2, timeout=10_000)
    third = next(a for a in service.store.active_alerts() if a.labels.get("gpu_index") == "4")
    assert notes[1].alert_ids == (third.id,) and notes[1].title == "Critical: ecc_uncorrectable"
    assert snapshots[-1].worst() is Severity.CRITICAL


def test_a_refused_action_comes_back_as_a_readable_failure(qtbot, tmp_path: Path, worker_on) -> None:
    seeded(tmp_path / "history.sqlite")
    results = []
    worker = worker_on(Clock())
    worker.actionDone.connect(results.append)
    worker.acknowledge(999, "note")
    worker.expire_silence(5)
    qtbot.waitUntil(lambda: len(results) == 2, timeout=10_000)
    assert [(r.ok, r.message) for r in results] == [
        (False, "no active alert 999 to acknowledge"), (False, "no silence 5 in force"),
    ]


def test_no_history_yet_is_reported_not_raised(qtbot, tmp_path: Path, worker_on) -> None:
    problems = []
    worker = worker_on(Clock())
    worker.problem.connect(problems.append)
    qtbot.waitUntil(lambda: bool(problems), timeout=10_000)
    assert problems[0].startswith("alerts: no history at")


def test_tray_icon_carries_a_dot_in_the_worst_severity_colour(qtbot) -> None:
    from gpuops.gui.alerts.model import SEVERITY_COLORS
    from gpuops.gui.app.tray import DOT_FRACTION, ICON_PX, severity_icon

    def dot_pixel(severity):
        image = severity_icon(severity).pixmap(ICON_PX, ICON_PX).toImage()
        centre = round(ICON_PX - 1 - ICON_PX * DOT_FRACTION / 2)
        return image.pixelColor(centre, centre)

    for severity in Severity:
        assert dot_pixel(severity).name() == SEVERITY_COLORS[severity].name()
    assert dot_pixel(None).name() not in {c.name() for c in SEVERITY_COLORS.values()}


def test_the_window_command_accepts_read_only() -> None:
    from gpuops.cli import parse_args

    assert parse_args(["--read-only"]).read_only is True
    assert parse_args(["window", "--read-only"]).read_only is True
    assert parse_args([]).read_only is False

"""Alert state in a team database (a real, throwaway PostgreSQL server): what one desk changes
(acknowledgement, silence, maintenance, rule edit) the other desk reads, and its change listener
hears about it."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import psycopg
import pytest

from gpuops.core.alerts.model import Alert, AlertChange, AlertChanges, AlertState, ChangeKind, Severity
from gpuops.core.alerts.persistence import AlertStore
from gpuops.core.team import schema
from gpuops.core.team.notify import ChangeListener
from tests.postgres_server import PostgresServer, running_postgres, server_bindir

pytestmark = pytest.mark.skipif(server_bindir() is None, reason="needs Debian's postgresql package (scripts/dev.sh installs it)")
HEARD_WITHIN_S = 10.0  # generous: the figure is measured in bench/bench_team_notify.py, not here
NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with running_postgres() as running:
        yield running


@pytest.fixture
def team_url(server: PostgresServer, request: pytest.FixtureRequest) -> str:
    url = server.create_database(request.node.name.replace("[", "_").replace("]", "").lower())
    with psycopg.connect(url, autocommit=True) as conn:
        schema.migrate(conn)
    return url


def _desk(url: str) -> AlertStore:
    return AlertStore(psycopg.connect(url, autocommit=True))


@pytest.fixture
def heard(team_url: str) -> Iterator[queue.Queue[frozenset[str]]]:
    """The tables another console's listener hears changed, in order."""
    tables: queue.Queue[frozenset[str]] = queue.Queue()
    listener = ChangeListener(tables.put, connect=lambda: psycopg.connect(team_url, autocommit=True))
    listener.start()
    assert listener.wait_listening(HEARD_WITHIN_S)
    yield tables
    listener.close()


def _wait_for(tables: queue.Queue[frozenset[str]], table: str) -> None:
    while table not in tables.get(timeout=HEARD_WITHIN_S):
        pass


def _firing(alert_id: int = 7) -> AlertChanges:
    alert = Alert(
        id=alert_id, rule="gpu_hot", key="GPU-1", severity=Severity.CRITICAL, state=AlertState.FIRING,
        labels={"rule": "gpu_hot", "severity": "critical", "node": "n1", "gpu": "GPU-1"}, summary="hot",
        runbook="", pending_at=NOW - 60, started_at=NOW, last_true_at=NOW,
    )
    return AlertChanges(ts=NOW, changes=(AlertChange(ChangeKind.FIRING, alert),))


def test_an_acknowledgement_at_one_desk_is_seen_and_heard_at_the_other(team_url: str, heard) -> None:
    collector, desk_a, desk_b = _desk(team_url), _desk(team_url), _desk(team_url)
    collector.apply(_firing())
    _wait_for(heard, "alerts")
    assert [a.acknowledged_by for a in desk_b.active_alerts()] == [None]
    desk_a.acknowledge(7, NOW + 5, "on it", user="alice@desk-a")
    _wait_for(heard, "alerts")
    [seen] = desk_b.active_alerts()
    assert (seen.acknowledged_by, seen.ack_note, seen.state) == ("alice@desk-a", "on it", AlertState.FIRING)


def test_silences_and_maintenance_round_trip_between_desks(team_url: str, heard) -> None:
    desk_a, desk_b = _desk(team_url), _desk(team_url)
    silence = desk_a.add_silence(["node=n1", "rule=~xid_.*"], NOW, NOW + 3600, "reboot", NOW, author="alice")
    _wait_for(heard, "alert_silences")
    assert desk_b.silences(active_at=NOW) == [silence]
    desk_b.expire_silence(silence.id, NOW + 10)
    _wait_for(heard, "alert_silences")
    assert desk_a.silences(active_at=NOW + 11) == []
    desk_a.start_maintenance("n2", NOW, "PSU swap", author="alice")
    _wait_for(heard, "alert_maintenance")
    assert desk_b.maintenance()["n2"].comment == "PSU swap"
    desk_b.end_maintenance("n2")
    _wait_for(heard, "alert_maintenance")
    assert desk_a.maintenance() == {}


def test_a_rule_edit_at_one_desk_reaches_the_other_and_the_evaluator(team_url: str, heard) -> None:
    desk_a, desk_b = _desk(team_url), _desk(team_url)
    rule = desk_b.rules()[0]
    revision = desk_b.rules_revision()
    desk_a.set_rule_enabled(rule.name, not rule.enabled, NOW)
    _wait_for(heard, "alert_rules")
    assert desk_b.rules_revision() != revision  # what a running collector checks each poll
    assert {r.name: r.enabled for r in desk_b.rules()}[rule.name] is (not rule.enabled)


def test_the_listener_comes_back_after_its_connection_is_killed(team_url: str, server: PostgresServer, heard) -> None:
    server.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'")
    _wait_for(heard, "alert_rules")  # after reconnecting it reports everything as changed
    _desk(team_url).start_maintenance("n3", NOW, author="bob")
    _wait_for(heard, "alert_maintenance")

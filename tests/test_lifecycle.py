"""Node and GPU lifecycle: every transition, its audit entry, the rules a datacenter keeps, and the
alerts' maintenance it drives."""

from __future__ import annotations

import sqlite3
from itertools import product

import pytest

from gpuops.core.alerts.persistence import AlertStore
from gpuops.core.allocations.errors import ReadOnlyError, ValidationError
from gpuops.core.allocations.model import ContractType
from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.lifecycle.book import LifecycleBook, gpu_states, state_intervals, transitions
from gpuops.core.lifecycle.states import ALLOWED, State
from gpuops.core.store.connection import open_database
from tests.allocations_support import DAY_MS, HOUR_MS, T0_MS, make_history, mixed_inventory

GPUS = mixed_inventory(8, 8)  # node00: 8 H100, anode00: 8 A100
NODE = "node00"


class Clock:
    def __init__(self, ms: int = T0_MS) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000

    def advance(self, ms: int) -> None:
        self.ms += ms


@pytest.fixture
def history(tmp_path):
    return make_history(tmp_path / "history.sqlite", GPUS)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def repo(history, clock):
    conn, _ = open_database(history, create=False)
    repo = AllocationRepository(conn, user="alice@dc1", clock=clock)
    yield repo
    repo.close()


def _extras(target: State, now_ms: int) -> dict:
    """What each target state needs besides a reason."""
    return {
        State.MAINTENANCE: {"until_ms": now_ms + HOUR_MS},
        State.RMA: {"ticket": "NV-CASE-1"},
    }.get(target, {})


def _reach(book: LifecycleBook, clock: Clock, path: list[State], node: str = NODE) -> None:
    for state in path:
        clock.advance(1000)
        book.transition(node, state, f"to {state.value}", **_extras(state, clock.ms))


#: A way to reach each state from production (nothing recorded).
PATHS = {
    State.PRODUCTION: [],
    State.BURN_IN: [State.BURN_IN],
    State.DRAINING: [State.DRAINING],
    State.MAINTENANCE: [State.MAINTENANCE],
    State.REPAIR: [State.REPAIR],
    State.RMA: [State.REPAIR, State.RMA],
    State.RETIRED: [State.DRAINING, State.RETIRED],
}


@pytest.mark.parametrize(("start", "target"), list(product(State, State)))
def test_every_transition_is_allowed_or_refused_as_the_table_says(repo, clock, start, target):
    book = LifecycleBook(repo)
    _reach(book, clock, PATHS[start])
    assert book.view().node_state(NODE) is start
    clock.advance(1000)
    if target in ALLOWED[start]:
        made = book.transition(NODE, target, "why not", **_extras(target, clock.ms))
        assert (made.previous, made.state) == (start, target)
        assert book.view().node_state(NODE) is target
    else:
        with pytest.raises(ValidationError) as refused:
            book.transition(NODE, target, "why not", **_extras(target, clock.ms))
        message = str(refused.value)
        assert ("already in" in message) if start is target else (start.value in message and target.value in message)
        assert book.view().node_state(NODE) is start


def test_a_transition_records_who_when_why_and_the_ticket_in_the_audit_log(repo, clock):
    book = LifecycleBook(repo)
    clock.advance(5000)
    book.transition(NODE, State.REPAIR, "XID 79: fell off the bus", ticket="INC-42", expected_ms=T0_MS + 3 * DAY_MS)
    (entry,) = repo.audit_log(entity="node")
    assert (entry.user, entry.ts_ms, entry.action) == ("alice@dc1", T0_MS + 5000, "transition")
    assert entry.before is None  # nothing recorded before: production by default
    assert entry.after["state"] == "repair" and entry.after["previous"] == "production"
    assert entry.after["reason"] == "XID 79: fell off the bus" and entry.after["ticket"] == "INC-42"
    assert entry.after["ts"] == "2026-01-01T00:00:05Z" and entry.after["expected"] == "2026-01-04T00:00:00Z"
    assert entry.entity_id == repo.conn.execute("SELECT id FROM nodes WHERE name = ?", (NODE,)).fetchone()[0]
    clock.advance(1000)
    book.transition(NODE, State.RMA, "vendor replaces the board", ticket="NV-7788")
    newest = repo.audit_log(entity="node")[0]
    assert newest.before["state"] == "repair" and newest.after["ticket"] == "NV-7788"
    assert [t.state for t in transitions(repo.conn, node=NODE)] == [State.REPAIR, State.RMA]


def test_rma_needs_the_vendor_case_number_and_maintenance_its_end(repo, clock):
    book = LifecycleBook(repo)
    book.transition(NODE, State.REPAIR, "dead GPU")
    with pytest.raises(ValidationError, match="vendor's case number"):
        book.transition(NODE, State.RMA, "send back", ticket="  ")
    with pytest.raises(ValidationError, match="planned end"):
        book.transition("anode00", State.MAINTENANCE, "firmware")
    with pytest.raises(ValidationError, match="not in the future"):
        book.transition("anode00", State.MAINTENANCE, "firmware", until_ms=clock.ms - 1)
    with pytest.raises(ValidationError, match="needs a reason"):
        book.transition("anode00", State.DRAINING, "   ")
    with pytest.raises(ValidationError, match="unknown node 'node99'"):
        book.transition("node99", State.DRAINING, "typo")
    with pytest.raises(ValidationError, match="only maintenance has a planned end"):
        book.transition("anode00", State.DRAINING, "x", until_ms=clock.ms + HOUR_MS)
    assert len(transitions(repo.conn)) == 1 and len(repo.audit_log()) == 1  # only the repair


def test_the_database_itself_keeps_retired_final_and_the_history_append_only(repo, clock):
    _reach(LifecycleBook(repo), clock, PATHS[State.RETIRED])
    insert = (
        "INSERT INTO lifecycle_transitions (ts_ms, node, state, previous, reason, user) "
        "VALUES (1, 'node00', 'production', 'retired', 'sneaky', 'x')"
    )
    with pytest.raises(sqlite3.IntegrityError, match="retired is final"):
        repo.conn.execute(insert)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        repo.conn.execute("UPDATE lifecycle_transitions SET reason = 'rewritten'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        repo.conn.execute("DELETE FROM lifecycle_transitions")
    with pytest.raises(sqlite3.IntegrityError):
        repo.conn.execute(
            "INSERT INTO lifecycle_transitions (ts_ms, node, state, previous, reason, user) "
            "VALUES (1, 'anode00', 'rma', 'repair', 'no case number', 'x')"
        )


def test_a_gpu_overrides_its_node_until_it_follows_it_again(repo, clock):
    book = LifecycleBook(repo)
    gpu = GPUS[3].uuid
    book.transition(NODE, State.REPAIR, "ECC uncorrectable", gpu_uuid=gpu)
    states = gpu_states(repo.conn)
    assert states[gpu] is State.REPAIR and states[GPUS[2].uuid] is State.PRODUCTION
    clock.advance(1000)
    book.transition(NODE, State.DRAINING, "rack move")
    states = gpu_states(repo.conn)
    assert states[gpu] is State.REPAIR and states[GPUS[2].uuid] is State.DRAINING
    clock.advance(1000)
    book.transition(NODE, State.BURN_IN, "new HBM stack", gpu_uuid=gpu)
    clock.advance(1000)
    book.transition(NODE, State.PRODUCTION, "passed burn-in", gpu_uuid=gpu)
    assert gpu_states(repo.conn)[gpu] is State.DRAINING  # follows its draining node again
    with pytest.raises(ValidationError, match="has no GPU"):
        book.transition(NODE, State.REPAIR, "wrong node", gpu_uuid=GPUS[9].uuid)
    (gpu_entry, *_) = repo.audit_log(entity="gpu")
    assert gpu_entry.entity_id == repo.conn.execute("SELECT id FROM gpus WHERE uuid = ?", (gpu,)).fetchone()[0]


def test_everything_on_a_retired_node_is_retired(repo, clock):
    book = LifecycleBook(repo)
    book.transition(NODE, State.REPAIR, "one bad GPU", gpu_uuid=GPUS[0].uuid)
    _reach(book, clock, PATHS[State.RETIRED])
    assert set(gpu_states(repo.conn)[g.uuid] for g in GPUS[:8]) == {State.RETIRED}
    with pytest.raises(ValidationError, match="retired"):
        book.transition(NODE, State.BURN_IN, "reuse it", gpu_uuid=GPUS[0].uuid)


def test_rma_retire_and_burn_in_need_the_gpus_free_of_customers(repo, clock):
    customer = repo.add_customer("Helix")
    contract = repo.add_contract(customer.id, "train", ContractType.RESERVED, "H100", 1, T0_MS, T0_MS + DAY_MS, 2.0)
    repo.allocate(contract.id, [GPUS[1].uuid], T0_MS)
    book = LifecycleBook(repo)
    book.transition(NODE, State.DRAINING, "bad fan")  # draining lets the customer run on
    clock.advance(1000)
    with pytest.raises(ValidationError, match=r"customers hold 1: .*Helix.*'train'.*2026-01-02T00:00:00Z"):
        book.transition(NODE, State.RETIRED, "end of life")
    book.transition(NODE, State.REPAIR, "fan swap while the job runs")  # repair is allowed: the SLA counts it
    clock.ms = T0_MS + DAY_MS  # the allocation has ended
    book.transition(NODE, State.RMA, "board swap", ticket="NV-1")
    assert book.view().node_state(NODE) is State.RMA


def test_maintenance_mutes_the_nodes_alerts_through_the_alerts_maintenance(repo, clock):
    book = LifecycleBook(repo)
    alerts = AlertStore(repo.conn)
    book.transition(NODE, State.MAINTENANCE, "BIOS update", until_ms=clock.ms + 2 * HOUR_MS, ticket="CHG-9")
    entry = alerts.maintenance()[NODE]
    assert entry.author == "alice@dc1" and "BIOS update" in entry.comment
    clock.advance(HOUR_MS)
    book.transition(NODE, State.PRODUCTION, "done")
    assert NODE not in alerts.maintenance()


def test_read_only_refuses_a_transition_and_writes_nothing(history):
    repo = AllocationRepository.open(history, read_only=True)
    try:
        with pytest.raises(ReadOnlyError, match="read-only"):
            LifecycleBook(repo).transition(NODE, State.DRAINING, "x")
        assert transitions(repo.conn) == []
    finally:
        repo.close()


def test_state_intervals_replay_node_and_gpu_transitions(repo, clock):
    book = LifecycleBook(repo)
    gpu = GPUS[0].uuid
    clock.ms = T0_MS + HOUR_MS
    book.transition(NODE, State.REPAIR, "node down")
    clock.ms = T0_MS + 3 * HOUR_MS
    book.transition(NODE, State.BURN_IN, "fixed")
    clock.ms = T0_MS + 5 * HOUR_MS
    book.transition(NODE, State.RMA, "burn-in failed on one GPU", gpu_uuid=gpu, ticket="NV-2")
    spans = state_intervals(repo.conn, T0_MS, T0_MS + 10 * HOUR_MS, {State.REPAIR, State.RMA})
    assert spans[gpu] == [(T0_MS + HOUR_MS, T0_MS + 3 * HOUR_MS), (T0_MS + 5 * HOUR_MS, T0_MS + 10 * HOUR_MS)]
    assert spans[GPUS[1].uuid] == [(T0_MS + HOUR_MS, T0_MS + 3 * HOUR_MS)]
    assert GPUS[8].uuid not in spans  # another node
    assert state_intervals(repo.conn, T0_MS + 2 * HOUR_MS, T0_MS + 4 * HOUR_MS, {State.REPAIR})[gpu] == [
        (T0_MS + 2 * HOUR_MS, T0_MS + 3 * HOUR_MS)
    ]


def test_a_gpu_in_maintenance_is_silenced_until_its_planned_end_or_its_return(repo, clock):
    book = LifecycleBook(repo)
    alerts = AlertStore(repo.conn)
    gpu = GPUS[5].uuid
    book.transition(NODE, State.MAINTENANCE, "reseat the GPU", gpu_uuid=gpu, until_ms=clock.ms + 2 * HOUR_MS)
    (silence,) = alerts.silences(active_at=clock() + 60)
    assert silence.matches({"node": NODE, "gpu": gpu}) and not silence.matches({"node": NODE, "gpu": GPUS[4].uuid})
    assert silence.ends_at == clock() + 7200 and silence.author == "alice@dc1" and NODE not in alerts.maintenance()
    clock.advance(HOUR_MS)
    book.transition(NODE, State.PRODUCTION, "reseated", gpu_uuid=gpu)
    assert alerts.silences(active_at=clock() + 1) == []

"""Allocation invariants, in the core (readable, complete problems) and in the database itself
(triggers and CHECK constraints reject a direct SQL write)."""

from __future__ import annotations

import sqlite3

import pytest

from gpuops.core.allocations.errors import NeedsConfirmation, ReadOnlyError, ValidationError
from gpuops.core.allocations.model import ContractType
from gpuops.core.store.connection import open_database
from tests.allocations_support import DAY_MS, HOUR_MS, T0_MS, make_history, mixed_inventory, open_repo

GPUS = mixed_inventory(8, 8)
H100 = [g.uuid for g in GPUS[:8]]
A100 = [g.uuid for g in GPUS[8:]]


@pytest.fixture
def db_path(tmp_path):
    return make_history(tmp_path / "history.sqlite", GPUS, lost=(7,))


@pytest.fixture
def repo(db_path):
    repository = open_repo(db_path)
    yield repository
    repository.close()


def _contract(repo, name="train-1", count=4, start=T0_MS, end=T0_MS + 30 * DAY_MS, model="H100", customer=None):
    customer = customer or repo.customer_named("Acme") or repo.add_customer("Acme", "ops@acme.example")
    return repo.add_contract(customer.id, name, ContractType.RESERVED, model, count, start, end, 2.5)


def test_an_allocation_without_end_runs_until_its_contract_ends(repo):
    contract = _contract(repo)
    [allocation] = repo.allocate(contract.id, [H100[0]], T0_MS)
    assert allocation.end_ms == contract.end_ms
    assert repo.allocations(contract_id=contract.id) == [allocation]


def test_a_gpu_cannot_be_held_twice_over_overlapping_time(repo):
    first = _contract(repo, "a")
    second = _contract(repo, "b")
    repo.allocate(first.id, [H100[0]], T0_MS, T0_MS + 10 * DAY_MS)
    with pytest.raises(ValidationError, match="allocated twice") as caught:
        repo.allocate(second.id, [H100[0], H100[1]], T0_MS + 5 * DAY_MS)
    assert len(caught.value.problems) == 1
    assert repo.allocations(contract_id=second.id) == []  # H100[1] was not written either
    # Back to back is fine: intervals are half-open.
    repo.allocate(second.id, [H100[0]], T0_MS + 10 * DAY_MS)


def test_allocations_stay_within_their_contract_dates(repo):
    contract = _contract(repo, start=T0_MS + DAY_MS, end=T0_MS + 2 * DAY_MS)
    with pytest.raises(ValidationError, match="outside contract"):
        repo.allocate(contract.id, [H100[0]], T0_MS)
    with pytest.raises(ValidationError, match="outside contract"):
        repo.allocate(contract.id, [H100[0]], T0_MS + DAY_MS, T0_MS + 3 * DAY_MS)


def test_a_contract_never_holds_more_gpus_than_it_bought_at_any_instant(repo):
    contract = _contract(repo, count=2)
    repo.allocate(contract.id, H100[:2], T0_MS, T0_MS + DAY_MS)
    with pytest.raises(ValidationError, match="would hold 3 GPUs"):
        repo.allocate(contract.id, [H100[2]], T0_MS + HOUR_MS, T0_MS + 2 * HOUR_MS)
    # Once the first two end, two others fit.
    repo.allocate(contract.id, H100[2:4], T0_MS + DAY_MS)
    with pytest.raises(ValidationError, match="more than the new count"):
        repo.update_contract(contract.id, gpu_count=1)


def test_unknown_gpus_and_wrong_models_are_refused(repo):
    contract = _contract(repo)
    with pytest.raises(ValidationError) as caught:
        repo.allocate(contract.id, ["GPU-not-in-inventory", A100[0]], T0_MS)
    messages = [p.message for p in caught.value.problems]
    assert any("unknown GPU GPU-not-in-inventory" in m for m in messages)
    assert any("is for H100" in m for m in messages)


def test_lost_gpus_need_confirmation(repo):
    contract = _contract(repo)
    with pytest.raises(NeedsConfirmation) as caught:
        repo.allocate(contract.id, [H100[6], H100[7]], T0_MS)
    assert [(g.uuid, g.reason) for g in caught.value.gpus] == [(H100[7], "GPU lost (fell off the bus)")]
    assert repo.allocations() == []
    repo.allocate(contract.id, [H100[6], H100[7]], T0_MS, confirm=True)
    assert len(repo.allocations()) == 2


def test_faulty_gpus_from_live_health_need_confirmation(repo):
    contract = _contract(repo)
    faulty = {H100[3]: "2 uncorrectable ECC errors"}
    with pytest.raises(NeedsConfirmation, match="uncorrectable ECC"):
        repo.allocate(contract.id, [H100[3]], T0_MS, unhealthy_gpus=faulty)


def test_release_ends_or_removes_allocations(repo):
    contract = _contract(repo)
    ongoing, future = repo.allocate(contract.id, [H100[0]], T0_MS) + repo.allocate(contract.id, [H100[1]], T0_MS + 5 * DAY_MS)
    repo.release([ongoing.id, future.id], T0_MS + DAY_MS)
    assert [(a.gpu_uuid, a.end_ms) for a in repo.allocations()] == [(H100[0], T0_MS + DAY_MS)]


def test_read_only_refuses_every_change(db_path, repo):
    contract = _contract(repo)
    repo.allocate(contract.id, [H100[0]], T0_MS)
    reader = open_repo(db_path, read_only=True)
    try:
        for change in (
            lambda: reader.add_customer("Other"),
            lambda: reader.update_contract(contract.id, price_per_gpu_hour=1.0),
            lambda: reader.allocate(contract.id, [H100[1]], T0_MS),
            lambda: reader.release([1], T0_MS),
        ):
            with pytest.raises(ReadOnlyError, match="read-only"):
                change()
        assert len(reader.allocations()) == 1
        assert len(reader.audit_log()) == 3
    finally:
        reader.close()


def test_every_change_is_audited_with_before_and_after(repo):
    contract = _contract(repo)
    repo.update_contract(contract.id, price_per_gpu_hour=3.0)
    entries = repo.audit_log(entity="contract")
    assert [e.action for e in entries] == ["update", "create"]
    update = entries[0]
    assert update.user == "tester"
    assert update.before["price_per_gpu_hour"] == 2.5 and update.after["price_per_gpu_hour"] == 3.0
    assert update.after["type"] == "reserved"


# ----- the same invariants enforced by the database itself -----


def _raw(db_path):
    conn, _ = open_database(db_path, create=False)
    return conn


def _seed_raw(conn, count=2, start=T0_MS, end=T0_MS + 10 * DAY_MS):
    conn.execute("INSERT INTO customers (id, name) VALUES (1, 'Raw')")
    conn.execute(
        "INSERT INTO contracts (id, customer_id, name, type, gpu_model, gpu_count, start_ms, end_ms, price_per_gpu_hour) "
        "VALUES (1, 1, 'c', 'spot', 'H100', ?, ?, ?, 1.0)",
        (count, start, end),
    )


def test_database_rejects_overlapping_allocation(db_path):
    conn = _raw(db_path)
    _seed_raw(conn)
    conn.execute(
        "INSERT INTO allocations (contract_id, gpu_uuid, start_ms, end_ms) VALUES (1, 'G', ?, ?)", (T0_MS, T0_MS + DAY_MS)
    )
    with pytest.raises(sqlite3.IntegrityError, match="already allocated over an overlapping time"):
        conn.execute(
            "INSERT INTO allocations (contract_id, gpu_uuid, start_ms, end_ms) VALUES (1, 'G', ?, ?)",
            (T0_MS + HOUR_MS, T0_MS + 5 * DAY_MS),
        )
    conn.execute(
        "INSERT INTO allocations (contract_id, gpu_uuid, start_ms, end_ms) VALUES (1, 'G', ?, ?)",
        (T0_MS + DAY_MS, T0_MS + 2 * DAY_MS),
    )
    with pytest.raises(sqlite3.IntegrityError, match="overlapping"):
        conn.execute("UPDATE allocations SET end_ms = ? WHERE start_ms = ?", (T0_MS + 2 * DAY_MS, T0_MS))


def test_database_rejects_allocation_outside_contract_and_open_end_in_bounded_contract(db_path):
    conn = _raw(db_path)
    _seed_raw(conn)
    for start, end in ((T0_MS - 1, T0_MS + DAY_MS), (T0_MS, T0_MS + 11 * DAY_MS), (T0_MS, None)):
        with pytest.raises(sqlite3.IntegrityError, match="outside its contract's dates"):
            conn.execute("INSERT INTO allocations (contract_id, gpu_uuid, start_ms, end_ms) VALUES (1, 'G', ?, ?)", (start, end))
    conn.execute(
        "INSERT INTO allocations (contract_id, gpu_uuid, start_ms, end_ms) VALUES (1, 'G', ?, ?)", (T0_MS, T0_MS + DAY_MS)
    )
    with pytest.raises(sqlite3.IntegrityError, match="outside its dates"):
        conn.execute("UPDATE contracts SET start_ms = ? WHERE id = 1", (T0_MS + HOUR_MS,))


def test_database_rejects_more_gpus_than_the_contract_holds(db_path):
    conn = _raw(db_path)
    _seed_raw(conn, count=2)
    insert = "INSERT INTO allocations (contract_id, gpu_uuid, start_ms, end_ms) VALUES (1, ?, ?, ?)"
    conn.execute(insert, ("A", T0_MS + DAY_MS, T0_MS + 3 * DAY_MS))
    conn.execute(insert, ("B", T0_MS + 2 * DAY_MS, T0_MS + 4 * DAY_MS))
    # Starts before both and reaches into the instant both are held (day 2).
    with pytest.raises(sqlite3.IntegrityError, match="more GPUs than it bought"):
        conn.execute(insert, ("C", T0_MS, T0_MS + 2 * DAY_MS + 1))
    conn.execute(insert, ("C", T0_MS, T0_MS + 2 * DAY_MS))  # ends as B starts: at most 2 at once
    with pytest.raises(sqlite3.IntegrityError, match="more GPUs at once than the new count"):
        conn.execute("UPDATE contracts SET gpu_count = 1 WHERE id = 1")


def test_database_check_constraints(db_path):
    conn = _raw(db_path)
    conn.execute("INSERT INTO customers (id, name) VALUES (1, 'Raw')")
    columns = "customer_id, name, type, gpu_model, gpu_count, start_ms, end_ms, price_per_gpu_hour, equity_terms"
    bad_rows = [
        (1, "x", "lease", "H100", 1, 0, 10, 1.0, None),  # unknown type
        (1, "x", "spot", "H100", 0, 0, 10, 1.0, None),  # no GPUs
        (1, "x", "spot", "H100", 1, 10, 10, 1.0, None),  # ends as it starts
        (1, "x", "spot", "H100", 1, 0, 10, -1.0, None),  # negative price
        (1, "x", "compute_for_equity", "H100", 1, 0, 10, 0.0, None),  # no equity terms
    ]
    for row in bad_rows:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
            conn.execute(f"INSERT INTO contracts ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)


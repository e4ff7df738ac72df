"""The book follows the lifecycle: allocation refuses GPUs outside production (an override needs a
reason, audited), the capacity planner's supply counts production plus what is expected back, and
the usage report counts repair and RMA time as unavailable."""

from __future__ import annotations

import pytest

from gpuops.cli import main
from gpuops.core.allocations.accounting import usage_report
from gpuops.core.allocations.capacity import book_supply, capacity_plan, healthy_supply, stored_supply
from gpuops.core.allocations.errors import NotInProduction
from gpuops.core.allocations.model import Contract, ContractStatus, ContractType
from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.lifecycle.book import LifecycleBook, gpu_states
from gpuops.core.lifecycle.states import State
from gpuops.core.store.connection import open_database
from tests.allocations_support import DAY_MS, HOUR_MS, T0_MS, make_history, mixed_inventory
from tests.samples import make_sample

GPUS = mixed_inventory(8, 8)  # node00: 8 H100; anode00: 8 A100


class Clock:
    ms = T0_MS

    def __call__(self) -> float:
        return self.ms / 1000


@pytest.fixture
def history(tmp_path):
    return make_history(tmp_path / "history.sqlite", GPUS)


@pytest.fixture
def repo(history):
    conn, _ = open_database(history, create=False)
    repo = AllocationRepository(conn, user="bob@dc1", clock=Clock())
    yield repo
    repo.close()


def _contract(repo, model="H100", count=4, name="train"):
    customer = repo.customer_named("Helix") or repo.add_customer("Helix")
    return repo.add_contract(customer.id, name, ContractType.RESERVED, model, count, T0_MS, T0_MS + 30 * DAY_MS, 2.0)


def test_allocation_refuses_gpus_outside_production_and_an_override_needs_a_reason(repo):
    contract = _contract(repo)
    book = LifecycleBook(repo)
    book.transition("node00", State.REPAIR, "XID 79", gpu_uuid=GPUS[1].uuid)
    book.transition("node00", State.DRAINING, "fan swap", gpu_uuid=GPUS[2].uuid)
    with pytest.raises(NotInProduction) as refused:
        repo.allocate(contract.id, [GPUS[0].uuid, GPUS[1].uuid, GPUS[2].uuid], T0_MS)
    assert {(g.uuid, g.state, g.why) for g in refused.value.gpus} == {
        (GPUS[1].uuid, "repair", "XID 79"), (GPUS[2].uuid, "draining", "fan swap")
    }
    assert repo.allocations() == []
    with pytest.raises(NotInProduction):
        repo.allocate(contract.id, [GPUS[2].uuid], T0_MS, lifecycle_override="   ")
    made = repo.allocate(contract.id, [GPUS[0].uuid, GPUS[2].uuid], T0_MS, lifecycle_override="customer asked, one day")
    assert len(made) == 2
    audit = {e.after["gpu_uuid"]: e.after for e in repo.audit_log(entity="allocation")}
    assert "lifecycle_override" not in audit[GPUS[0].uuid]
    assert audit[GPUS[2].uuid]["lifecycle_override"] == {"state": "draining", "reason": "customer asked, one day"}
    assert audit[GPUS[2].uuid]["gpu_uuid"] == GPUS[2].uuid  # the record itself is all there


def test_a_whole_node_out_of_production_refuses_its_gpus_and_back_in_production_allows_them(repo):
    contract = _contract(repo, "A100", 2)
    book = LifecycleBook(repo)
    book.transition("anode00", State.BURN_IN, "new node")
    with pytest.raises(NotInProduction, match="burn_in: new node"):
        repo.allocate(contract.id, [GPUS[8].uuid], T0_MS)
    book.transition("anode00", State.PRODUCTION, "passed burn-in")
    assert len(repo.allocate(contract.id, [GPUS[8].uuid], T0_MS)) == 1


def test_the_allocations_import_refuses_them_by_row_and_takes_an_override(history, tmp_path, capsys):
    assert main(["nodes", "drain", "node00", "--reason", "PSU", "--gpu", GPUS[3].uuid, "--db", str(history)]) == 0
    csv_file = tmp_path / "alloc.csv"
    csv_file.write_text(
        "customer,contract,contract_type,gpu_uuid,start,end,price_per_gpu_hour\n"
        f"Acme,train,reserved,{GPUS[0].uuid},2026-01-01T00:00:00Z,2026-02-01T00:00:00Z,2.5\n"
        f"Acme,train,reserved,{GPUS[3].uuid},2026-01-01T00:00:00Z,2026-02-01T00:00:00Z,2.5\n"
    )
    capsys.readouterr()
    assert main(["allocations", "import", str(csv_file), "--db", str(history)]) == 1
    err = capsys.readouterr().err
    assert f"row 3: {GPUS[3].uuid} (draining: PSU)" in err and "--lifecycle-override REASON" in err
    assert main(["allocations", "import", str(csv_file), "--lifecycle-override", "finishing a job", "--db", str(history)]) == 0
    conn, _ = open_database(history, create=False)
    try:
        entries = AllocationRepository(conn).audit_log(entity="allocation")
        overrides = [e.after.get("lifecycle_override") for e in entries]
        assert sorted(overrides, key=str) == [None, {"state": "draining", "reason": "finishing a job"}]
    finally:
        conn.close()


def _plan_contract(count: int, start_day: int) -> Contract:
    return Contract(1, 1, "c", ContractType.RESERVED, "H100", count, T0_MS + start_day * DAY_MS, None, 1.0,
                    ContractStatus.ACTIVE)


def test_supply_is_production_plus_what_is_expected_back_by_its_date(repo):
    book = LifecycleBook(repo)
    book.transition("node00", State.REPAIR, "bad HBM", gpu_uuid=GPUS[0].uuid, expected_ms=T0_MS + 10 * DAY_MS)
    book.transition("node00", State.REPAIR, "no part yet", gpu_uuid=GPUS[1].uuid)  # no date: not counted
    book.transition("node00", State.DRAINING, "move", gpu_uuid=GPUS[2].uuid)
    book.transition("anode00", State.BURN_IN, "new", expected_ms=T0_MS + 3 * DAY_MS)
    assert stored_supply(repo.conn) == {"H100": 5}
    supply, returning = book_supply(repo.conn, now_ms=T0_MS)
    assert returning == {"H100": (T0_MS + 10 * DAY_MS,), "A100": (T0_MS + 3 * DAY_MS,) * 8}
    sample = make_sample(gpus=GPUS)
    assert healthy_supply(sample, states=gpu_states(repo.conn)) == {"H100": 5}
    assert book_supply(repo.conn, sample)[0] == {"H100": 5}
    plan = {s.model: s for s in capacity_plan([_plan_contract(6, 5)], supply, T0_MS, T0_MS + 60 * DAY_MS, returning=returning)}
    h100 = plan["H100"]
    assert h100.first_shortfall_ms == T0_MS + 5 * DAY_MS  # 6 wanted, 5 in production until day 10
    assert h100.supply_at(T0_MS + 9 * DAY_MS) == 5 and h100.supply_at(T0_MS + 10 * DAY_MS) == 6
    later = capacity_plan([_plan_contract(6, 12)], supply, T0_MS, T0_MS + 60 * DAY_MS, returning=returning)
    assert {s.model: s.first_shortfall_ms for s in later} == {"H100": None, "A100": None}  # back by day 10
    assert plan["A100"].supply == 0 and plan["A100"].supply_at(T0_MS + 3 * DAY_MS) == 8
    overdue = book_supply(repo.conn, now_ms=T0_MS + 5 * DAY_MS)[1]  # the A100s are late: not counted any more
    assert overdue == {"H100": (T0_MS + 10 * DAY_MS,)}


def test_usage_counts_repair_and_rma_time_as_unavailable(repo):
    contract = _contract(repo, count=2)
    book = LifecycleBook(repo)
    clock = repo._clock
    for hour, state, extra in ((1, State.REPAIR, {}), (2, State.RMA, {"ticket": "NV-5"}), (3, State.BURN_IN, {})):
        clock.ms = T0_MS + hour * HOUR_MS
        book.transition("node00", state, "GPU 1 swapped", gpu_uuid=GPUS[1].uuid, **extra)
    repo.allocate(contract.id, [GPUS[0].uuid, GPUS[1].uuid], T0_MS, T0_MS + 10 * HOUR_MS, lifecycle_override="backfill")
    clock.ms = T0_MS + 3 * HOUR_MS + HOUR_MS // 2
    book.transition("node00", State.DRAINING, "noisy fan")  # draining still serves: available
    clock.ms = T0_MS + 4 * HOUR_MS
    book.transition("node00", State.REPAIR, "fan swap", gpu_uuid=GPUS[0].uuid)  # the customer still holds it
    (helix,) = usage_report(repo, T0_MS, T0_MS + 10 * HOUR_MS)
    assert helix.usage.allocated_gpu_hours == pytest.approx(20.0)
    # GPU 1: repair 1 h + rma 1 h; GPU 0: repair from hour 4 to the end, 6 h.
    assert helix.usage.unavailable_gpu_hours == pytest.approx(8.0)
    assert helix.usage.availability_pct == pytest.approx(60.0)

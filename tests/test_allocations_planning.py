"""Busy-but-unallocated detection, allocation lookups per sample, the capacity planner and the
demo book."""

from __future__ import annotations

import pytest

from gpuops.core.allocations.busy import EVENT_KIND, BusyUnallocatedRecorder, find_busy_unallocated
from gpuops.core.allocations.capacity import capacity_plan, healthy_supply, stored_supply
from gpuops.core.allocations.demo_customers import seed_demo_customers
from gpuops.core.allocations.model import Contract, ContractStatus, ContractType
from gpuops.core.health import HealthModel
from gpuops.core.sources.demo import DemoSource
from gpuops.core.store.writer import HistoryWriter
from gpuops.core.telemetry import GpuState, ProcessInfo
from tests.allocations_support import DAY_MS, HOUR_MS, T0_MS, make_history, open_repo
from tests.samples import make_inventory, make_sample

GPUS = make_inventory(6)


@pytest.fixture
def repo(tmp_path):
    repository = open_repo(make_history(tmp_path / "history.sqlite", GPUS))
    yield repository
    repository.close()


def test_busy_unallocated_flags_processes_or_utilization_without_allocation(repo):
    acme = repo.add_customer("Acme")
    contract = repo.add_contract(acme.id, "c", "reserved", "H100", 2, T0_MS, T0_MS + DAY_MS, 2.0)
    repo.allocate(contract.id, [GPUS[0].uuid, GPUS[1].uuid], T0_MS)
    ts = (T0_MS + HOUR_MS) / 1000
    proc = (ProcessInfo(4242, "python", 2**30),)
    sample = make_sample(
        gpus=GPUS, ts=ts,
        values={"util_gpu_pct": {0: 90.0, 1: 0.0, 2: 0.0, 3: 55.0, 4: 10.0, 5: 0.0}},
        processes={2: proc, 1: proc},
    )
    index = repo.index()
    assert index.allocated_mask(sample).tolist() == [True, True, False, False, False, False]
    assert index.customer_of([GPUS[0].uuid, GPUS[5].uuid], ts) == ["Acme", None]
    assert index.customer_of([GPUS[0].uuid], (T0_MS + DAY_MS) / 1000) == [None]  # the allocation has ended

    found = find_busy_unallocated(sample, index.allocated_mask(sample))
    # GPU 2: a process; GPU 3: 55 %; GPU 4 at exactly 10 % is not over the threshold.
    assert found.mask.tolist() == [False, False, True, True, False, False]
    assert found.reason(2) == "busy (1 process) but not allocated to any contract"
    assert found.reason(3) == "busy (55 % utilization) but not allocated to any contract"

    recorder = BusyUnallocatedRecorder(repo.conn)
    assert recorder.record(sample, found) == [GPUS[2].uuid, GPUS[3].uuid]
    assert recorder.record(sample, found) == []  # still the same episode: no new event
    rows = repo.conn.execute(
        "SELECT gpus.uuid, events.detail FROM events JOIN gpus ON gpus.id = events.gpu_id WHERE kind = ? ORDER BY gpus.uuid",
        (EVENT_KIND,),
    ).fetchall()
    assert [r[0] for r in rows] == [GPUS[2].uuid, GPUS[3].uuid]
    assert "1 process" in rows[0][1]


def _contract(cid, model, count, start_day, end_day, status=ContractStatus.ACTIVE):
    end = None if end_day is None else T0_MS + end_day * DAY_MS
    return Contract(cid, 1, f"c{cid}", ContractType.RESERVED, model, count, T0_MS + start_day * DAY_MS, end, 1.0, status)


def test_capacity_crunch_is_the_first_start_that_tips_demand_over_supply():
    contracts = [
        _contract(1, "H100", 6, -10, 30),
        _contract(2, "H100", 3, 20, None),  # 9 from day 20: fits 10
        _contract(3, "H100", 2, 45, 90),  # day 30: 5; day 45: 5... no crunch
        _contract(4, "H100", 6, 60, 100),  # day 60: 11 > 10: crunch
        _contract(5, "H100", 50, 5, 10, ContractStatus.CANCELLED),  # does not count
        _contract(6, "A100", 1, 0, None),
    ]
    plan = {s.model: s for s in capacity_plan(contracts, {"H100": 10, "L40S": 4}, T0_MS, T0_MS + 365 * DAY_MS)}
    h100 = plan["H100"]
    assert h100.first_shortfall_ms == T0_MS + 60 * DAY_MS
    days = ((h100.ts_ms - T0_MS) // DAY_MS).tolist()
    expected = [(0, 6), (20, 9), (30, 3), (45, 5), (60, 11), (90, 9), (100, 3)]
    assert list(zip(days, h100.contracted.tolist(), strict=True)) == expected
    assert h100.peak == 11 and h100.supply == 10
    assert plan["A100"].first_shortfall_ms == T0_MS  # no A100 in the fleet at all
    assert plan["L40S"].first_shortfall_ms is None and plan["L40S"].peak == 0


def test_supply_counts_healthy_gpus_per_model():
    sample = make_sample(gpus=GPUS, states={1: GpuState.LOST}, values={"ecc_uncorrected_volatile": {2: 3.0}})
    assert healthy_supply(sample) == {"H100": 5}
    assert healthy_supply(sample, HealthModel().assess(sample)) == {"H100": 4}


@pytest.mark.parametrize("seed", [0, 3])
def test_demo_book_shows_allocations_waste_and_an_h100_crunch(tmp_path, seed):
    now_s = T0_MS / 1000
    source = DemoSource(64, seed=seed)
    path = tmp_path / "demo.sqlite"
    with HistoryWriter(path) as writer:
        writer.write(source.sample_at(now_s))
    repo = open_repo(path)
    try:
        assert seed_demo_customers(repo, 64, seed, now_s)
        assert not seed_demo_customers(repo, 64, seed, now_s)  # only into an empty book
        contracts = repo.contracts()
        assert len(repo.customers()) == 8
        assert {c.type for c in contracts} == set(ContractType)
        assert len(repo.allocations()) > 20
        plan = {s.model: s for s in capacity_plan(contracts, stored_supply(repo.conn), T0_MS, T0_MS + 365 * DAY_MS)}
        crunch = plan["H100"].first_shortfall_ms
        assert crunch is not None and T0_MS + 30 * DAY_MS < crunch < T0_MS + 180 * DAY_MS
        sample = source.sample_at(now_s + 60)
        index = repo.index()
        assert find_busy_unallocated(sample, index.allocated_mask(sample)).mask.any()
        # Some allocated GPUs sit idle: the waste the demo is meant to show.
        allocated = index.allocated_mask(sample)
        assert (allocated & (sample.metrics["util_gpu_pct"] < 5)).any()
    finally:
        repo.close()

    other = tmp_path / "again.sqlite"
    with HistoryWriter(other) as writer:
        writer.write(DemoSource(64, seed=seed).sample_at(now_s))
    again, first = open_repo(other), open_repo(path)
    try:
        seed_demo_customers(again, 64, seed, now_s)
        assert again.allocations() == first.allocations()
    finally:
        again.close()
        first.close()


def test_unhealthy_gpus_from_a_live_sample_name_the_reason():
    from gpuops.core.allocations.confirmation import unhealthy_gpus

    sample = make_sample(gpus=GPUS, states={1: GpuState.LOST}, values={"ecc_uncorrected_volatile": {2: 3.0}, "temp_c": {3: 84.0}})
    found = unhealthy_gpus(sample, HealthModel().assess(sample))
    assert set(found) == {GPUS[1].uuid, GPUS[2].uuid}  # GPU 3 is only a warning (near slowdown)
    assert "lost" in found[GPUS[1].uuid] and "3 uncorrectable ECC errors" in found[GPUS[2].uuid]
    assert unhealthy_gpus(sample) == {GPUS[1].uuid: "GPU lost (fell off the bus)"}

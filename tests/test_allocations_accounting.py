"""Accounting on a small, exactly known history written through the store's writer."""

from __future__ import annotations

import numpy as np
import pytest

from gpuops.core.allocations.accounting import usage_report
from gpuops.core.allocations.model import ContractType
from gpuops.core.store.writer import HistoryWriter
from gpuops.core.telemetry import GpuState
from tests.allocations_support import HOUR_MS, T0_MS, open_repo
from tests.samples import make_inventory, make_sample

MIN_S = 60.0
GPUS = make_inventory(4)
BUSY_PCT = 80.0
SHORT_DIP = range(60, 85)  # 25 minutes idle: a pause, not waste
LONG_DIP = range(120, 160)  # 40 minutes idle: waste
LOST = range(180, 200)  # GPU 2 off the bus for 20 minutes
XID_MINUTE = 30  # GPU 3: XID 79 (critical) marks it faulty for an hour
ENERGY_W = 400.0
POWER_ONLY_W = 300.0


def _poll(minute: int):
    """GPU 0: counters at 400 W, idle dips; GPU 1: 50 %, no energy counter (power only);
    GPU 2: counters, lost for LOST; GPU 3: counters, one critical XID."""
    ts = T0_MS / 1000 + minute * MIN_S
    energy = 1e6 + ENERGY_W * MIN_S * minute
    util0 = 0.0 if minute in SHORT_DIP or minute in LONG_DIP else BUSY_PCT
    values = {
        "util_gpu_pct": {0: util0, 1: 50.0, 2: BUSY_PCT, 3: BUSY_PCT},
        "energy_j": {0: energy, 1: np.nan, 2: energy, 3: energy},
        "power_w": {0: ENERGY_W, 1: POWER_ONLY_W, 2: ENERGY_W, 3: ENERGY_W},
    }
    states = {2: GpuState.LOST} if minute in LOST else {}
    xids = ((3, 79),) if minute == XID_MINUTE else ()
    return make_sample(gpus=GPUS, ts=ts, values=values, states=states, xids=xids)


@pytest.fixture(scope="module", params=["head", "rolled-up"])
def repo(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("acct") / "history.sqlite"
    with HistoryWriter(path) as writer:
        for minute in range(-1, 6 * 60 + 10):  # past 6 h, so the 1-minute window [T0, T0 + 6 h) is rolled up
            writer.write(_poll(minute))
        if request.param == "rolled-up":
            while writer.maintain(5.0):
                pass
    repository = open_repo(path)
    customer = repository.add_customer("Acme")
    contract = repository.add_contract(customer.id, "c", ContractType.RESERVED, "H100", 4, T0_MS, T0_MS + 4 * HOUR_MS, 2.0)
    repository.allocate(contract.id, [g.uuid for g in GPUS], T0_MS)
    other = repository.add_customer("Idle Inc")
    repository.add_contract(other.id, "nothing", ContractType.SPOT, "H100", 1, T0_MS, None, 1.0)
    yield repository
    repository.close()


def _per_gpu(repo, start_ms, end_ms):
    """Usage of each GPU on its own: split the one contract's allocation per GPU."""
    from gpuops.core.allocations.accounting import contract_usage

    contracts = {c.id: c for c in repo.contracts()}
    return [
        contract_usage(repo, [a], contracts, start_ms, end_ms)[a.contract_id] for a in repo.allocations()
    ]


def test_full_allocation(repo):
    by_uuid = dict(zip([a.gpu_uuid for a in repo.allocations()], _per_gpu(repo, T0_MS, T0_MS + 4 * HOUR_MS), strict=True))
    u = [by_uuid[g.uuid] for g in GPUS]
    for usage in u:
        assert usage.allocated_gpu_hours == pytest.approx(4.0)
        assert usage.revenue == pytest.approx(8.0)
    # Used: busy minutes x 80 %.
    assert u[0].used_gpu_hours == pytest.approx((240 - 25 - 40) * 0.8 / 60)
    assert u[1].used_gpu_hours == pytest.approx(240 * 0.5 / 60)
    assert u[2].used_gpu_hours == pytest.approx((240 - 20) * 0.8 / 60)
    # Idle: only the 40-minute dip counts.
    assert u[0].idle_gpu_hours == pytest.approx(40 / 60)
    assert [x.idle_gpu_hours for x in u[1:]] == [0.0, 0.0, 0.0]
    # Energy: 400 W for 4 h from counters; 300 W for 4 h from power alone.
    assert u[0].energy_kwh == pytest.approx(1.6)
    assert u[1].energy_kwh == pytest.approx(1.2)
    # Availability: 20 min lost; an hour faulty after a critical XID.
    assert [x.unavailable_gpu_hours for x in u] == pytest.approx([0.0, 0.0, 20 / 60, 1.0])


def test_report_per_customer_over_a_clipped_period(repo):
    start, end = T0_MS + HOUR_MS, T0_MS + 3 * HOUR_MS + 10 * 60_000
    report = {r.customer.name: r for r in usage_report(repo, start, end)}
    assert list(report) == ["Acme", "Idle Inc"]
    acme = report["Acme"].usage
    hours = 2 + 10 / 60
    assert acme.allocated_gpu_hours == pytest.approx(4 * hours)
    assert acme.revenue == pytest.approx(4 * hours * 2.0)
    assert acme.idle_gpu_hours == pytest.approx(40 / 60)
    assert acme.unavailable_gpu_hours == pytest.approx(10 / 60 + 30 / 60)  # GPU 2 lost 180-190; GPU 3 faulty 60-90
    # GPU 2 reports nothing for its last 10 lost minutes in the period, and the counter delta that
    # would cover them comes after the period: that energy is unknown, not invented.
    assert acme.energy_kwh == pytest.approx(hours * (2 * 0.4 + 0.3) + (hours - 10 / 60) * 0.4)
    assert report["Idle Inc"].usage.allocated_gpu_hours == 0.0
    document = report["Acme"].as_dict()
    assert document["customer"] == "Acme" and document["contracts"][0]["contract"] == "c"


def test_report_for_one_customer(repo):
    [only] = usage_report(repo, T0_MS, T0_MS + HOUR_MS, customer="Acme")
    assert only.customer.name == "Acme"
    assert only.usage.idle_gpu_hours == 0.0  # the dips are later
    assert [r.customer.name for r in usage_report(repo, T0_MS, T0_MS + HOUR_MS, search="idle")] == ["Idle Inc"]


def test_idle_summaries_of_final_hours_give_the_same_report(repo):
    """The first report stores idle summaries of hours whose minute rollups are final; reports
    that use them agree with the minute-by-minute result."""
    start, end = T0_MS, T0_MS + 4 * HOUR_MS
    repo.conn.execute("DELETE FROM idle_hours")
    first = [r.as_dict() for r in usage_report(repo, start, end)]
    stored = repo.conn.execute("SELECT hour_ms, head_ms, tail_ms, inner_ms FROM idle_hours ORDER BY hour_ms").fetchall()
    final = repo.conn.execute("SELECT value FROM meta WHERE key = 'rolled_1m_until_ms'").fetchone()
    if final is not None and int(final[0]) >= T0_MS + 3 * HOUR_MS:
        # GPU 0's dips open hours 1 and 2: idle heads of 25 and 40 minutes, nothing inside.
        assert stored == [(T0_MS + HOUR_MS, 25 * 60_000, 0, 0), (T0_MS + 2 * HOUR_MS, 40 * 60_000, 0, 0)]
    else:
        assert stored == []
    assert [r.as_dict() for r in usage_report(repo, start, end)] == first
    assert first[0]["idle_gpu_hours"] == pytest.approx(40 / 60)


def test_idle_summary_of_one_hour():
    from gpuops.core.allocations.usage_history import idle_summary

    minutes = T0_MS + np.arange(60) * 60_000
    idle = np.zeros(60, bool)
    idle[:5] = idle[10:45] = idle[50:55] = idle[58:] = True  # head 5, inner 35 (a window), 5 (not), tail 2
    assert idle_summary(minutes, idle, T0_MS, 30 * 60_000) == (5 * 60_000, 2 * 60_000, 35 * 60_000)
    assert idle_summary(minutes, np.ones(60, bool), T0_MS, 30 * 60_000) == (3_600_000, 0, 0)
    # A missing minute is not idle: it splits the run.
    assert idle_summary(np.delete(minutes, 30), np.ones(59, bool), T0_MS, 30 * 60_000) == (30 * 60_000, 29 * 60_000, 0)


def test_idle_windows_chain_across_summarized_hours():
    """A 20-minute idle tail and a 15-minute idle head of the next hour make one 35-minute window."""
    from gpuops.core.allocations.accounting import window_usage
    from gpuops.core.allocations.usage_history import Buckets

    starts = np.array([T0_MS, T0_MS + HOUR_MS], dtype=np.int64)
    b = Buckets(
        starts, starts + HOUR_MS, np.array([60.0, 60.0]), np.array([0.0, 0.0]), np.array([90.0, 90.0]),
        np.array([np.nan, np.nan]), np.array([300.0, 300.0]),
        np.array([0, 15 * 60_000]), np.array([20 * 60_000, 0]), np.array([0, 0]),
    )
    assert window_usage(b, T0_MS, T0_MS + 2 * HOUR_MS)["idle_gpu_hours"] == pytest.approx(35 / 60)
    shorter = Buckets(
        *(getattr(b, f) for f in ("start_ms", "end_ms", "util_avg", "util_min", "util_max", "energy_last_j", "power_avg_w")),
        np.array([0, 5 * 60_000]),
        np.array([20 * 60_000, 0]),
        np.array([0, 0]),
    )
    assert window_usage(shorter, T0_MS, T0_MS + 2 * HOUR_MS)["idle_gpu_hours"] == 0.0


def test_hours_before_the_history_are_unmeasured_not_idle(repo):
    """An allocation that began 3 h before the first reading: those hours are allocated (and
    billed) but unmeasured; utilization is over the measured hour only, and coverage says so."""
    from dataclasses import replace

    from gpuops.core.allocations.accounting import contract_usage

    contracts = {c.id: c for c in repo.contracts()}
    gpu1 = next(a for a in repo.allocations() if a.gpu_uuid == GPUS[1].uuid)
    early = replace(gpu1, start_ms=T0_MS - 3 * HOUR_MS)
    u = contract_usage(repo, [early], contracts, T0_MS - 3 * HOUR_MS, T0_MS + HOUR_MS)[gpu1.contract_id]
    assert u.allocated_gpu_hours == pytest.approx(4.0)
    # The hour holding the first poll (minute -1) is measured at the hourly rollup's resolution.
    assert 1.0 <= u.measured_gpu_hours <= 2.0
    assert u.utilization_pct == pytest.approx(50.0)
    assert 25.0 <= u.coverage_pct <= 50.0
    assert u.idle_gpu_hours == 0.0


def test_report_json_says_how_much_is_measured(repo):
    acme = usage_report(repo, T0_MS, T0_MS + 4 * HOUR_MS)[0].as_dict()
    assert acme["measured_gpu_hours"] == pytest.approx(4 * 4.0 - 20 / 60, abs=0.02)  # GPU 2 lost 20 minutes
    assert 97.0 < acme["coverage_pct"] < 100.0
    assert set(acme["contracts"][0]) >= {"measured_gpu_hours", "coverage_pct"}

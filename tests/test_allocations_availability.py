"""Unavailable time from faulty readings in the history (ECC, row remap failure, temperature),
on a small, exactly known history written through the store's writer."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpuops.core.allocations.accounting import contract_usage, usage_report
from gpuops.core.allocations.model import ContractType
from gpuops.core.store.writer import HistoryWriter
from gpuops.core.telemetry import GpuState
from tests.allocations_support import HOUR_MS, T0_MS, open_repo
from tests.samples import make_inventory, make_sample

MIN_S = 60.0
GPUS = make_inventory(4) + (replace(make_inventory(5)[4], slowdown_temp_c=None),)
ECC_EPISODE = range(30, 90)  # GPU 0: uncorrectable ECC errors, cleared by a reset at minute 90 (crosses an hour)
REMAP_FROM = 200  # GPU 1: row remap failure for good (RMA)
HOT = range(100, 115)  # GPU 2: over its 87 °C slowdown; exactly 87 °C at minute 115 (at slowdown counts)
ECC_3 = range(150, 210)  # GPU 3: uncorrectable ECC errors ...
LOST_3 = range(161, 180)  # ... and off the bus from 160:30 until minute 180
NO_LIMIT = 4  # GPU 4: 95 °C all along, but its inventory has no slowdown threshold


def _poll(minute: int, second: float = 0.0):
    ts = T0_MS / 1000 + minute * MIN_S + second
    lost_3 = minute in LOST_3 or (minute == LOST_3[0] - 1 and second > 0)
    temp_2 = 90.0 if minute in HOT else 87.0 if minute == HOT[-1] + 1 else 86.0 if minute == HOT[-1] + 2 else 60.0
    values = {
        "ecc_uncorrected_volatile": {0: 2.0 if minute in ECC_EPISODE else 0.0, 3: 1.0 if minute in ECC_3 else 0.0},
        "remapped_rows_failure": {1: 1.0 if minute >= REMAP_FROM else 0.0},
        "temp_c": {2: temp_2, NO_LIMIT: 95.0},
    }
    return make_sample(gpus=GPUS, ts=ts, values=values, states={3: GpuState.LOST} if lost_3 else {})


@pytest.fixture(scope="module", params=["head", "rolled-up"])
def repo(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("avail") / "history.sqlite"
    with HistoryWriter(path) as writer:
        for minute in range(-1, 6 * 60 + 10):
            writer.write(_poll(minute))
            if minute == LOST_3[0] - 1:
                writer.write(_poll(minute, 30.0))  # GPU 3 falls off the bus half way through this minute
        if request.param == "rolled-up":
            while writer.maintain(5.0):
                pass
    repository = open_repo(path)
    customer = repository.add_customer("Acme")
    contract = repository.add_contract(customer.id, "c", ContractType.RESERVED, "H100", 5, T0_MS, T0_MS + 4 * HOUR_MS, 2.0)
    repository.allocate(contract.id, [g.uuid for g in GPUS], T0_MS)
    yield repository
    repository.close()


def _unavailable_minutes_per_gpu(repo, start_ms, end_ms) -> list[float]:
    contracts = {c.id: c for c in repo.contracts()}
    by_uuid = {a.gpu_uuid: contract_usage(repo, [a], contracts, start_ms, end_ms)[a.contract_id] for a in repo.allocations()}
    return [by_uuid[g.uuid].unavailable_gpu_hours * 60 for g in GPUS]


def test_faulty_readings_count_by_the_minute(repo):
    minutes = _unavailable_minutes_per_gpu(repo, T0_MS, T0_MS + 4 * HOUR_MS)
    assert minutes == pytest.approx([
        60.0,  # ECC episode 30-90, across the hour boundary, until the counter reads 0 again
        40.0,  # remap failure from minute 200 to the allocation's end at 240
        16.0,  # 15 minutes over slowdown and one at it; 86 °C is not
        60.0,  # ECC 150-161 (the minute it was lost in read ECC first), lost 160:30-180, ECC 180-210: once
        0.0,  # no threshold, no thermal fault
    ])


def test_faulty_readings_in_a_clipped_report(repo):
    start, end = T0_MS + HOUR_MS, T0_MS + 3 * HOUR_MS + 10 * 60_000  # minutes 60-190
    [acme] = usage_report(repo, start, end)
    # GPU 0: 60-90; GPU 1: nothing before 200; GPU 2: 100-116; GPU 3: 150-190, lost or faulty.
    assert acme.usage.unavailable_gpu_hours * 60 == pytest.approx(30 + 16 + 40)
    assert acme.usage.availability_pct == pytest.approx(100 * (1 - 86 / (5 * 130)))
    assert acme.as_dict()["unavailable_gpu_hours"] == pytest.approx(86 / 60, abs=1e-6)

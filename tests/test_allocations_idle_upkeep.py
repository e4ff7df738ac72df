"""Idle summaries kept by the history's maintenance as it rolls up minutes (the rollup listener
that core/allocations registers), checked against the summaries a report computes itself."""

from __future__ import annotations

import pytest

from gpuops.core.allocations.accounting import usage_report
from gpuops.core.allocations.model import ContractType
from gpuops.core.store.writer import HistoryWriter
from tests.allocations_support import HOUR_MS, T0_MS, open_repo
from tests.samples import make_inventory, make_sample

MINUTE_MS = 60_000
GPUS = make_inventory(2)
# GPU 0 idles for 45 minutes across the end of hour 1, and for 35 minutes inside hour 4.
IDLE_MINUTES = set(range(90, 135)) | set(range(250, 285))


def _poll(minute: int):
    util = 0.0 if minute in IDLE_MINUTES else 90.0
    return make_sample(gpus=GPUS, ts=T0_MS / 1000 + minute * 60, values={"util_gpu_pct": {0: util, 1: 90.0}})


@pytest.fixture()
def repo(tmp_path):
    path = tmp_path / "history.sqlite"
    with HistoryWriter(path) as writer:
        for minute in range(-1, 6 * 60 + 10):  # past 6 h: the first 1-minute window is rolled up
            writer.write(_poll(minute))
        while writer.maintain(5.0):
            pass
    repository = open_repo(path)
    yield repository
    repository.close()


def _summaries(repo) -> list[tuple]:
    return repo.conn.execute(
        "SELECT gpu_id, hour_ms, head_ms, tail_ms, inner_ms FROM idle_hours ORDER BY gpu_id, hour_ms"
    ).fetchall()


def test_maintenance_stores_the_idle_summaries_of_hours_crossing_the_threshold(repo):
    gpu0 = repo.conn.execute("SELECT id FROM gpus WHERE uuid = ?", (GPUS[0].uuid,)).fetchone()[0]
    assert _summaries(repo) == [
        (gpu0, T0_MS + 1 * HOUR_MS, 0, 30 * MINUTE_MS, 0),  # idle from minute 90: a 30-minute tail
        (gpu0, T0_MS + 2 * HOUR_MS, 15 * MINUTE_MS, 0, 0),  # ... and a 15-minute head
        (gpu0, T0_MS + 4 * HOUR_MS, 0, 0, 35 * MINUTE_MS),  # a 35-minute window inside
    ]


def test_reports_agree_with_and_without_the_kept_summaries(repo):
    customer = repo.add_customer("Acme")
    contract = repo.add_contract(customer.id, "c", ContractType.RESERVED, "H100", 2, T0_MS, T0_MS + 6 * HOUR_MS, 2.0)
    repo.allocate(contract.id, [g.uuid for g in GPUS], T0_MS)
    kept = _summaries(repo)
    with_kept = [r.as_dict() for r in usage_report(repo, T0_MS, T0_MS + 6 * HOUR_MS)]
    assert _summaries(repo) == kept  # nothing left for the report to compute
    repo.conn.execute("DELETE FROM idle_hours")
    recomputed = [r.as_dict() for r in usage_report(repo, T0_MS, T0_MS + 6 * HOUR_MS)]
    assert recomputed == with_kept
    assert _summaries(repo) == kept  # the report's own summaries are the listener's
    assert with_kept[0]["idle_gpu_hours"] == pytest.approx((45 + 35) / 60)

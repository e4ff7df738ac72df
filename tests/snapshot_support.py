"""A history database with recent polls, a customer holding some GPUs and a firing alert: what
a snapshot reads besides the live sample."""

from __future__ import annotations

import time
from pathlib import Path

from gpuops.core.alerts.model import Alert, AlertChange, AlertChanges, AlertState, ChangeKind, Severity
from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.store.connection import open_database
from gpuops.core.store.writer import HistoryWriter
from gpuops.core.telemetry import FleetSample
from tests.samples import make_inventory, make_sample

N_GPUS = 16
#: GPU with uncorrectable ECC errors: critical health, and the one alert.
FAILING = 2
ALLOCATED = (0, 1, 2, 3)
CUSTOMER = "Acme Research"
CONTRACT = "acme-h100-2026"
ALERT_SUMMARY = "3 uncorrectable ECC errors"

GPUS = make_inventory(N_GPUS)


def recent_sample(ts: float) -> FleetSample:
    return make_sample(
        gpus=GPUS, ts=ts, values={"ecc_uncorrected_volatile": {FAILING: 3.0}, "util_gpu_pct": {0: 20.0, 1: 80.0}}
    )


def make_snapshot_history(path: Path) -> Path:
    """Ten minutes of polls (every 10 s) ending just now, then the allocations and the alert."""
    now = time.time()
    with HistoryWriter(path) as writer:
        for k in range(60, -1, -1):
            writer.write(recent_sample(now - 10 * k - 1))
    repo = AllocationRepository.open(path, user="tester")
    try:
        customer = repo.add_customer(CUSTOMER)
        start_ms = round((now - 86_400) * 1000)
        contract = repo.add_contract(customer.id, CONTRACT, "reserved", "H100", len(ALLOCATED), start_ms, None, 2.5)
        repo.allocate(contract.id, [GPUS[i].uuid for i in ALLOCATED], start_ms, confirm=True)
    finally:
        repo.close()
    conn, _ = open_database(path, create=False)
    try:
        from gpuops.core.alerts.persistence import AlertStore

        gpu = GPUS[FAILING]
        alert = Alert(
            id=1, rule="gpu_ecc_uncorrectable", key=gpu.uuid, severity=Severity.CRITICAL, state=AlertState.FIRING,
            labels={"gpu": gpu.uuid, "node": gpu.node}, summary=ALERT_SUMMARY, runbook="", pending_at=now - 120,
            started_at=now - 120, last_true_at=now,
        )
        AlertStore(conn).apply(AlertChanges(ts=now, changes=(AlertChange(ChangeKind.FIRING, alert),)))
    finally:
        conn.close()
    return path

"""`gpuops contracts`, run as a separate process (`python -m gpuops contracts ...`) on a temp history."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gpuops.core.allocations.model import ContractStatus, ContractType
from tests.allocations_support import DAY_MS, T0_MS, make_history, mixed_inventory, open_repo

GPUS = mixed_inventory(2, 2)


def gpuops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuops", "contracts", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def db(tmp_path):
    path = make_history(tmp_path / "history.sqlite", GPUS)
    repo = open_repo(path)
    repo.add_customer("Acme")
    repo.close()
    return path


def _add(
    db, *extra: str, customer="Acme", name="train", ctype="reserved", end="2026-02-01T00:00:00Z"
) -> subprocess.CompletedProcess:
    return gpuops(
        "add", "--db", str(db), "--customer", customer, "--name", name, "--type", ctype, "--model", "NVIDIA H100 80GB HBM3",
        "--gpus", "2", "--start", "2026-01-01T00:00:00Z", "--end", end, "--price-per-gpu-hour", "2.5", *extra,
    )


def _contracts(db):
    repo = open_repo(db)
    try:
        return repo.contracts(), repo.customers(), repo.audit_log()
    finally:
        repo.close()


def test_adds_every_type_and_lists_them_as_json(db):
    assert _add(db, name="res").returncode == 0
    assert _add(db, name="ondemand", ctype="on_demand", end="").returncode == 0
    assert _add(db, name="cheap", ctype="spot").returncode == 0
    made = _add(db, "--equity-terms", "0.5% of Series A", "--compute-value-credited", "120000", customer="Startup", name="seed",
                ctype="compute_for_equity")
    assert made.returncode == 0, made.stderr
    assert "customer 'Startup' added" in made.stdout

    listed = gpuops("list", "--json", "--db", str(db))
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["customer"], r["name"], r["type"]) for r in rows] == [
        ("Acme", "cheap", "spot"), ("Acme", "ondemand", "on_demand"), ("Acme", "res", "reserved"),
        ("Startup", "seed", "compute_for_equity"),
    ]
    seed = rows[-1]
    assert seed["equity_terms"] == "0.5% of Series A" and seed["compute_value_credited"] == 120000.0
    assert seed["gpu_model"] == "H100" and seed["gpu_count"] == 2 and seed["price_per_gpu_hour"] == 2.5
    assert seed["start"] == "2026-01-01T00:00:00Z" and seed["end"] == "2026-02-01T00:00:00Z"
    assert rows[1]["end"] is None

    only = json.loads(gpuops("list", "--json", "--customer", "Startup", "--db", str(db)).stdout)
    assert [r["name"] for r in only] == ["seed"]

    contracts, _, log = _contracts(db)
    created = {e.after["name"]: e for e in log if e.entity == "contract" and e.action == "create"}
    assert set(created) == {"res", "ondemand", "cheap", "seed"}
    assert created["seed"].before is None and created["seed"].after["equity_terms"] == "0.5% of Series A"
    assert any(e.entity == "customer" and e.action == "create" and e.after["name"] == "Startup" for e in log)


def test_the_added_contract_can_hold_gpus_of_its_model(db):
    assert _add(db).returncode == 0
    repo = open_repo(db)
    try:
        (contract,) = repo.contracts()
        held = repo.allocate(contract.id, [GPUS[0].uuid, GPUS[1].uuid], T0_MS)
        assert len(held) == 2
    finally:
        repo.close()


def test_compute_for_equity_without_terms_is_refused_and_nothing_stored(db):
    refused = _add(db, customer="Newco", name="seed", ctype="compute_for_equity")
    assert refused.returncode == 1
    assert "nothing was changed" in refused.stderr
    assert "a compute-for-equity contract needs its equity terms" in refused.stderr
    contracts, customers, log = _contracts(db)
    assert contracts == [] and [c.name for c in customers] == ["Acme"]
    assert not [e for e in log if e.entity == "contract"]

    also = _add(db, name="seed", ctype="compute_for_equity")  # an existing customer: same refusal
    assert also.returncode == 1 and "equity terms" in also.stderr
    assert _contracts(db)[0] == []


def test_every_problem_is_listed_one_per_line(db):
    refused = gpuops(
        "add", "--db", str(db), "--customer", "Acme", "--name", "x", "--type", "spot", "--model", "A100", "--gpus", "0",
        "--start", "2026-02-01", "--end", "2026-01-01", "--price-per-gpu-hour", "-1",
    )
    assert refused.returncode == 1
    lines = refused.stderr.splitlines()
    assert "3 problem(s)" in lines[0]
    assert sorted(line.strip() for line in lines[1:]) == [
        "GPU count must be at least 1, not 0",
        "price per GPU-hour cannot be negative (-1.0)",
        "the contract must end after it starts",
    ]
    assert _contracts(db)[0] == []


def test_bad_time_and_duplicate_name_are_refused(db):
    bad = _add(db, end="next month")
    assert bad.returncode == 2 and "bad date 'next month'" in bad.stderr
    assert _add(db).returncode == 0
    again = _add(db)
    assert again.returncode == 1 and "already has a contract named 'train'" in again.stderr
    assert len(_contracts(db)[0]) == 1


def test_end_and_set_status_are_audited(db):
    assert _add(db, end="").returncode == 0
    ended = gpuops("end", "train", "--customer", "Acme", "--at", "2026-01-15T00:00:00Z", "--db", str(db))
    assert ended.returncode == 0, ended.stderr
    assert gpuops("set-status", "train", "--customer", "Acme", "--status", "suspended", "--db", str(db)).returncode == 0
    (contract,), _, log = _contracts(db)
    assert contract.end_ms == T0_MS + 14 * DAY_MS and contract.status is ContractStatus.SUSPENDED
    updates = sorted((e for e in log if e.entity == "contract" and e.action == "update"), key=lambda e: e.id)
    ends = T0_MS + 14 * DAY_MS
    assert [(e.before["end_ms"], e.after["end_ms"]) for e in updates] == [(None, ends), (ends, ends)]
    assert (updates[1].before["status"], updates[1].after["status"]) == ("active", "suspended")

    missing = gpuops("end", "nope", "--customer", "Acme", "--at", "2026-01-15", "--db", str(db))
    assert missing.returncode == 1 and "no contract named 'nope'" in missing.stderr


def test_ending_before_its_allocations_end_is_refused(db):
    assert _add(db).returncode == 0
    repo = open_repo(db)
    try:
        (contract,) = repo.contracts()
        repo.allocate(contract.id, [GPUS[0].uuid], T0_MS)
    finally:
        repo.close()
    refused = gpuops("end", "train", "--customer", "Acme", "--at", "2026-01-10", "--db", str(db))
    assert refused.returncode == 1 and "outside the new dates" in refused.stderr
    assert _contracts(db)[0][0].end_ms == T0_MS + 31 * DAY_MS


def test_read_only_refuses_every_change(db):
    refused = _add(db, "--read-only")
    assert refused.returncode == 1 and "read-only" in refused.stderr
    assert _add(db).returncode == 0
    ro = gpuops("set-status", "train", "--customer", "Acme", "--status", "ended", "--db", str(db), "--read-only")
    assert ro.returncode == 1 and "read-only" in ro.stderr
    (contract,), _, _ = _contracts(db)
    assert contract.status is ContractStatus.ACTIVE and contract.type is ContractType.RESERVED

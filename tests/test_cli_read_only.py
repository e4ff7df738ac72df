"""--read-only, before or after the subcommand, refuses every action that writes with one line
(exit 1), and read commands under it leave the database file byte for byte as it was."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from gpuops.core.alerts.service import AlertService
from gpuops.core.allocations.model import ContractType
from gpuops.core.store.connection import open_database
from tests.allocations_support import DAY_MS, T0_MS, make_history, mixed_inventory, open_repo
from tests.samples import make_sample

GPUS = mixed_inventory(2, 2)


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    """A history with a customer, a contract, an allocation, an active alert and a maintenance."""
    folder = tmp_path_factory.mktemp("ro")
    path = make_history(folder / "book.sqlite", GPUS)
    repo = open_repo(path)
    acme = repo.add_customer("Acme")
    contract = repo.add_contract(acme.id, "train", ContractType.RESERVED, "H100", 2, T0_MS, T0_MS + 30 * DAY_MS, 2.5)
    repo.allocate(contract.id, [GPUS[0].uuid], T0_MS)
    repo.close()
    conn, _ = open_database(path, create=False)
    service = AlertService(conn, poll_interval_s=5.0)
    service.process(make_sample(gpus=GPUS, ts=T0_MS / 1000, values={"ecc_uncorrected_volatile": {1: 1}}), T0_MS / 1000)
    assert service.store.active_alerts()
    service.store.start_maintenance(GPUS[2].node, T0_MS / 1000, "PSU")
    conn.close()
    (folder / "customers.csv").write_text("name,contact,notes\nDelta,,\n")
    (folder / "allocations.csv").write_text(
        f"customer,contract,contract_type,gpu_uuid,start,end,price_per_gpu_hour\nAcme,train,reserved,{GPUS[1].uuid},"
        "2026-01-10T00:00:00Z,,2.5\n"
    )
    return path


def state(path: Path) -> tuple[str, list[str]]:
    """The database file's bytes (hashed) and the files beside it."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), sorted(p.name for p in path.parent.iterdir())


def writing_actions(book: Path) -> dict[str, list[str]]:
    folder = book.parent
    return {
        "alerts ack": ["alerts", "ack", "1"],
        "alerts silence": ["alerts", "silence", "--match", "node=n1", "--for", "1h", "--comment", "x"],
        "alerts expire-silence": ["alerts", "expire-silence", "1"],
        "alerts maintenance start": ["alerts", "maintenance", "start", GPUS[0].node],
        "alerts maintenance end": ["alerts", "maintenance", "end", GPUS[2].node],
        "alerts rules import": ["alerts", "rules", "import", str(folder / "rules.json")],
        "customers import": ["customers", "import", str(folder / "customers.csv")],
        "allocations import": ["allocations", "import", str(folder / "allocations.csv")],
        "contracts add": [
            "contracts", "add", "--customer", "Acme", "--name", "x", "--type", "spot", "--model", "H100", "--gpus", "1",
            "--start", "2026-01-01T00:00:00Z", "--end", "", "--price-per-gpu-hour", "1",
        ],
        "contracts end": ["contracts", "end", "train", "--customer", "Acme", "--at", "2026-01-20T00:00:00Z"],
        "contracts set-status": ["contracts", "set-status", "train", "--customer", "Acme", "--status", "suspended"],
        "collect": ["collect", "--once", "--source", "demo:8"],
    }


READS = {
    "alerts": ["alerts", "--all"],
    "alerts silences": ["alerts", "silences"],
    "alerts rules export": ["alerts", "rules", "export", "-o", "-"],
    "customers export": ["customers", "export"],
    "allocations export": ["allocations", "export"],
    "contracts list": ["contracts", "list"],
    "usage": ["usage", "--since", "2026-01-01", "--until", "2026-01-02", "--format", "json"],
    "audit export": ["audit", "export"],
    "export history": ["export", "--format", "json", "--since", "2025-12-31", "--until", "2026-01-02", "-o", "-"],
    "export snapshot": ["export", "--format", "csv", "--source", "demo:8", "-o", "-"],
}


def gpuops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gpuops", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("position", ["before", "after"])
@pytest.mark.parametrize(
    "action",
    ["alerts ack", "alerts silence", "alerts expire-silence", "alerts maintenance start", "alerts maintenance end",
     "alerts rules import", "customers import", "allocations import", "contracts add", "contracts end",
     "contracts set-status", "collect"],
)
def test_every_writing_action_is_refused_with_one_line_and_changes_no_byte(book, action, position) -> None:
    (book.parent / "rules.json").write_text(gpuops("alerts", "rules", "export", "-o", "-", "--db", str(book)).stdout)
    before = state(book)
    argv = writing_actions(book)[action]
    options = ["--read-only", "--db", str(book)]
    result = gpuops(*(options + argv if position == "before" else argv + options))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("gpuops:")]
    assert len(lines) == 1 and "read-only" in lines[0], result.stderr
    assert state(book) == before


@pytest.mark.parametrize("command", READS)
def test_read_commands_under_read_only_leave_the_database_as_it_was(book, command) -> None:
    before = state(book)
    result = gpuops("--read-only", "--db", str(book), *READS[command])
    assert result.returncode == 0, result.stderr
    assert result.stdout
    assert state(book) == before


def test_read_only_never_creates_a_history(tmp_path) -> None:
    missing = tmp_path / "none.sqlite"
    for argv in (["alerts"], ["customers", "export"], ["contracts", "list"], ["export", "--format", "csv", "-o", "-"]):
        result = gpuops(*argv, "--read-only", "--db", str(missing))
        assert result.returncode == 1 and "no history" in result.stderr, (argv, result.stderr)
    assert list(tmp_path.iterdir()) == []

"""The customers, allocations, usage and audit commands, run in-process through gpuops.cli.main."""

from __future__ import annotations

import csv
import json

import pytest

from gpuops.cli import main
from gpuops.core.allocations.model import ContractType
from tests.allocations_support import DAY_MS, T0_MS, make_history, mixed_inventory, open_repo

GPUS = mixed_inventory(4, 4)


@pytest.fixture
def db(tmp_path):
    path = make_history(tmp_path / "history.sqlite", GPUS)
    repo = open_repo(path)
    acme = repo.add_customer("Acme", "ops@acme.example")
    train = repo.add_contract(acme.id, "train", ContractType.RESERVED, "H100", 2, T0_MS, T0_MS + 30 * DAY_MS, 2.5)
    repo.allocate(train.id, [GPUS[0].uuid, GPUS[1].uuid], T0_MS)
    beta = repo.add_customer("Beta")
    spot = repo.add_contract(beta.id, "spot", ContractType.SPOT, "A100", 1, T0_MS, None, 0.8)
    repo.allocate(spot.id, [GPUS[4].uuid], T0_MS + DAY_MS)
    repo.close()
    return path


def test_usage_json_has_one_object_per_customer(db, capsys):
    code = main(
        ["usage", "--db", str(db), "--since", "2026-01-01T00:00:00Z", "--until", "2026-01-03T00:00:00Z", "--format", "json"]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["customer"] for r in report] == ["Acme", "Beta"]
    for row in report:
        for key in ("allocated_gpu_hours", "used_gpu_hours", "idle_gpu_hours", "energy_kwh", "revenue"):
            assert isinstance(row[key], (int, float)), key
    acme, beta = report
    assert acme["allocated_gpu_hours"] == pytest.approx(96.0) and acme["revenue"] == pytest.approx(240.0)
    assert beta["allocated_gpu_hours"] == pytest.approx(24.0) and beta["revenue"] == pytest.approx(19.2)


def test_usage_csv_for_one_customer(db, capsys):
    assert (
        main(
            ["usage", "--db", str(db), "--since", "2026-01-01", "--until", "2026-01-02", "--customer", "Beta", "--format", "csv"]
        )
        == 0
    )
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert [(r["customer"], float(r["allocated_gpu_hours"])) for r in rows] == [("Beta", 0.0)]
    assert main(["usage", "--db", str(db), "--since", "1d", "--customer", "Nobody", "--format", "csv"]) == 1
    assert "no customer named 'Nobody'" in capsys.readouterr().err


def test_allocations_export_import_round_trip_and_all_or_nothing(db, tmp_path, capsys):
    exported = tmp_path / "alloc.csv"
    assert main(["allocations", "export", "-o", str(exported), "--db", str(db)]) == 0
    assert main(["allocations", "import", str(exported), "--db", str(db)]) == 0
    assert "0 allocation(s) added (3 already stored)" in capsys.readouterr().out

    bad = tmp_path / "bad.csv"
    lines = exported.read_text().splitlines()
    lines.append(f"Gamma,new,spot,{GPUS[2].uuid},2026-01-01T00:00:00Z,,1.0")  # fine on its own
    lines.append(f"Gamma,new,spot,{GPUS[0].uuid},2026-01-02T00:00:00Z,2026-01-01T00:00:00Z,1.0")  # ends before it starts
    lines.append("Gamma,new,spot,GPU-unknown,yesterday,,1.0")
    bad.write_text("\n".join(lines) + "\n")
    assert main(["allocations", "import", str(bad), "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert "nothing was changed" in err
    assert "row 6: end 2026-01-01T00:00:00Z is not after start" in err
    assert "row 7: start: bad date 'yesterday'" in err
    repo = open_repo(db)
    try:
        assert repo.customer_named("Gamma") is None and len(repo.allocations()) == 3
    finally:
        repo.close()


def test_read_only_import_is_refused(db, tmp_path, capsys):
    path = tmp_path / "c.csv"
    path.write_text("name,contact,notes\nDelta,,\n")
    assert main(["customers", "import", str(path), "--db", str(db), "--read-only"]) == 1
    assert "read-only" in capsys.readouterr().err
    assert main(["customers", "import", str(path), "--db", str(db)]) == 0


def test_audit_export(db, tmp_path):
    out = tmp_path / "audit.csv"
    assert main(["audit", "export", "-o", str(out), "--db", str(db)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["entity"] for r in rows][:3] == ["customer", "contract", "allocation"]
    assert all(r["user"] == "tester" for r in rows)
    assert json.loads(rows[1]["after"])["price_per_gpu_hour"] == 2.5 and rows[1]["before"] == ""
    assert main(["audit", "export", "-o", str(out), "--db", str(db)]) == 2  # exists, no --force

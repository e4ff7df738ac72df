"""CSV import/export: all-or-nothing with every problem named by row; export then import is a no-op."""

from __future__ import annotations

import pytest

from gpuops.core.allocations.csv_io import (
    ALLOCATION_COLUMNS,
    export_allocations,
    export_customers,
    import_allocations,
    import_customers,
)
from gpuops.core.allocations.errors import NeedsConfirmation, ValidationError
from gpuops.core.allocations.model import ContractType
from tests.allocations_support import DAY_MS, T0_MS, make_history, mixed_inventory, open_repo

GPUS = mixed_inventory(8, 8)
H100 = [g.uuid for g in GPUS[:8]]
A100 = [g.uuid for g in GPUS[8:]]
HEADER = ",".join(ALLOCATION_COLUMNS)


@pytest.fixture
def repo(tmp_path):
    repository = open_repo(make_history(tmp_path / "history.sqlite", GPUS, lost=(15,)))
    yield repository
    repository.close()


def _write(tmp_path, *lines, name="in.csv"):
    path = tmp_path / name
    path.write_text("\n".join((HEADER, *lines)) + "\n", encoding="utf-8")
    return path


def _by_row(problems):
    rows: dict[int, str] = {}
    for p in problems:
        rows[p.row] = rows.get(p.row, "") + p.message + "\n"
    return rows


def test_import_creates_customers_contracts_and_allocations(repo, tmp_path):
    path = _write(
        tmp_path,
        f"Acme,train-1,reserved,{H100[0]},2026-01-01T00:00:00Z,2026-02-01T00:00:00Z,2.5",
        f"Acme,train-1,reserved,{H100[1]},2026-01-01T00:00:00Z,2026-02-01T00:00:00Z,2.5",
        f"Beta,infer,on_demand,{A100[0]},2026-01-05T00:00:00Z,,1.25",
    )
    summary = import_allocations(repo, path)
    assert (summary.added, summary.customers_created, summary.contracts_created) == (3, 2, 2)
    [acme] = repo.contracts(repo.customer_named("Acme").id)
    assert (acme.type, acme.gpu_model, acme.gpu_count, acme.start_ms, acme.end_ms) == (
        ContractType.RESERVED, "H100", 2, T0_MS, T0_MS + 31 * DAY_MS,
    )
    [beta] = repo.contracts(repo.customer_named("Beta").id)
    assert beta.end_ms is None and beta.gpu_model == "A100"
    assert {e.action for e in repo.audit_log()} == {"create"}
    assert len(repo.audit_log(entity="allocation")) == 3


def test_any_error_rejects_the_whole_file_and_lists_every_row(repo, tmp_path):
    good = f"Acme,train-1,reserved,{H100[0]},2026-01-01T00:00:00Z,2026-02-01T00:00:00Z,2.5"
    path = _write(
        tmp_path,
        good,  # row 2
        "Acme,train-1,reserved,GPU-nobody-knows,2026-01-01T00:00:00Z,2026-02-01T00:00:00Z,2.5",  # row 3: unknown GPU
        f"Acme,train-1,reserved,{H100[1]},2026-13-01,2026-02-01T00:00:00Z,2.5",  # row 4: bad date
        f"Acme,train-1,reserved,{H100[0]},2026-01-15T00:00:00Z,2026-02-01T00:00:00Z,2.5",  # row 5: overlaps row 2
        f"Acme,train-1,lease,{H100[2]},2026-01-01T00:00:00Z,,2.5",  # row 6: bad type
        f"Acme,train-1,reserved,{H100[3]},2026-01-01T00:00:00Z,,abc",  # row 7: bad price
    )
    with pytest.raises(ValidationError) as caught:
        import_allocations(repo, path)
    rows = _by_row(caught.value.problems)
    assert set(rows) == {3, 4, 5, 6, 7}
    assert "unknown GPU GPU-nobody-knows" in rows[3]
    assert "bad date '2026-13-01'" in rows[4]
    assert "allocated twice" in rows[5] and "(row 2)" in rows[5]
    assert "unknown contract_type 'lease'" in rows[6]
    assert "bad price_per_gpu_hour 'abc'" in rows[7]
    assert repo.customers() == [] and repo.allocations() == [] and repo.audit_log() == []


def test_rows_over_an_existing_contracts_count_are_rejected(repo, tmp_path):
    acme = repo.add_customer("Acme")
    repo.add_contract(acme.id, "small", "spot", "H100", 1, T0_MS, T0_MS + 10 * DAY_MS, 1.0)
    path = _write(
        tmp_path,
        f"Acme,small,spot,{H100[0]},2026-01-01T00:00:00Z,,1.0",
        f"Acme,small,spot,{H100[1]},2026-01-02T00:00:00Z,,1.0",
        f"Acme,small,reserved,{H100[2]},2026-01-20T00:00:00Z,,1.0",
    )
    with pytest.raises(ValidationError) as caught:
        import_allocations(repo, path)
    rows = _by_row(caught.value.problems)
    assert "would hold 2 GPUs" in rows[3] and "more than the 1 it bought" in rows[3]
    assert "is spot at 1.0 per GPU-hour, this row says reserved" in rows[4]
    assert 2 not in rows
    assert repo.allocations() == []


def test_lost_gpus_in_an_import_need_confirmation(repo, tmp_path):
    path = _write(tmp_path, f"Acme,x,spot,{A100[7]},2026-01-01T00:00:00Z,,1.0")
    with pytest.raises(NeedsConfirmation):
        import_allocations(repo, path)
    assert repo.customers() == []
    assert import_allocations(repo, path, confirm=True).added == 1


def test_export_then_import_is_a_no_op(repo, tmp_path):
    acme = repo.add_customer("Acme", "ops@acme.example", "pays late")
    train = repo.add_contract(acme.id, "train", "reserved", "H100", 4, T0_MS, T0_MS + 30 * DAY_MS, 2.35)
    equity = repo.add_contract(acme.id, "seed", "compute_for_equity", "A100", 2, T0_MS, None, 0.0, equity_terms="0.5% SAFE")
    repo.allocate(train.id, H100[:3], T0_MS)
    repo.allocate(equity.id, A100[:2], T0_MS + DAY_MS + 123)
    repo.release([1], T0_MS + 2 * DAY_MS)
    first = tmp_path / "a.csv"
    assert export_allocations(repo, first) == 5
    before = (repo.allocations(), len(repo.audit_log()))
    summary = import_allocations(repo, first)
    assert (summary.added, summary.unchanged) == (0, 5)
    assert (repo.allocations(), len(repo.audit_log())) == before
    second = tmp_path / "b.csv"
    export_allocations(repo, second)
    assert first.read_text() == second.read_text()
    assert ",,0.0\n" in first.read_text()  # open-ended equity allocation: empty end


def test_export_imports_into_an_empty_history(repo, tmp_path):
    acme = repo.add_customer("Acme")
    train = repo.add_contract(acme.id, "train", "reserved", "H100", 2, T0_MS, T0_MS + 30 * DAY_MS, 2.5)
    repo.allocate(train.id, H100[:2], T0_MS)
    path = tmp_path / "a.csv"
    export_allocations(repo, path)
    other = open_repo(make_history(tmp_path / "other.sqlite", GPUS))
    try:
        assert import_allocations(other, path).added == 2
        again = tmp_path / "b.csv"
        export_allocations(other, again)
        assert again.read_text() == path.read_text()
    finally:
        other.close()


def test_customers_round_trip_and_updates(repo, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text('name,contact,notes\nAcme,ops@acme.example,"net 30, EUR"\nBeta,,\n', encoding="utf-8")
    assert import_customers(repo, path).customers_created == 2
    out = tmp_path / "out.csv"
    export_customers(repo, out)
    assert out.read_text() == path.read_text()
    assert import_customers(repo, out).added == 0
    path.write_text("name,contact,notes\nAcme,billing@acme.example,\nAcme,x,\n,y,\n", encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        import_customers(repo, path)
    assert {p.row for p in caught.value.problems} == {3, 4}
    assert repo.customer_named("Acme").contact == "ops@acme.example"


def test_wrong_header_is_refused(repo, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("customer,gpu\nAcme,GPU-1\n")
    with pytest.raises(ValidationError, match="header must be exactly"):
        import_allocations(repo, path)

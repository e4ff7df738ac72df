"""Every CSV gpuops writes is safe to open in a spreadsheet: text cells that a spreadsheet would
evaluate (=, +, -, @, tab, carriage return first) get a leading apostrophe, numbers gpuops
computed stay numbers, and importing our own export gives back the original text exactly."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

import pytest

from gpuops.cli import main
from gpuops.core.allocations.audit import export_audit_csv
from gpuops.core.allocations.csv_io import export_allocations, export_customers, import_allocations, import_customers
from gpuops.core.allocations.index import Holder
from gpuops.core.csv_cells import FORMULA_STARTS, escape, unescape
from gpuops.core.snapshot import make_snapshot, write_snapshot_csv
from gpuops.core.store import HistoryWriter
from tests.allocations_support import DAY_MS, T0_MS, make_history, mixed_inventory, open_repo
from tests.samples import make_inventory, make_sample

HOSTILE = ("=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A9)", "\tTAB", "\rCR", "'=already quoted", "''-twice")
HARMLESS = ("Helix AI", "'apostrophe first", "a=b", "", "2026-01-01T00:00:00Z", "  spaced")
GPUS = mixed_inventory(8, 0)


def _cells(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _dangerous(text: str) -> bool:
    return text.startswith(FORMULA_STARTS)


@pytest.mark.parametrize("text", HOSTILE + HARMLESS)
def test_escape_is_safe_and_unescape_undoes_it_exactly(text):
    escaped = escape(text)
    assert not _dangerous(escaped)
    assert unescape(escaped) == text
    if not _dangerous(text.lstrip("'")):
        assert escaped == text  # only what a spreadsheet would evaluate is touched


def test_customers_export_is_escaped_and_imports_back_to_the_same_text(tmp_path):
    source = open_repo(make_history(tmp_path / "a.sqlite", GPUS))
    for text in HOSTILE:
        source.add_customer(text, contact=text, notes=f"{text}\nsecond line")
    exported = tmp_path / "customers.csv"
    export_customers(source, exported)
    rows = _cells(exported)[1:]
    assert len(rows) == len(HOSTILE)
    assert not [cell for row in rows for cell in row if _dangerous(cell)]

    target = open_repo(make_history(tmp_path / "b.sqlite", GPUS))
    import_customers(target, exported)
    as_text = [(c.name, c.contact, c.notes) for c in source.customers()]
    assert [(c.name, c.contact, c.notes) for c in target.customers()] == as_text
    assert import_customers(target, exported).added == 0  # a no-op the second time
    source.close()
    target.close()


def test_allocations_export_escapes_names_keeps_prices_numeric_and_round_trips(tmp_path):
    source = open_repo(make_history(tmp_path / "a.sqlite", GPUS))
    for n, text in enumerate(HOSTILE[:4]):
        customer = source.add_customer(text)
        contract = source.add_contract(customer.id, f"-contract {n}", "reserved", "H100", 1, T0_MS, T0_MS + DAY_MS, 2.5)
        source.allocate(contract.id, [GPUS[n].uuid], T0_MS)
    exported = tmp_path / "allocations.csv"
    assert export_allocations(source, exported) == 4
    header, *rows = _cells(exported)
    assert not [cell for row in rows for cell in row if _dangerous(cell)]
    assert {row[header.index("price_per_gpu_hour")] for row in rows} == {"2.5"}

    target = open_repo(make_history(tmp_path / "b.sqlite", GPUS))
    summary = import_allocations(target, exported)
    assert (summary.added, summary.customers_created) == (4, 4)
    assert sorted(c.name for c in target.customers()) == sorted(HOSTILE[:4])
    assert sorted(c.name for c in target.contracts()) == [f"-contract {n}" for n in range(4)]
    assert import_allocations(source, exported).added == 0
    source.close()
    target.close()


def test_audit_export_escapes_a_hostile_user_name(tmp_path):
    repo = open_repo(make_history(tmp_path / "a.sqlite", GPUS))
    repo.user = "=HYPERLINK(\"http://x\")"
    repo.add_customer("@evil")
    exported = tmp_path / "audit.csv"
    export_audit_csv(repo.conn, exported)
    header, row = _cells(exported)
    assert row[header.index("user")] == "'=HYPERLINK(\"http://x\")"
    assert row[header.index("after")].startswith("{")
    assert not [cell for cell in row if _dangerous(cell)]
    repo.close()


def test_snapshot_csv_escapes_text_and_keeps_negative_readings_numbers():
    gpus = tuple(replace(g, node="=node|evil", serial="-0001") for g in make_inventory(2))
    sample = make_sample(gpus=gpus, values={"temp_c": {0: -5.0}})
    holders = {gpus[0].uuid: Holder(1, "+contract", "@customer")}
    out = io.StringIO()
    write_snapshot_csv(make_snapshot("test", True, sample, holders=holders), out)
    header, first, _second = list(csv.reader(io.StringIO(out.getvalue())))
    row = dict(zip(header, first, strict=True))
    assert (row["node"], row["serial"], row["customer"], row["contract"]) == ("'=node|evil", "'-0001", "'@customer", "'+contract")
    assert float(row["temp_c"]) == -5.0  # ours, numeric: not turned into text
    assert not [cell for cell in first if _dangerous(cell) and cell != row["temp_c"]]


def test_history_export_escapes_node_names_and_keeps_negative_values_numbers(tmp_path):
    gpus = tuple(replace(g, node="-node,1") for g in make_inventory(2))
    db = tmp_path / "history.sqlite"
    with HistoryWriter(db) as writer:
        writer.write(make_sample(gpus=gpus, ts=1_767_225_600.0, values={"temp_c": {1: -12.0}}))
    out = tmp_path / "history.csv"
    assert main(["export", "--db", str(db), "--format", "csv", "--since", "2026-01-01T00:00:00Z",
                 "--until", "2026-01-01T00:01:00Z", "-o", str(out)]) == 0
    header, *rows = _cells(out)
    assert [row[header.index("node")] for row in rows] == ["'-node,1", "'-node,1"]
    assert float(rows[1][header.index("temp_c")]) == -12.0


def test_usage_csv_escapes_customer_names(tmp_path, capsys):
    repo = open_repo(make_history(tmp_path / "a.sqlite", GPUS))
    customer = repo.add_customer("-2+3")
    contract = repo.add_contract(customer.id, "c", "reserved", "H100", 1, T0_MS, T0_MS + DAY_MS, 1.0)
    repo.allocate(contract.id, [GPUS[0].uuid], T0_MS)
    repo.close()
    out = tmp_path / "usage.csv"
    period = ["--since", "2026-01-01T00:00:00Z", "--until", "2026-01-02T00:00:00Z"]
    assert main(["usage", "--db", str(tmp_path / "a.sqlite"), *period, "--format", "csv", "-o", str(out)]) == 0
    header, row = _cells(out)
    assert row[header.index("customer")] == "'-2+3"
    assert float(row[header.index("allocated_gpu_hours")]) == 24.0

"""`gpuops nodes list|drain|maintenance|repair|rma|retire|burn-in|production`, run in-process."""

from __future__ import annotations

import csv
import json

import pytest

from gpuops.cli import main
from gpuops.commands.nodes import VERBS
from gpuops.core.alerts.persistence import AlertStore
from gpuops.core.allocations.model import ContractType
from gpuops.core.lifecycle import states
from gpuops.core.lifecycle.book import transitions
from gpuops.core.store.connection import open_read_only
from tests.allocations_support import DAY_MS, make_history, mixed_inventory, open_repo

GPUS = mixed_inventory(4, 4)  # node00: 4 H100, anode00: 4 A100


@pytest.fixture
def db(tmp_path):
    return make_history(tmp_path / "history.sqlite", GPUS)


def nodes(db, *argv) -> int:
    return main(["nodes", *argv, "--db", str(db)])


def listed(db, capsys) -> dict[str, dict]:
    capsys.readouterr()
    assert nodes(db, "list", "--format", "json") == 0
    return {row["node"]: row for row in json.loads(capsys.readouterr().out)}


def test_the_cli_verbs_are_the_lifecycle_verbs():
    assert set(VERBS) == set(states.VERBS)


def test_list_json_has_one_object_per_node_production_when_nothing_is_recorded(db, capsys):
    rows = listed(db, capsys)
    assert set(rows) == {"node00", "anode00"}
    assert {r["lifecycle"] for r in rows.values()} == {"production"}
    assert rows["node00"]["gpus"] == 4 and rows["node00"]["gpu_overrides"] == []


def test_every_verb_moves_the_node_and_the_list_shows_it(db, capsys):
    walk = [
        ("drain", [], "draining"), ("maintenance", ["--until", "2h"], "maintenance"), ("repair", [], "repair"),
        ("rma", ["--ticket", "NV-123", "--expected-back", "14d"], "rma"), ("burn-in", [], "burn_in"),
        ("production", [], "production"), ("drain", [], "draining"), ("retire", [], "retired"),
    ]
    for verb, extra, state in walk:
        assert nodes(db, verb, "node00", "--reason", f"step {verb}", *extra) == 0, capsys.readouterr().err
        assert f"-> {state} (step {verb}" in capsys.readouterr().out
        row = listed(db, capsys)["node00"]
        assert row["lifecycle"] == state and row["reason"] == f"step {verb}"
    conn, _ = open_read_only(db)
    try:
        rma = [t for t in transitions(conn, node="node00") if t.state.value == "rma"][0]
        assert rma.ticket == "NV-123" and rma.expected_ms is not None and rma.expected_ms - rma.ts_ms == pytest.approx(
            14 * DAY_MS, abs=5000
        )
    finally:
        conn.close()
    assert nodes(db, "production", "node00", "--reason", "undo") == 1
    assert "retired is final" in capsys.readouterr().err


def test_a_refused_transition_lists_its_problems_and_changes_nothing(db, capsys):
    assert nodes(db, "rma", "node00", "--reason", "dead") == 1
    err = capsys.readouterr().err
    assert "nothing was changed" in err and "cannot go from production to rma" in err and "case number" in err
    assert nodes(db, "drain", "node77", "--reason", "typo") == 1
    assert "unknown node 'node77'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["nodes", "drain", "node00", "--db", str(db)])
    assert usage.value.code == 2 and "--reason" in capsys.readouterr().err  # required
    assert nodes(db, "maintenance", "node00", "--reason", "x", "--until", "soon") == 2
    assert "--until 'soon'" in capsys.readouterr().err
    assert listed(db, capsys)["node00"]["lifecycle"] == "production"


@pytest.mark.parametrize("position", ["before", "after"])
def test_read_only_refuses_a_transition_with_one_line(db, capsys, position):
    argv = ["nodes", "drain", "node00", "--reason", "x", "--db", str(db)]
    argv = ["--read-only", *argv] if position == "before" else [*argv, "--read-only"]
    before = db.read_bytes()
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gpuops: read-only mode: cannot move node00 to draining"]
    assert db.read_bytes() == before


def test_a_gpu_override_is_listed_under_its_node_csv_too(db, capsys, tmp_path):
    gpu = GPUS[2].uuid
    assert nodes(db, "repair", "node00", "--gpu", gpu, "--reason", "row remap failure", "--ticket", "INC-7") == 0
    row = listed(db, capsys)["node00"]
    assert row["lifecycle"] == "production"
    assert [(o["gpu_uuid"], o["lifecycle"], o["ticket"]) for o in row["gpu_overrides"]] == [(gpu, "repair", "INC-7")]
    out = tmp_path / "nodes.csv"
    assert nodes(db, "list", "--format", "csv", "-o", str(out)) == 0
    by_node = {r["node"]: r for r in csv.DictReader(out.open())}
    assert by_node["node00"]["gpu_overrides"] == f"{gpu}=repair" and by_node["anode00"]["lifecycle"] == "production"
    assert nodes(db, "list", "-o", str(out)) == 2  # exists, no --force
    assert nodes(db, "list") == 0
    table = capsys.readouterr().out
    assert "node00" in table and "production (+1 GPU)" in table and "2 node(s)" in table


def test_maintenance_mutes_the_node_in_the_alerts_and_production_unmutes(db, capsys):
    assert nodes(db, "maintenance", "anode00", "--reason", "PSU swap", "--until", "2030-01-01T00:00:00Z") == 0
    conn, _ = open_read_only(db)
    try:
        assert "PSU swap" in AlertStore(conn, read_only=True).maintenance()["anode00"].comment
    finally:
        conn.close()
    assert nodes(db, "production", "anode00", "--reason", "done") == 0
    conn, _ = open_read_only(db)
    try:
        assert "anode00" not in AlertStore(conn, read_only=True).maintenance()
    finally:
        conn.close()


def test_retire_is_refused_while_a_customer_holds_a_gpu(db, capsys):
    repo = open_repo(db)
    acme = repo.add_customer("Acme")
    contract = repo.add_contract(acme.id, "train", ContractType.RESERVED, "H100", 1, repo.now_ms() - DAY_MS, None, 2.0)
    repo.allocate(contract.id, [GPUS[0].uuid], repo.now_ms() - DAY_MS)
    repo.close()
    assert nodes(db, "drain", "node00", "--reason", "old") == 0
    assert nodes(db, "retire", "node00", "--reason", "old") == 1
    assert "customers hold 1" in capsys.readouterr().err

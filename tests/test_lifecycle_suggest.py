"""Suggestions from health: each finding (XID 79, 48, 94/95, a row remap failure, uncorrectable
ECC over the threshold, lost twice in 24 h) suggests draining, then repair or RMA."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from gpuops.cli import main
from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.lifecycle.book import LifecycleBook, read_view
from gpuops.core.lifecycle.states import State
from gpuops.core.lifecycle.suggest import RulesError, load_rules, suggestions
from gpuops.core.sources.demo import DemoSource
from gpuops.core.store.connection import open_database, open_read_only
from gpuops.core.store.writer import HistoryWriter
from gpuops.core.telemetry import GpuState, XidEvent
from tests.samples import make_inventory, make_sample

GPUS = make_inventory(16)  # node00: 0-7, node01: 8-15
NOW = time.time() // 60 * 60
MINUTES = 30
LOST_AT = (5, 6, 15, 16)  # GPU 5 off the bus twice: minutes 5 and 15


def _poll(minute: int):
    xids = {10: ((0, 79), (1, 48), (2, 94), (7, 79), (8, 79)), 12: ((2, 95),)}.get(minute, ())
    values = {
        "remapped_rows_failure": {3: 1.0 if minute >= 20 else 0.0},
        "ecc_uncorrected_volatile": {4: 12.0 if minute >= 20 else 0.0, 6: 3.0},
    }
    states = {5: GpuState.LOST} if minute in LOST_AT else {}
    return make_sample(gpus=GPUS, ts=NOW - (MINUTES - minute) * 60, values=values, xids=xids, states=states)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    path = tmp_path_factory.mktemp("suggest") / "history.sqlite"
    with HistoryWriter(path) as writer:
        for minute in range(MINUTES + 1):
            writer.write(_poll(minute))
    conn, _ = open_database(path, create=False)
    book = LifecycleBook(AllocationRepository(conn, user="erin"))
    book.transition("node00", State.REPAIR, "already known", gpu_uuid=GPUS[7].uuid)
    book.transition("node01", State.DRAINING, "PSU")
    conn.close()
    return path


def test_each_finding_suggests_draining_then_repair_or_rma(history):
    found = {(s.gpu_uuid, s.rule): s for s in suggestions(history, NOW + 1)}
    by_gpu = {GPUS.index(next(g for g in GPUS if g.uuid == uuid)): (rule, s.then) for (uuid, rule), s in found.items()}
    assert by_gpu == {
        0: ("xid_79_fell_off_bus", State.REPAIR),
        1: ("xid_48_double_bit_ecc", State.REPAIR),
        2: ("xid_94_95_ecc_page_retirement", State.REPAIR),
        3: ("row_remap_failure", State.RMA),
        4: ("ecc_uncorrectable", State.RMA),
        5: ("lost_twice", State.REPAIR),
        8: ("xid_79_fell_off_bus", State.REPAIR),
    }  # GPU 6: 3 ECC errors, under 10; GPU 7: already in repair
    xid = found[(GPUS[2].uuid, "xid_94_95_ecc_page_retirement")]
    assert "XID 94 x1" in xid.reason and "XID 95 x1" in xid.reason
    assert "fell off the bus 2 times in 24 h" in found[(GPUS[5].uuid, "lost_twice")].reason
    assert found[(GPUS[8].uuid, "xid_79_fell_off_bus")].node_state is State.DRAINING
    assert found[(GPUS[0].uuid, "xid_79_fell_off_bus")].steps == (State.DRAINING, State.REPAIR)


def test_rules_are_configurable_and_auto_ones_drain_with_apply(history, tmp_path, capsys):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"window_h": 1, "rules": [
        {"name": "ecc_strict", "finding": "ecc_uncorrectable", "threshold": 2, "then": "rma", "auto": True},
        {"name": "bus", "finding": "xid", "codes": [79], "then": "repair"},
    ]}))
    loaded, window = load_rules(rules)
    assert window == 1 and loaded[0].auto and loaded[1].codes == (79,)
    found = suggestions(history, NOW + 1, loaded, window)
    assert sorted({(GPUS.index(next(g for g in GPUS if g.uuid == s.gpu_uuid)), s.rule) for s in found}) == [
        (0, "bus"), (4, "ecc_strict"), (6, "ecc_strict"), (8, "bus")
    ]
    capsys.readouterr()
    assert main(["nodes", "suggest", "--json", "--rules", str(rules), "--db", str(history)]) == 0
    assert {row["rule"] for row in json.loads(capsys.readouterr().out)} == {"bus", "ecc_strict"}
    assert main(["nodes", "suggest", "--rules", str(rules), "--apply", "--db", str(history), "--read-only"]) == 1
    assert main(["nodes", "suggest", "--rules", str(rules), "--apply", "--db", str(history)]) == 0
    conn, _ = open_read_only(history)
    try:
        node00 = read_view(conn).nodes["node00"]
        assert node00.state is State.DRAINING and "suggested by ecc_strict" in node00.reason
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"rules": [{"finding": "smoke"}]}, "finding must be one of"),
        ({"rules": [{"finding": "xid"}]}, "needs codes"),
        ({"rules": [{"finding": "lost", "then": "draining"}]}, "then must be repair or rma"),
        ({"rules": [{"finding": "ecc_uncorrectable", "threshold": -1}]}, "threshold must be"),
        ({"rules": [], "window_h": 0}, "window_h must be"),
        ({"rule": []}, "expected"),
    ],
)
def test_a_bad_rules_file_names_what_is_wrong(tmp_path, rules, message):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    with pytest.raises(RulesError, match=message):
        load_rules(path)


def test_the_collector_applies_the_automatic_rules(tmp_path, capsys):
    path = tmp_path / "collected.sqlite"
    now = time.time()
    first = DemoSource(16, seed=0).sample_at(now - 600)
    with HistoryWriter(path) as writer:
        writer.write(replace(first, xid_events=(XidEvent(first.gpus[9].uuid, 79, first.ts),)))
    repo = AllocationRepository.open(path)
    repo.add_customer("Acme")  # a book of its own: the demo book is not seeded over it
    repo.close()
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"name": "bus", "finding": "xid", "codes": [79], "auto": True}]}))
    assert main(["collect", "--source", "demo:16", "--once", "--db", str(path), "--suggest-rules", str(rules)]) == 0
    conn, _ = open_read_only(path)
    try:
        drained = read_view(conn).nodes[first.gpus[9].node]
        assert drained.state is State.DRAINING and drained.reason.startswith("suggested by bus")
        assert first.gpus[0].node not in read_view(conn).nodes
    finally:
        conn.close()
    rules.write_text("[]")
    assert main(["collect", "--source", "demo:16", "--once", "--db", str(path), "--suggest-rules", str(rules)]) == 1
    assert "expected" in capsys.readouterr().err

"""One rule at a time in the store (what the console's rule dialog does): added at the end, edited
in place (renamed too), switched off, deleted; refused with a reason and nothing changed; every
change bumps the rules revision, so a running collector evaluates the new rules. And the preview
of a rule's texts, rendered as the engine renders a new alert's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gpuops.core.alerts.builtin_rules import builtin_rules, rule_origin
from gpuops.core.alerts.model import ChangeKind, Severity
from gpuops.core.alerts.persistence import AlertStore
from gpuops.core.alerts.preview import EXAMPLE_CUSTOMER, preview_rule
from gpuops.core.alerts.rules import Condition, Rule, RuleError, rule_from_dict
from gpuops.core.alerts.service import AlertService
from gpuops.core.store.connection import open_database
from tests.samples import make_inventory, make_sample

T0 = 1_763_798_400.0
N = 8


@pytest.fixture
def store(tmp_path: Path) -> AlertStore:
    conn, _ = open_database(tmp_path / "history.sqlite", create=True)
    return AlertStore(conn)


def hot(name: str = "hot_gpu", threshold: float = 80.0) -> Rule:
    return Rule(name=name, severity=Severity.CRITICAL, conditions=(Condition("temp_c", ">", threshold),),
                summary="{node} GPU {gpu_index}: {value:.0f} °C")


def test_save_adds_at_the_end_and_edits_in_place_with_a_new_revision(store: AlertStore) -> None:
    names = [r.name for r in store.rules()]
    revision = store.rules_revision()
    store.save_rule(hot(), T0)
    assert [r.name for r in store.rules()] == [*names, "hot_gpu"]
    assert store.rules_revision() > revision

    revision = store.rules_revision()
    store.save_rule(hot("very_hot_gpu", 90.0), T0, replaces="hot_gpu")
    assert [r.name for r in store.rules()] == [*names, "very_hot_gpu"]
    assert store.rules()[-1].conditions[0].value == 90.0
    assert store.rules_revision() > revision

    edited = dataclasses.replace(builtin_rules()[0], for_s=600.0)
    store.save_rule(edited, T0, replaces=edited.name)
    assert store.rules()[0] == edited and rule_origin(store.rules()[0]) == "built-in, edited"


@pytest.mark.parametrize(
    ("rule", "replaces", "message"),
    [
        (hot("gpu_lost"), None, "a rule named 'gpu_lost' exists already"),
        (hot("xid_warning"), "gpu_lost", "a rule named 'xid_warning' exists already"),
        (hot(), "deleted_meanwhile", "rule 'deleted_meanwhile' no longer exists"),
        (hot("Hot GPU"), None, "name 'Hot GPU' must be lower-case"),
    ],
)
def test_save_refuses_with_a_reason_and_changes_nothing(
    store: AlertStore, rule: Rule, replaces: str | None, message: str
) -> None:
    before, revision = store.export_rules(), store.rules_revision()
    with pytest.raises(RuleError, match=message):
        store.save_rule(rule, T0, replaces=replaces)
    assert store.export_rules() == before and store.rules_revision() == revision


def test_enable_and_delete_change_one_rule(store: AlertStore) -> None:
    store.save_rule(hot(), T0)
    store.set_rule_enabled("gpu_lost", False, T0)
    rules = {r.name: r for r in store.rules()}
    assert not rules["gpu_lost"].enabled
    assert dataclasses.replace(rules["gpu_lost"], enabled=True) == {r.name: r for r in builtin_rules()}["gpu_lost"]
    store.delete_rule("hot_gpu")
    assert "hot_gpu" not in {r.name for r in store.rules()}
    with pytest.raises(RuleError, match="no rule 'hot_gpu'"):
        store.delete_rule("hot_gpu")
    with pytest.raises(RuleError, match="no rule 'nope'"):
        store.set_rule_enabled("nope", True, T0)
    # A deleted built-in stays deleted (it is not seeded again).
    store.delete_rule("gpu_lost")
    assert "gpu_lost" not in {r.name for r in AlertStore(store.conn).rules()}


def test_a_running_collector_evaluates_rules_saved_while_it_runs(store: AlertStore) -> None:
    collector = AlertService(store.conn, poll_interval_s=5.0)
    gpus = make_inventory(N)
    sample = make_sample(N, gpus=gpus, values={"temp_c": {2: 82.0}})
    assert not collector.process(sample, T0).changes
    store.save_rule(hot(), T0)
    fired = collector.process(sample, T0 + 5).of_kind(ChangeKind.FIRING)
    assert [(a.rule, a.gpu_uuid, a.summary) for a in fired] == [("hot_gpu", gpus[2].uuid, "node00 GPU 2: 82 °C")]
    store.set_rule_enabled("hot_gpu", False, T0 + 6)
    resolved = collector.process(sample, T0 + 10).of_kind(ChangeKind.RESOLVED)
    assert [a.rule for a in resolved] == ["hot_gpu"]


def test_the_preview_renders_every_placeholder_of_each_target() -> None:
    gpu = rule_from_dict({
        "name": "p", "severity": "info", "conditions": [{"signal": "temp_c", "op": ">=", "ref": "slowdown_temp_c", "offset": -5}],
        "summary": "{node}/{gpu_index} {model} {site} {customer}: {value:.0f} vs {threshold:.0f} (limit {limit:.0f})",
        "runbook": "XID {xid}: {xid_description}",
    })
    shown = preview_rule(gpu)
    assert shown.summary == f"node07/3 NVIDIA H100 80GB HBM3 fra1 {EXAMPLE_CUSTOMER}: 84 vs 82 (limit 87)"
    assert shown.runbook == "XID 48: Double Bit ECC Error"
    node = rule_from_dict(
        {
            "name": "n",
            "severity": "info",
            "target": "node",
            "conditions": [{"signal": "gpus_missing", "op": ">", "value": 0}],
            "summary": "{node}: {value:.0f} missing",
        }
    )
    assert preview_rule(node).summary == "node07: 1 missing"
    source = rule_from_dict({"name": "s", "severity": "info", "target": "source",
                             "conditions": [{"signal": "source_errors", "op": ">", "value": 0}], "summary": "{errors}"})
    assert preview_rule(source).summary == "node11:9400: connection refused"

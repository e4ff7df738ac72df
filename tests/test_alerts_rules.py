"""Alert rules over exact synthetic samples: every built-in rule fires on data that should fire
it and clears on data that should clear it; flapping input does not flap the alert; scopes;
rules files round-trip and bad ones are refused with clear errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from gpuops.core.alerts.builtin_rules import builtin_rules
from gpuops.core.alerts.engine import AlertEngine
from gpuops.core.alerts.model import AlertState, ChangeKind
from gpuops.core.alerts.rules import RuleError, parse_rules, rule_from_dict, rules_from_text, rules_to_text
from gpuops.core.telemetry import THROTTLE_REASON_BITS, FleetSample, GpuState
from tests.samples import make_inventory, make_sample

T0 = 1_763_798_400.0
STEP_S = 10.0
POLL_S = 5.0
N = 16
GIB = 2**30
BAD = 3  # the GPU the faulty data is on (node00)


@dataclass
class Case:
    rule: str
    bad: dict = field(default_factory=dict)  # make_sample keyword arguments of the faulty data
    good: dict = field(default_factory=dict)  # of data that clears it (default: the healthy fleet)
    extra_bad: dict = field(default_factory=dict)  # evaluate() keyword arguments with the faulty data
    extra_good: dict = field(default_factory=dict)
    key: str | None = None  # the subject expected to alert (default: GPU BAD's uuid)
    change: Callable[[FleetSample, bool], FleetSample] | None = None  # post-processing of a sample
    once: bool = False  # the faulty data is an event seen in one poll only (XIDs)
    failure: str | None = None  # the faulty "data" is a poll failing outright with this SourceError
    summary_says: str | None = None  # text the fired alert's summary must contain


def _allocated(flag: bool) -> np.ndarray:
    mask = np.ones(N, dtype=bool)
    mask[BAD] = flag
    return mask


CASES = [
    Case("gpu_temp_near_slowdown", bad={"values": {"temp_c": {BAD: 83.0}}}, good={"values": {"temp_c": {BAD: 79.0}}}),
    Case("gpu_temp_at_slowdown", bad={"values": {"temp_c": {BAD: 87.0}}}, good={"values": {"temp_c": {BAD: 84.0}}}),
    Case("hbm_temp_near_max", bad={"values": {"mem_temp_c": {BAD: 91.0}}}, good={"values": {"mem_temp_c": {BAD: 87.0}}}),
    Case("hbm_temp_at_max", bad={"values": {"mem_temp_c": {BAD: 95.0}}}, good={"values": {"mem_temp_c": {BAD: 92.0}}}),
    Case("ecc_uncorrectable", bad={"values": {"ecc_uncorrected_volatile": {BAD: 2}}}),
    Case("row_remap_pending", bad={"values": {"remapped_rows_pending": {BAD: 1}}}),
    Case("row_remap_failure", bad={"values": {"remapped_rows_failure": {BAD: 1}}}),
    Case("xid_critical", bad={"xids": ((BAD, 79),)}, once=True),
    Case("xid_warning", bad={"xids": ((BAD, 13),)}, once=True),
    Case("gpu_lost", bad={"states": {BAD: GpuState.LOST}}),
    Case("node_gpus_missing", bad={"gpus": make_inventory(N)[:-1]}, good={"gpus": make_inventory(N)}, key="node:node01"),
    Case("hw_throttle", bad={"values": {"throttle_reasons_mask": {BAD: THROTTLE_REASON_BITS["hw_power_brake_slowdown"]}}}),
    Case("power_at_limit", bad={"values": {"power_w": {BAD: 690.0}}}),
    Case("memory_nearly_full", bad={"values": {"mem_used_bytes": {BAD: 77 * GIB}}}),
    Case("pcie_width_degraded", bad={"values": {"pcie_link_width": {BAD: 8}, "pcie_link_width_max": {BAD: 16}}},
         good={"values": {"pcie_link_width": {BAD: 16}, "pcie_link_width_max": {BAD: 16}}}),
    Case("pcie_gen_degraded", bad={"values": {"pcie_link_gen": {BAD: 3}, "pcie_link_gen_max": {BAD: 5}}},
         good={"values": {"pcie_link_gen": {BAD: 3}, "pcie_link_gen_max": {BAD: 5}, "util_gpu_pct": {BAD: 0.0}}}),
    Case("node_telemetry_stale", key="node:node01",
         change=lambda s, bad: dataclasses.replace(s, stale_nodes=frozenset({"node01"})) if bad else s),
    Case("source_errors", key="source",
         change=lambda s, bad: dataclasses.replace(s, errors=("node07:9400: connection refused",)) if bad else s),
    Case("source_down", key="source", failure="NVML: driver not loaded"),
    Case("gpu_data_stale", extra_bad={"last_fresh_ts": "old"}, extra_good={"last_fresh_ts": "fresh"}),
    Case("allocated_idle", bad={"values": {"util_gpu_pct": {BAD: 1.0}}}, extra_bad={"allocated": _allocated(True)},
         extra_good={"allocated": _allocated(False)}),
    Case("busy_unallocated", extra_bad={"allocated": _allocated(False)}, extra_good={"allocated": _allocated(True)},
         summary_says=": 50% busy but not allocated"),
]


def _sample(case: Case, ts: float, bad: bool) -> FleetSample:
    sample = make_sample(N, ts=ts, **(case.bad if bad else case.good))
    return case.change(sample, bad) if case.change else sample


def _extra(case: Case, ts: float, bad: bool) -> dict:
    extra = dict(case.extra_bad if bad else case.extra_good)
    if extra.get("last_fresh_ts") == "old":
        extra["last_fresh_ts"] = np.where(np.arange(N) == BAD, ts - 10 * POLL_S, ts)
    elif extra.get("last_fresh_ts") == "fresh":
        extra["last_fresh_ts"] = np.full(N, ts)
    return extra


def _evaluate(engine: AlertEngine, case: Case, ts: float, bad: bool):
    if bad and case.failure is not None:
        return engine.source_failed(case.failure, ts)
    return engine.evaluate(_sample(case, ts, bad), ts, **_extra(case, ts, bad))


def _firing(engine: AlertEngine, rule: str) -> list[str]:
    return [a.key for a in engine.active if a.rule == rule and a.state is AlertState.FIRING]


def test_every_builtin_rule_has_a_case() -> None:
    assert {c.rule for c in CASES} == {r.name for r in builtin_rules()}


@pytest.mark.parametrize("case", CASES, ids=[c.rule for c in CASES])
def test_builtin_rule_fires_on_faulty_data_and_clears_on_healthy_data(case: Case) -> None:
    rule = next(r for r in builtin_rules() if r.name == case.rule)
    engine = AlertEngine(builtin_rules(), poll_interval_s=POLL_S)
    key = case.key or make_inventory(N)[BAD].uuid
    ts = T0
    _evaluate(engine, case, ts, False)
    assert _firing(engine, case.rule) == []

    # Faulty data for just under `for`: pending, not firing.
    first_bad = ts = ts + STEP_S
    while True:
        changes = _evaluate(engine, case, ts, True)
        if ts - first_bad >= rule.for_s or case.once:
            break
        assert _firing(engine, case.rule) == [], f"fired after {ts - first_bad:.0f} s, before its for of {rule.for_s:.0f} s"
        ts += STEP_S
    assert _firing(engine, case.rule) == [key]
    fired = [a for a in changes.of_kind(ChangeKind.FIRING) if a.rule == case.rule]
    assert [a.key for a in fired] == [key]
    assert fired[0].summary and "{" not in fired[0].summary
    assert case.summary_says is None or case.summary_says in fired[0].summary
    assert fired[0].severity == rule.severity

    # Healthy data: resolved once keep_firing_for has passed, not before.
    last_bad = ts
    resolved = []
    while not resolved:
        ts += STEP_S
        changes = _evaluate(engine, case, ts, False)
        resolved = [a for a in changes.of_kind(ChangeKind.RESOLVED) if a.rule == case.rule]
        assert ts - last_bad <= rule.keep_firing_for_s + STEP_S, "never resolved"
    assert ts - last_bad >= rule.keep_firing_for_s
    assert [a.key for a in resolved] == [key]
    assert resolved[0].ended_at == ts
    assert _firing(engine, case.rule) == []


def test_a_healthy_fleet_raises_nothing() -> None:
    engine = AlertEngine(builtin_rules(), poll_interval_s=POLL_S)
    for step in range(5):
        ts = T0 + step * STEP_S
        changes = engine.evaluate(make_sample(N, ts=ts), ts, allocated=np.ones(N, dtype=bool), last_fresh_ts=np.full(N, ts))
        assert not changes.changes


def test_xid_alert_names_the_catalogue_action_and_critical_overrides_apply() -> None:
    engine = AlertEngine(builtin_rules(), poll_interval_s=POLL_S)
    codes = (48, 63, 64, 74, 79, 92, 94, 95)
    changes = engine.evaluate(make_sample(N, ts=T0, xids=tuple(enumerate(codes))), T0)
    fired = {a.key: a for a in changes.of_kind(ChangeKind.FIRING)}
    for i, code in enumerate(codes):
        alert = fired[make_inventory(N)[i].uuid]
        assert alert.rule == "xid_critical", code
        assert f"XID {code} " in alert.summary
    assert fired[make_inventory(N)[1].uuid].summary.endswith(": IGNORE")  # 63: the catalogue's own action
    assert "Restart bare metal" in fired[make_inventory(N)[4].uuid].runbook  # 79: RESTART_BM spelled out


def test_temperature_hysteresis_holds_between_fire_and_clear_levels() -> None:
    engine = AlertEngine(builtin_rules(), poll_interval_s=POLL_S)
    engine.evaluate(make_sample(N, ts=T0, values={"temp_c": {BAD: 87.0}}), T0)
    assert _firing(engine, "gpu_temp_at_slowdown")
    engine.evaluate(make_sample(N, ts=T0 + 10, values={"temp_c": {BAD: 86.0}}), T0 + 10)  # below, above clear (85)
    assert _firing(engine, "gpu_temp_at_slowdown")
    engine.evaluate(make_sample(N, ts=T0 + 20, values={"temp_c": {BAD: 84.0}}), T0 + 20)
    assert not _firing(engine, "gpu_temp_at_slowdown")


FLAP_RULE = {
    "name": "hot", "severity": "warning", "for_s": 30, "keep_firing_for_s": 60,
    "conditions": [{"signal": "temp_c", "op": ">=", "value": 80}], "summary": "{node} hot",
}


def test_flapping_input_neither_fires_early_nor_flaps_once_firing() -> None:
    engine = AlertEngine([rule_from_dict(FLAP_RULE)], poll_interval_s=POLL_S)
    kinds = []
    # Flapping every poll: the condition never holds for 30 s in a row, so it never fires, and
    # the blips are not even worth a pending alert.
    for step in range(12):
        ts = T0 + step * STEP_S
        temp = 85.0 if step % 2 == 0 else 70.0
        kinds += [c.kind for c in engine.evaluate(make_sample(N, ts=ts, values={"temp_c": {BAD: temp}}), ts).changes]
    assert kinds == []
    # Steadily hot: fires once; then flapping keeps it firing (keep_firing_for 60 s > the gaps).
    kinds = []
    for step in range(12, 40):
        ts = T0 + step * STEP_S
        temp = 85.0 if step < 16 or step % 3 == 0 else 70.0
        kinds += [c.kind for c in engine.evaluate(make_sample(N, ts=ts, values={"temp_c": {BAD: temp}}), ts).changes]
    assert kinds.count(ChangeKind.FIRING) == 1
    assert ChangeKind.RESOLVED not in kinds
    # Steadily cool: resolves exactly once.
    kinds = []
    for step in range(40, 50):
        ts = T0 + step * STEP_S
        kinds += [c.kind for c in engine.evaluate(make_sample(N, ts=ts), ts).changes]
    assert kinds.count(ChangeKind.RESOLVED) == 1


@pytest.mark.parametrize(
    ("scope", "customers", "expected"),
    [
        ({"kind": "node", "values": ["node01"]}, None, [9]),
        ({"kind": "model", "values": ["NVIDIA H100 80GB HBM3"]}, None, [1, 9]),
        ({"kind": "customer", "values": ["acme"]}, "map", [9]),
        ({"kind": "site", "values": ["fra1"]}, None, []),
    ],
)
def test_scope_limits_which_gpus_a_rule_watches(scope: dict, customers: object, expected: list[int]) -> None:
    rule = rule_from_dict({**FLAP_RULE, "for_s": 0, "scope": scope})
    inventory = make_inventory(N)
    mapping = {inventory[9].uuid: "acme", inventory[1].uuid: "globex"} if customers else None
    engine = AlertEngine([rule], poll_interval_s=POLL_S)
    engine.evaluate(make_sample(N, ts=T0, values={"temp_c": {1: 85.0, 9: 85.0}}), T0, customers=mapping)
    assert sorted(a.key for a in engine.active) == sorted(inventory[i].uuid for i in expected)
    if customers:
        assert engine.active[0].labels["customer"] == "acme"


def test_disabling_a_rule_resolves_its_alerts() -> None:
    engine = AlertEngine(builtin_rules(), poll_interval_s=POLL_S)
    engine.evaluate(make_sample(N, ts=T0, values={"ecc_uncorrected_volatile": {BAD: 1}}), T0)
    assert _firing(engine, "ecc_uncorrectable")
    engine.set_rules([dataclasses.replace(r, enabled=r.name != "ecc_uncorrectable") for r in builtin_rules()])
    changes = engine.evaluate(make_sample(N, ts=T0 + 10, values={"ecc_uncorrected_volatile": {BAD: 1}}), T0 + 10)
    assert [a.rule for a in changes.of_kind(ChangeKind.RESOLVED)] == ["ecc_uncorrectable"]


def test_allocation_mask_of_the_wrong_length_is_a_clear_error() -> None:
    engine = AlertEngine(builtin_rules(), poll_interval_s=POLL_S)
    with pytest.raises(ValueError, match="one flag per GPU"):
        engine.evaluate(make_sample(N, ts=T0), T0, allocated=np.ones(3, dtype=bool))


# ---------------------------------------------------------------- rules files


def test_rules_round_trip_through_the_text_format() -> None:
    text = rules_to_text(builtin_rules())
    assert rules_from_text(text) == builtin_rules()
    assert rules_to_text(rules_from_text(text)) == text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"severity": "urgent"}, "severity 'urgent' is not one of info, warning, critical"),
        ({"name": "Bad Name"}, "name 'Bad Name' must be lower-case"),
        ({"conditions": [{"signal": "temp", "op": ">=", "value": 1}]}, "unknown signal 'temp'"),
        ({"conditions": [{"signal": "temp_c", "op": "=>", "value": 1}]}, "op '=>' is not one of"),
        ({"conditions": [{"signal": "temp_c", "op": ">="}]}, "needs \"value\""),
        ({"conditions": [{"signal": "temp_c", "op": ">=", "ref": "slowdown", "offset": -5}]}, "unknown ref 'slowdown'"),
        ({"conditions": []}, "conditions must be a non-empty list"),
        ({"for_s": -1}, "for_s must be >= 0"),
        ({"for_s": "2m"}, "for_s must be a finite number"),
        ({"summary": "{nodename} hot"}, "unknown placeholder {nodename}"),
        ({"summary": "{} hot"}, "positional placeholder"),
        ({"summary": "{value:.1q}"}, "summary is not a valid template"),
        ({"scope": {"kind": "rack", "values": ["r1"]}}, "scope kind 'rack' is not one of"),
        ({"scope": {"kind": "node"}}, "a node scope needs \"values\""),
        ({"colour": "red"}, "unknown rule key(s) colour"),
    ],
)
def test_invalid_rules_are_refused_with_a_clear_error(change: dict, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rules([{**FLAP_RULE, **change}])
    assert message in str(caught.value)
    assert "rule 1" in str(caught.value)


def test_a_bad_file_reports_every_problem_and_where() -> None:
    text = rules_to_text([rule_from_dict(FLAP_RULE)]).replace('"warning"', '"loud"')
    with pytest.raises(RuleError, match="mine.json: rule 1 'hot': severity 'loud'"):
        rules_from_text(text, "mine.json")
    with pytest.raises(RuleError, match="not valid JSON at line 1"):
        rules_from_text("{oops", "mine.json")
    with pytest.raises(RuleError, match="used twice"):
        parse_rules([FLAP_RULE, FLAP_RULE])
    with pytest.raises(RuleError, match="not a gpuops rules file"):
        rules_from_text('{"rules": []}')

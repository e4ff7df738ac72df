"""Alert rules: what they say, how they are checked, and their text file format.

A rule fires for a subject (a GPU, a node, or the telemetry source) when ALL its conditions hold.
A condition compares a signal (see `core.alerts.signals`) with a threshold, either absolute
(`"value": 95`) or relative to a per-subject figure (`"ref": "slowdown_temp_c", "offset": -5`
means slowdown temperature minus 5; `"ref": "power_limit_w", "scale": 0.98` means 98% of the limit).

Against flapping: the condition must hold for `for_s` before the alert fires; a firing alert
resolves only once the condition has been false for `keep_firing_for_s` AND, if the rule has
`clear` conditions, those hold (hysteresis: e.g. fire at >= 82 °C, clear below 80 °C).

Rules files are JSON (the stdlib writes it; TOML it cannot):
    {"format": "gpuops-alert-rules", "version": 1, "rules": [{...}, ...]}
with each rule as `Rule.to_dict()` gives it. `parse_rules` checks a whole file and raises one
`RuleError` listing every problem, so a bad file changes nothing.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gpuops.core import jsontext
from gpuops.core.alerts.model import Severity
from gpuops.core.alerts.signals import GPU, NODE, SOURCE, TARGETS, SignalFrame, ref_names, signal_names

FILE_FORMAT = "gpuops-alert-rules"
FILE_VERSION = 1
OPERATORS = (">", ">=", "<", "<=", "==", "!=")
SCOPE_KINDS = ("fleet", "site", "node", "model", "customer")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

# Placeholders summary and runbook templates may use. `value` is the first condition's signal,
# `threshold` what it was compared with, `limit` its ref before scale and offset (e.g. the
# slowdown temperature itself).
TEMPLATE_FIELDS = {
    GPU: ("rule", "severity", "node", "gpu", "gpu_index", "model", "site", "customer", "value", "threshold",
          "limit", "xid", "xid_description", "xid_action", "xid_action_text"),
    NODE: ("rule", "severity", "node", "site", "value", "threshold", "limit"),
    SOURCE: ("rule", "severity", "value", "threshold", "limit", "errors"),
}


class RuleError(ValueError):
    """A rule or rules file is invalid; the message lists every problem, one per line."""


@dataclass(frozen=True)
class Condition:
    signal: str
    op: str
    value: float = 0.0  # the threshold, or the offset added when `ref` is given
    ref: str | None = None
    scale: float = 1.0

    def threshold(self, frame: SignalFrame) -> np.ndarray | float:
        if self.ref is None:
            return self.value
        return frame.ref(self.ref) * self.scale + self.value

    def threshold_at(self, frame: SignalFrame, i: int) -> float:
        """The threshold of subject `i` alone (for alert texts: no whole-fleet arithmetic)."""
        if self.ref is None:
            return self.value
        return self.limit_at(frame, i) * self.scale + self.value

    def limit_at(self, frame: SignalFrame, i: int) -> float:
        """The ref's own value for subject `i` (e.g. the slowdown temperature), or the threshold."""
        if self.ref is None:
            return self.value
        ref = frame.ref(self.ref)
        return float(ref[i] if isinstance(ref, np.ndarray) else ref)

    def holds(self, frame: SignalFrame, *, unknown: bool = False) -> np.ndarray:
        """Where the comparison is true. Unknown values (NaN) give `unknown`."""
        values = frame.get(self.signal)
        threshold = self.threshold(frame)
        with np.errstate(invalid="ignore"):
            result = _COMPARE[self.op](values, threshold)
        if unknown:
            result = result | np.isnan(values) | np.isnan(threshold)
        return result

    def describe(self) -> str:
        if self.ref is None:
            return f"{self.signal} {self.op} {self.value:g}"
        scaled = self.ref if self.scale == 1.0 else f"{self.ref} * {self.scale:g}"
        offset = "" if self.value == 0 else f" {'+' if self.value > 0 else '-'} {abs(self.value):g}"
        return f"{self.signal} {self.op} {scaled}{offset}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"signal": self.signal, "op": self.op}
        if self.ref is None:
            out["value"] = self.value
        else:
            out["ref"] = self.ref
            if self.scale != 1.0:
                out["scale"] = self.scale
            if self.value != 0.0:
                out["offset"] = self.value
        return out


_COMPARE = {
    ">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal, "==": np.equal, "!=": np.not_equal,
}


@dataclass(frozen=True)
class Scope:
    """Which subjects a rule applies to: the whole fleet, or those whose site/node/model/customer
    is one of `values` (customer: from the uuid->customer mapping the caller provides)."""

    kind: str = "fleet"
    values: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind} if self.kind == "fleet" else {"kind": self.kind, "values": list(self.values)}


@dataclass(frozen=True)
class Rule:
    name: str
    severity: Severity
    conditions: tuple[Condition, ...]
    summary: str  # str.format template, see TEMPLATE_FIELDS
    target: str = GPU
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    clear: tuple[Condition, ...] = ()
    scope: Scope = field(default_factory=Scope)
    runbook: str = ""  # template too
    enabled: bool = True

    def signals(self) -> set[str]:
        return {c.signal for c in (*self.conditions, *self.clear)}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "enabled": self.enabled, "target": self.target, "severity": self.severity.label,
            "conditions": [c.to_dict() for c in self.conditions],
        }
        if self.clear:
            out["clear"] = [c.to_dict() for c in self.clear]
        out.update({"for_s": self.for_s, "keep_firing_for_s": self.keep_firing_for_s, "scope": self.scope.to_dict(),
                    "summary": self.summary, "runbook": self.runbook})
        return out


# ---------------------------------------------------------------- checking


class _Problems:
    def __init__(self, where: str) -> None:
        self.where = where
        self.lines: list[str] = []

    def add(self, text: str) -> None:
        self.lines.append(f"{self.where}: {text}")


def _number(raw: Mapping[str, Any], key: str, default: float, problems: _Problems, *, minimum: float | None = None) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        problems.add(f"{key} must be a finite number, not {value!r}")
        return default
    if minimum is not None and value < minimum:
        problems.add(f"{key} must be >= {minimum:g}, not {value!r}")
        return default
    return float(value)


def _unknown_keys(raw: Mapping[str, Any], allowed: Iterable[str], problems: _Problems, what: str) -> None:
    extra = sorted(set(raw) - set(allowed))
    if extra:
        problems.add(f"unknown {what} key(s) {', '.join(extra)}; expected {', '.join(allowed)}")


def _condition(raw: Any, target: str, problems: _Problems, label: str) -> Condition | None:
    if not isinstance(raw, Mapping):
        problems.add(f"{label} must be an object like {{\"signal\": ..., \"op\": ..., \"value\": ...}}")
        return None
    _unknown_keys(raw, ("signal", "op", "value", "ref", "scale", "offset"), problems, label)
    signal, op, ref = raw.get("signal"), raw.get("op"), raw.get("ref")
    ok = True
    if signal not in signal_names(target):
        problems.add(f"{label}: unknown signal {signal!r} for {target} rules; known: {', '.join(signal_names(target))}")
        ok = False
    if op not in OPERATORS:
        problems.add(f"{label}: op {op!r} is not one of {' '.join(OPERATORS)}")
        ok = False
    if ref is None:
        if "value" not in raw:
            problems.add(f"{label}: needs \"value\" (an absolute threshold) or \"ref\" (a relative one)")
            ok = False
        for key in ("scale", "offset"):
            if key in raw:
                problems.add(f"{label}: \"{key}\" only makes sense with \"ref\"")
                ok = False
        value, scale = _number(raw, "value", 0.0, problems), 1.0
    else:
        if ref not in ref_names(target):
            problems.add(f"{label}: unknown ref {ref!r} for {target} rules; known: {', '.join(ref_names(target))}")
            ok = False
        if "value" in raw:
            problems.add(f"{label}: with \"ref\" use \"offset\" (added) and \"scale\" (multiplied), not \"value\"")
            ok = False
        value, scale = _number(raw, "offset", 0.0, problems), _number(raw, "scale", 1.0, problems)
    if not ok:
        return None
    # Both are among the known names here, so strings.
    return Condition(signal=str(signal), op=str(op), value=value, ref=ref, scale=scale)


def _conditions(raw: Any, target: str, problems: _Problems, key: str, *, required: bool) -> tuple[Condition, ...]:
    if raw is None and not required:
        return ()
    if not isinstance(raw, list) or (required and not raw):
        problems.add(f"{key} must be a {'non-empty ' if required else ''}list of conditions")
        return ()
    parsed = [_condition(item, target, problems, f"{key}[{i}]") for i, item in enumerate(raw)]
    return tuple(c for c in parsed if c is not None)


def _scope(raw: Any, problems: _Problems) -> Scope:
    if raw is None:
        return Scope()
    if not isinstance(raw, Mapping):
        problems.add("scope must be an object like {\"kind\": \"node\", \"values\": [\"node01\"]}")
        return Scope()
    _unknown_keys(raw, ("kind", "values"), problems, "scope")
    kind = raw.get("kind", "fleet")
    if kind not in SCOPE_KINDS:
        problems.add(f"scope kind {kind!r} is not one of {', '.join(SCOPE_KINDS)}")
        return Scope()
    values = raw.get("values", [])
    if kind == "fleet":
        if values:
            problems.add("a fleet scope takes no values")
        return Scope()
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        problems.add(f"a {kind} scope needs \"values\": a non-empty list of {kind} names")
        return Scope()
    return Scope(kind, tuple(values))


def _template(summary: Any, target: str, problems: _Problems, key: str = "summary", *, required: bool = True) -> str:
    if not isinstance(summary, str) or (required and not summary.strip()):
        problems.add(f"{key} must be a {'non-empty ' if required else ''}text (a str.format template)")
        return ""
    known = TEMPLATE_FIELDS[target]
    try:
        for _, name, _, _ in string.Formatter().parse(summary):
            if name is None:
                continue
            base = re.split(r"[.\[]", name, maxsplit=1)[0]
            if base == "" or base.isdigit():
                problems.add(f"{key} uses a positional placeholder {{{name}}}; name it, e.g. {{node}}")
            elif base not in known:
                problems.add(f"{key} uses unknown placeholder {{{base}}}; known: {', '.join(known)}")
        summary.format_map(_ProbeValues())
    except (ValueError, IndexError) as exc:
        problems.add(f"{key} is not a valid template: {exc}")
    except (KeyError, TypeError):
        pass  # reported above (unknown or positional placeholder)
    return summary


class _ProbeValues(dict):
    """Answers every placeholder with a number, to catch bad format specs such as {value:.1q}."""

    def __missing__(self, key: str) -> float:
        return 1.0


def rule_from_dict(raw: Any, where: str = "rule") -> Rule:
    """One rule from its dict form; RuleError lists every problem."""
    problems = _Problems(where)
    rule = _rule(raw, problems)
    if problems.lines or rule is None:
        raise RuleError("\n".join(problems.lines))
    return rule


_RULE_KEYS = ("name", "enabled", "target", "severity", "conditions", "clear", "for_s", "keep_firing_for_s", "scope",
              "summary", "runbook")


def _rule(raw: Any, problems: _Problems) -> Rule | None:
    if not isinstance(raw, Mapping):
        problems.add("a rule must be an object")
        return None
    name = raw.get("name")
    if isinstance(name, str) and NAME_PATTERN.match(name):
        problems.where += f" {name!r}"
    else:
        problems.add(f"name {name!r} must be lower-case letters, digits and _ (starting with a letter, <= 64)")
    _unknown_keys(raw, _RULE_KEYS, problems, "rule")
    target = raw.get("target", GPU)
    if target not in TARGETS:
        problems.add(f"target {target!r} is not one of {', '.join(TARGETS)}")
        target = GPU
    try:
        severity = Severity.parse(str(raw.get("severity", "")))
    except ValueError as exc:
        problems.add(str(exc))
        severity = Severity.WARNING
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.add(f"enabled must be true or false, not {enabled!r}")
    scope = _scope(raw.get("scope"), problems)
    if target == SOURCE and scope.kind != "fleet":
        problems.add("source rules apply to the whole fleet; drop the scope")
    rule = Rule(
        name=name if isinstance(name, str) else "",
        severity=severity,
        conditions=_conditions(raw.get("conditions"), target, problems, "conditions", required=True),
        clear=_conditions(raw.get("clear"), target, problems, "clear", required=False),
        summary=_template(raw.get("summary"), target, problems),
        target=target,
        for_s=_number(raw, "for_s", 0.0, problems, minimum=0.0),
        keep_firing_for_s=_number(raw, "keep_firing_for_s", 0.0, problems, minimum=0.0),
        scope=scope,
        runbook=_template(raw.get("runbook", ""), target, problems, "runbook", required=False),
        enabled=enabled if isinstance(enabled, bool) else True,
    )
    return rule


def parse_rules(data: Any, where: str = "rules") -> tuple[Rule, ...]:
    """Every rule of a parsed rules document (or a bare list of rule dicts); all or nothing."""
    problems = _Problems(where)
    if isinstance(data, Mapping):
        if data.get("format") != FILE_FORMAT:
            problems.add(f"not a gpuops rules file: \"format\" must be {FILE_FORMAT!r}")
        elif data.get("version") != FILE_VERSION:
            problems.add(f"rules file version {data.get('version')!r} is not supported (this gpuops reads {FILE_VERSION})")
        items = data.get("rules")
    else:
        items = data
    if not isinstance(items, list):
        problems.add("\"rules\" must be a list of rules")
        raise RuleError("\n".join(problems.lines))
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        rule_problems = _Problems(f"{where}: rule {i + 1}")
        rule = _rule(item, rule_problems)
        problems.lines.extend(rule_problems.lines)
        if rule is not None and not rule_problems.lines:
            if rule.name in seen:
                problems.add(f"rule {i + 1}: name {rule.name!r} is used twice")
            seen.add(rule.name)
            rules.append(rule)
    if problems.lines:
        raise RuleError("\n".join(problems.lines))
    return tuple(rules)


def rules_to_text(rules: Iterable[Rule]) -> str:
    document = {"format": FILE_FORMAT, "version": FILE_VERSION, "rules": [r.to_dict() for r in rules]}
    return jsontext.dumps(document, indent=2) + "\n"


def rules_from_text(text: str, where: str = "rules file") -> tuple[Rule, ...]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RuleError(f"{where}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return parse_rules(data, where)

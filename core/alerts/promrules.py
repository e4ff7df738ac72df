"""gpuops alert rules as a Prometheus rules file, on dcgm-exporter's metric names.

At fleet scale Prometheus evaluates the rules: `gpuops alerts export-rules --format prometheus`
writes every enabled rule PromQL can express, so the same GPUs fire the same rules whether
gpuops or Prometheus watches them. Translation, rule by rule:

* A signal is its DCGM field (core.dcgm_schema.FIELDS) times the field's scale, so thresholds
  stay in gpuops units (`mem_used_bytes` is DCGM_FI_DEV_FB_USED * 1048576). MIG instances and
  pod labels fold into their GPU as the sources fold them, so an alert is about a GPU. Memory
  total falls back to used + free + reserved, as the sources derive it; throttle-reason bits
  are `floor(mask / bit) % 2` of DCGM_FI_DEV_CLOCK_THROTTLE_REASONS (or its newer name).
* Node rules can read `gpu_count`: the GPUs of the node that have series. A GPU that fell off
  the bus leaves that count at once; gpuops keeps it (as lost) until the node is rebuilt.
* A condition is `signal op threshold`, a relative threshold `ref * scale + offset`; several
  conditions are joined with `and`. Series missing in Prometheus, and DCGM's blank sentinels,
  never satisfy a condition, as NaN never does in the engine.
* `for_s` and `keep_firing_for_s` become `for:` and `keep_firing_for:`. Prometheus counts
  keep_firing_for from the first evaluation at which the condition is false, the engine from
  the last at which it held, so Prometheus resolves such an alert one evaluation interval
  later. Hysteresis (`clear`) keeps a firing alert true while its clear conditions do not all
  hold, through Prometheus' own ALERTS series; with keep_firing_for as well, Prometheus waits
  it out after the clear conditions hold. Later, never earlier.
* Texts: the XID catalogue's words (description, action) for the codes an XID rule fires on
  are written into its templates, looked up by the GPU's last XID.
* XID rules: for plain dcgm-exporter gpuops treats a change of the last-XID gauge
  (DCGM_FI_DEV_XID_ERRORS) to a code > 0 as one event (core.sources.dcgm_fleet); the rule
  fires on such a change, within XID_WINDOW, to a code whose severity class matches.
* Labels and annotations are the Alertmanager forwarder's (core.alerts.alertmanager): the
  series bring `Hostname`, `gpu`, `UUID` and `modelName`; the rule adds `severity` and `node`;
  annotations are `summary`, `description` (the runbook text) and `runbook_url`. Template
  placeholders become Go templates; per-GPU thresholds are looked up with `query`.

Rules that need what only gpuops knows (allocations, topology sites, customers, GPU state,
data freshness, node GPU baselines, HBM limits, the telemetry source) are skipped, each with
its reason, listed at the top of the file.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from gpuops.core import dcgm_schema as dcgm
from gpuops.core.alerts.engine import xid_template_values
from gpuops.core.alerts.model import Severity
from gpuops.core.alerts.rules import Condition, Rule
from gpuops.core.alerts.signals import GPU, HW_THROTTLE_BITS, NODE, SOURCE
from gpuops.core.alerts.xid_severity import UNCATALOGUED_SEVERITY, xid_alert_severity
from gpuops.core.telemetry import THROTTLE_REASON_BITS
from gpuops.core.xid_catalog import XidInfo, describe_xid, xid_catalog

GROUP_NAME = "gpuops"
#: How long after the last-XID gauge changes an XID rule still sees the change: long enough to
#: cover a scrape or two at any usual interval (dcgm-exporter's own XID count window is 5 min).
XID_WINDOW = "5m"
#: XID codes are listed one by one up to here; any code above is uncatalogued (as in xid_severity).
_XID_TABLE_END = 1024
#: Labels the rules themselves put on every alert (the series bring the others).
RULE_LABELS = ("severity", "node")
#: Labels of a MIG instance or of the workload on a GPU (dcgm-exporter's, and Prometheus'
#: exported_* renames of them): folded away, so an alert is about a GPU, as in gpuops, and a
#: pod starting on a GPU does not restart its `for` timer.
WORKLOAD_LABELS = (
    dcgm.LABEL_MIG_ID, dcgm.LABEL_MIG_PROFILE, dcgm.LABEL_POD, dcgm.LABEL_NAMESPACE, dcgm.LABEL_CONTAINER, "pod_uid",
    "exported_pod", "exported_namespace", "exported_container",
)
#: Fields dcgm-exporter serves out of the box (etc/default-counters.csv); a rule reading any
#: other needs that field enabled in the exporter's counters file (the gpuops agent serves all).
DCGM_EXPORTER_DEFAULT_COUNTERS: frozenset[str] = frozenset({
    "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_MEMORY_TEMP", "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_ENC_UTIL", "DCGM_FI_DEV_DEC_UTIL",
    "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_RESERVED",
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "DCGM_FI_DEV_VGPU_LICENSE_STATUS",
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_ROW_REMAP_FAILURE", "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "DCGM_FI_PROF_DRAM_ACTIVE", "DCGM_FI_PROF_PCIE_TX_BYTES", "DCGM_FI_PROF_PCIE_RX_BYTES",
})

# Readings at or above these are DCGM blanks (core.dcgm_schema.is_dcgm_blank): the 32-bit ones
# for gauges that never reach 2**31, 2**47 for counters and the PCIe byte rates, which can.
_GAUGE_BLANK_FLOOR = float(dcgm.DCGM_INT32_BLANK)
_LARGE_GAUGES = ("pcie_tx_bytes_s", "pcie_rx_bytes_s")
_BLANK_FLOOR: dict[str, float] = {
    f.name: dcgm.DCGM_FP64_BLANK for f in dcgm.FIELDS if f.kind == "counter" or f.metric in _LARGE_GAUGES
}
_FIELD_OF_METRIC: dict[str, dcgm.DcgmField] = {f.metric: f for f in dcgm.FIELDS if f.metric}
_THROTTLE_FIELD = _FIELD_OF_METRIC["throttle_reasons_mask"]

# Why a signal or ref has no PromQL form (what dcgm-exporter does not carry).
_GPUOPS_ONLY: dict[str, str] = {
    "state_lost": "GPU state (lost / unknown) is gpuops' own reading; dcgm-exporter has no such series",
    "state_unknown": "GPU state (lost / unknown) is gpuops' own reading; dcgm-exporter has no such series",
    "data_age_s": "data freshness is gpuops' own bookkeeping (Prometheus marks vanished series stale itself)",
    "allocated": "allocations live in gpuops' history, not in Prometheus",
    "xid_code": "the XID code of this poll comes from gpuops' XID events; use xid_level",
    "node_stale": "exporter staleness is gpuops' view of its scrapes (in Prometheus: `up == 0` of the scrape job)",
    "gpus_missing": "needs the most GPUs each node ever reported, which gpuops remembers in its history",
    "mem_max_temp_c": "dcgm-exporter serves no HBM maximum operating temperature (no field in its counter lists)",
    "shutdown_temp_c": "gpuops' dcgm-exporter field table has no shutdown temperature",
    "poll_interval_s": "the poll interval is a gpuops setting",
}
# The XID placeholders, as the engine fills them.
_XID_TEXTS = frozenset(xid_template_values(describe_xid(-1)))
_SCOPE_LABEL = {"node": dcgm.LABEL_HOST, "model": dcgm.LABEL_MODEL}
_NEGATED = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "==": "!=", "!=": "=="}
_PRINTF_SPEC = re.compile(r"^[+\- 0#]?\d*(\.\d+)?[eEfFgG]$")
_REGEX_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")
_SUBJECT = "\x00subject\x00"  # stands for the per-alert label matcher in looked-up expressions


class Untranslatable(Exception):
    """A rule PromQL cannot express; the message says why."""


@dataclass(frozen=True)
class PromRule:
    """One alerting rule as Prometheus takes it; `metrics` are the series its expression reads."""

    name: str
    expr: str
    for_s: float
    keep_firing_for_s: float
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    metrics: tuple[str, ...]


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


@dataclass(frozen=True)
class PromRuleSet:
    rules: tuple[PromRule, ...]
    skipped: tuple[Skipped, ...]
    disabled: tuple[str, ...] = field(default=())

    def to_yaml(self) -> str:
        """The rules file: a comment naming every skipped rule and what each exported rule reads,
        then one group. Every string is a double-quoted (JSON-escaped) YAML scalar."""
        lines = ["# Alert rules exported by `gpuops alerts export-rules --format prometheus`,",
                 "# on dcgm-exporter's metric names. Check with: promtool check rules FILE"]
        if self.skipped:
            lines.append(f"# Skipped ({len(self.skipped)}), PromQL cannot express them:")
            lines += [f"#   {s.name}: {_one_line(s.reason)}" for s in self.skipped]
        if self.disabled:
            lines.append(f"# Not exported, disabled in gpuops: {', '.join(self.disabled)}")
        if self.rules:
            lines.append("# Series each rule reads (* = not among dcgm-exporter's default counters: enable it there):")
            for rule in self.rules:
                names = ", ".join(m + ("" if m in DCGM_EXPORTER_DEFAULT_COUNTERS else "*") for m in rule.metrics)
                lines.append(f"#   {rule.name}: {names}")
        lines += ["groups:", f"  - name: {_quote(GROUP_NAME)}"]
        if not self.rules:
            lines.append("    rules: []")
            return "\n".join(lines) + "\n"
        lines.append("    rules:")
        for rule in self.rules:
            lines += [f"      - alert: {_quote(rule.name)}", f"        expr: {_quote(rule.expr)}"]
            if rule.for_s > 0:
                lines.append(f"        for: {duration(rule.for_s)}")
            if rule.keep_firing_for_s > 0:
                lines.append(f"        keep_firing_for: {duration(rule.keep_firing_for_s)}")
            for key, mapping in (("labels", rule.labels), ("annotations", rule.annotations)):
                lines.append(f"        {key}:")
                lines += [f"          {name}: {_quote(value)}" for name, value in mapping.items()]
        return "\n".join(lines) + "\n"


def prometheus_rules(rules: Iterable[Rule], *, runbook_base_url: str | None = None) -> PromRuleSet:
    """Every enabled rule translated, or skipped with its reason; disabled rules are left out."""
    exported: list[PromRule] = []
    skipped: list[Skipped] = []
    disabled: list[str] = []
    base = (runbook_base_url or "").rstrip("/")
    for rule in rules:
        if not rule.enabled:
            disabled.append(rule.name)
            continue
        try:
            exported.append(_Translation(rule).prom_rule(base))
        except Untranslatable as exc:
            skipped.append(Skipped(rule.name, str(exc)))
    return PromRuleSet(tuple(exported), tuple(skipped), tuple(disabled))


def duration(seconds: float) -> str:
    """Prometheus duration text: the largest unit that divides it (`2m`, `1h`, `90s`, `1500ms`)."""
    ms = round(seconds * 1000)
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _quote(text: str) -> str:
    """A double-quoted YAML scalar: JSON escapes, plus \\u escapes for characters YAML would
    read as line breaks or not accept (NEL, LS, PS, BOM, other non-printables)."""
    quoted = json.dumps(text, ensure_ascii=False)
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"
                   for c in quoted)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _string(text: str) -> str:
    """A PromQL string literal."""
    return json.dumps(text, ensure_ascii=False)


def _ranges(codes: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for code in codes:
        if out and out[-1][1] == code - 1:
            out[-1] = (out[-1][0], code)
        else:
            out.append((code, code))
    return out


class _Translation:
    """One rule's PromQL; collects the series it reads."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.metrics: list[str] = []
        self.xid_codes: list[int] | None = None  # the codes its xid_level condition accepts
        if rule.target == SOURCE:
            raise Untranslatable("it watches gpuops' own telemetry source (in Prometheus: `up == 0` or absent())")
        self.scope = self._scope_matchers()

    # -------------------------------------------------------------- the rule

    def prom_rule(self, runbook_base: str) -> PromRule:
        rule = self.rule
        expr = self._conjunction(rule.conditions, self.scope)
        if rule.clear:
            holding = " or ".join(self._condition(c, self.scope, negate=True) for c in rule.clear)
            ignored = ", ".join(("alertname", "alertstate", *RULE_LABELS))
            firing = f'ALERTS{{alertname={_string(rule.name)}, alertstate="firing"}}'
            expr = f"({expr}) or (({holding}) and ignoring({ignored}) {firing})"
        labels = {"severity": rule.severity.label, "node": _label_ref(dcgm.LABEL_HOST)}
        annotations = {"summary": self._template(rule.summary)}
        if rule.runbook:
            annotations["description"] = self._template(rule.runbook)
        if runbook_base:
            annotations["runbook_url"] = f"{runbook_base}/{rule.name}"
        return PromRule(rule.name, expr, rule.for_s, rule.keep_firing_for_s, labels, annotations,
                        tuple(dict.fromkeys(self.metrics)))

    def _scope_matchers(self) -> tuple[str, ...]:
        scope = self.rule.scope
        if scope.kind == "fleet":
            return ()
        label = _SCOPE_LABEL.get(scope.kind)
        if label is None:
            what = "sites come from gpuops' topology file" if scope.kind == "site" else "customers come from gpuops' allocations"
            raise Untranslatable(f"its {scope.kind} scope: {what}, which Prometheus series do not carry")
        if self.rule.target == NODE and scope.kind == "model":
            raise Untranslatable("a node rule scoped by model counts every GPU of a node that has one; series filter GPUs")
        pattern = "|".join(_REGEX_SPECIAL.sub(r"\\\1", v) for v in scope.values)
        return (f"{label}=~{_string(pattern)}",)

    # -------------------------------------------------------------- expressions

    def _raw(self, name: str, matchers: tuple[str, ...]) -> str:
        """A field's series as the exporter serves them; a field with another (newer) name reads
        whichever the exporter has."""
        spec = dcgm.FIELDS_BY_NAME.get(name)
        names = (name,) if spec is None else (spec.name, *spec.aliases)
        self.metrics.extend(names)
        braces = "{" + ", ".join(matchers) + "}" if matchers else ""
        parts = [n + braces for n in names]
        return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"

    def _readings(self, name: str, matchers: tuple[str, ...]) -> str:
        """The field's series without DCGM's blank sentinels (not supported, not found), which the
        sources read as "no value": a GPU without ECC must not fire `ecc_uncorrectable`."""
        return f"{self._raw(name, matchers)} < {_number(_BLANK_FLOOR.get(name, _GAUGE_BLANK_FLOOR))}"

    def _series(self, name: str, matchers: tuple[str, ...]) -> str:
        """One value per GPU, as the sources make it (core.sources.dcgm_fleet): MIG instances
        and workload labels folded into their GPU. Framebuffer figures of the instances add up,
        utilization is their mean (a series of the parent GPU itself wins for both); every
        other field is device-wide, repeated by each instance."""
        folded = f"without ({', '.join(WORKLOAD_LABELS)})"
        if name in dcgm.MIG_ADDITIVE_FIELDS or name in dcgm.MIG_MEAN_FIELDS:
            how = "sum" if name in dcgm.MIG_ADDITIVE_FIELDS else "avg"
            parent = self._readings(name, (*matchers, f'{dcgm.LABEL_MIG_ID}=""'))
            return f"(max {folded} ({parent}) or {how} {folded} ({self._readings(name, matchers)}))"
        return f"max {folded} ({self._readings(name, matchers)})"

    def _mem_total_mib(self, m: tuple[str, ...]) -> str:
        used, free = self._series(dcgm.FB_USED, m), self._series(dcgm.FB_FREE, m)
        reserved = self._series(dcgm.FB_RESERVED, m)
        return f"({self._series(dcgm.FB_TOTAL, m)} or ({used} + {free} + ({reserved} or {used} * 0)))"

    def _throttle_bit(self, bit: int, m: tuple[str, ...]) -> str:
        return f"(floor({self._series(_THROTTLE_FIELD.name, m)} / {bit}) % 2)"

    def _signal(self, name: str, m: tuple[str, ...]) -> str:
        """The PromQL value of a signal or ref, in gpuops units, per subject."""
        target = self.rule.target
        if name in _GPUOPS_ONLY:
            raise Untranslatable(f"{name}: {_GPUOPS_ONLY[name]}")
        if target == NODE:
            if name == "gpu_count":
                temp = self._raw("DCGM_FI_DEV_GPU_TEMP", m)
                return f"count by ({dcgm.LABEL_HOST}) (count by ({dcgm.LABEL_HOST}, {dcgm.LABEL_UUID}) ({temp}))"
            raise Untranslatable(f"{name} has no dcgm-exporter series")
        if name == "slowdown_temp_c":
            return self._series(dcgm.SLOWDOWN_TEMP, m)
        if name == "mem_total_bytes":
            return f"({self._mem_total_mib(m)} * {_number(dcgm.MIB)})"
        if name == "mem_used_pct":
            return f"({self._series(dcgm.FB_USED, m)} / {self._mem_total_mib(m)} * 100)"
        if name == "throttle_hw":
            bits = " + ".join(self._throttle_bit(THROTTLE_REASON_BITS[b], m) for b in HW_THROTTLE_BITS)
            return f"clamp_max({bits}, 1)"
        if name.startswith("throttle_") and name[len("throttle_"):] in THROTTLE_REASON_BITS:
            return self._throttle_bit(THROTTLE_REASON_BITS[name[len("throttle_"):]], m)
        spec = _FIELD_OF_METRIC.get(name)
        if spec is None:
            raise Untranslatable(f"{name} has no dcgm-exporter series")
        series = self._series(spec.name, m)
        return series if spec.scale == 1.0 else f"({series} * {_number(spec.scale)})"

    def _threshold(self, condition: Condition, m: tuple[str, ...]) -> str:
        if condition.ref is None:
            return _number(condition.value)
        expr = self._signal(condition.ref, m)
        if condition.scale != 1.0:
            expr = f"{expr} * {_number(condition.scale)}"
        if condition.value:
            expr = f"{expr} {'+' if condition.value > 0 else '-'} {_number(abs(condition.value))}"
        return expr

    def _condition(self, condition: Condition, m: tuple[str, ...], *, negate: bool = False) -> str:
        op = _NEGATED[condition.op] if negate else condition.op
        if condition.signal == "xid_level":
            if negate or condition.ref is not None:
                raise Untranslatable("xid_level compares only with a number, and not in clear conditions")
            return self._xid(condition, m)
        return f"{self._signal(condition.signal, m)} {op} {self._threshold(condition, m)}"

    def _conjunction(self, conditions: tuple[Condition, ...], m: tuple[str, ...]) -> str:
        if len(conditions) == 1:
            return self._condition(conditions[0], m)
        return " and ".join(f"({self._condition(c, m)})" for c in conditions)

    def _xid(self, condition: Condition, m: tuple[str, ...]) -> str:
        """A change of the last-XID gauge, within XID_WINDOW, to a code whose severity the
        condition accepts; the value is the code."""
        compare = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__,
                   "==": float.__eq__, "!=": float.__ne__}[condition.op]
        levels = {level for level in (0.0, *map(float, Severity)) if compare(level, condition.value)}
        if 0.0 in levels:
            raise Untranslatable("its xid_level condition holds without any XID, which no series says")
        if not levels:
            raise Untranslatable("its xid_level condition never holds")
        last = self._series(dcgm.XID_ERRORS, m)
        codes = [c for c in range(1, _XID_TABLE_END) if float(xid_alert_severity(c)) in levels]
        self.xid_codes = codes
        terms = [f"{last} == {a}" if a == b else f"{last} >= {a} <= {b}" for a, b in _ranges(codes)]
        if float(UNCATALOGUED_SEVERITY) in levels:
            terms.append(f"{last} >= {_XID_TABLE_END}")
        changed = f"max without ({', '.join(WORKLOAD_LABELS)}) (changes({self._raw(dcgm.XID_ERRORS, m)}[{XID_WINDOW}]))"
        return f"({' or '.join(terms)}) and {changed} > 0"

    # -------------------------------------------------------------- texts

    def _lookup_expr(self, expr_of: Callable[[tuple[str, ...]], str]) -> str:
        """A Go template pipeline making the PromQL of a per-subject value (for `query`)."""
        label = dcgm.LABEL_UUID if self.rule.target == GPU else dcgm.LABEL_HOST
        expr = expr_of((*self.scope, _SUBJECT)).replace("%", "%%")
        expr = expr.replace(_SUBJECT, f'{label}="%[1]s"')  # [1]: every use takes the one argument
        return f"printf `{expr}` $labels.{label}"

    def _lookup(self, what: str, spec: str) -> str:
        """A Go template that queries the threshold or limit of this GPU (or node)."""
        first = self.rule.conditions[0]

        def expr_of(m: tuple[str, ...]) -> str:
            if what == "limit":
                assert first.ref is not None
                return self._signal(first.ref, m)
            return self._threshold(first, m)

        return f"{{{{ with {self._lookup_expr(expr_of)} | query }}}}{_number_text('. | first | value', spec)}{{{{ end }}}}"

    def _placeholder(self, name: str, spec: str) -> str:
        rule, first = self.rule, self.rule.conditions[0]
        labels = {"node": dcgm.LABEL_HOST, "gpu": dcgm.LABEL_UUID, "gpu_index": dcgm.LABEL_GPU, "model": dcgm.LABEL_MODEL}
        if name == "rule":
            return rule.name
        if name == "severity":
            return rule.severity.label
        if name in labels:
            return _label_ref(labels[name])
        if name in ("site", "customer"):  # labels a relabelling may add; else what the engine says
            missing = "(no customer)" if name == "customer" and rule.target == GPU else "?"
            return f"{{{{ with $labels.{name} }}}}{{{{ . }}}}{{{{ else }}}}{missing}{{{{ end }}}}"
        if name == "value":
            return _number_text("$value", spec)
        if name in ("threshold", "limit") and first.ref is None:
            return _format(first.value, spec)
        if name in ("threshold", "limit"):
            return self._lookup(name, spec)
        if self.xid_codes is not None and name in _XID_TEXTS:
            return self._xid_text(name)
        return "?"  # as the engine renders a placeholder without a value

    def _xid_text(self, name: str) -> str:
        """What the XID catalogue says about the GPU's last XID: one branch per distinct text of
        the codes the rule fires on, as the engine's template values give them."""
        if name == "xid":
            return '{{ printf "%.0f" $xid }}'

        def pick(info: XidInfo) -> str:
            return str(xid_template_values(info)[name])

        catalogue = xid_catalog()
        codes_of: dict[str, list[int]] = {}
        for code in self.xid_codes or ():
            if code in catalogue:
                codes_of.setdefault(pick(catalogue[code]), []).append(code)
        branches = [f"if eq $xid {' '.join(f'{c}.0' for c in codes)} }}}}{_literal(text)}" for text, codes in codes_of.items()]
        otherwise = _literal(pick(describe_xid(-1)))
        if not branches:
            return otherwise
        return "{{ " + "{{ else ".join(branches) + "{{ else }}" + otherwise + "{{ end }}"

    def _template(self, text: str) -> str:
        """A str.format template of the rule as a Prometheus (Go) template."""
        out: list[str] = []
        names = set()
        for literal, name, spec, _conversion in string.Formatter().parse(text):
            out.append(_literal(literal))
            if name is not None:
                base = re.split(r"[.\[]", name, maxsplit=1)[0]
                names.add(base)
                out.append(self._placeholder(base, spec or ""))
        if self.xid_codes is not None and names & _XID_TEXTS:
            # $xid: the GPU's last XID code, for the placeholders above.
            last = self._lookup_expr(lambda m: self._series(dcgm.XID_ERRORS, m))
            out.insert(0, f"{{{{ $xid := -1.0 }}}}{{{{ with {last} | query }}}}{{{{ $xid = . | first | value }}}}{{{{ end }}}}")
        return "".join(out)


def _literal(text: str) -> str:
    """Text that a Go template prints as it is ("{{" would start an action)."""
    return text.replace("{", '{{ "{" }}')


def _label_ref(label: str) -> str:
    return "{{ $labels." + label + " }}"


def _number_text(pipeline: str, spec: str) -> str:
    """A Go template printing a number as Python's format(value, spec) does: printf for the specs
    Go reads the same (".0f", ".1f", "g", ...); without a spec, Go's shortest form plus ".0" for
    a whole number, as str(float) gives it ("90.0", "85.5")."""
    if _PRINTF_SPEC.match(spec):
        return f'{{{{ {pipeline} | printf "%{spec}" }}}}'
    shortest = f'printf "%v" ({pipeline})'
    return f'{{{{ {shortest} }}}}{{{{ if not (match "[.eEnN]" ({shortest})) }}}}.0{{{{ end }}}}'


def _format(value: float, spec: str) -> str:
    try:
        return format(value, spec)
    except ValueError:
        return _number(value)

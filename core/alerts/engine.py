"""The rule engine: every enabled rule over a whole `FleetSample` per poll, with numpy masks.

Per rule it keeps three arrays over its subjects (when the condition started holding, whether
the alert fires, when the condition last held). Each poll is then a handful of array
operations per rule; Python touches only the subjects whose alert changes state, so a quiet
fleet of 10,000 GPUs costs the same few milliseconds as a small one. A condition that holds for
less than PENDING_VISIBLE_AFTER_S (a reading hovering around its threshold) never leaves the arrays.

The engine does no I/O. It starts from the active alerts the store reloads, and hands back
`AlertChanges` for the store to persist: a restart therefore neither loses nor re-raises an alert.
Acknowledgements and notification marks live in the store, not here.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Mapping

import numpy as np

from gpuops.core.alerts.model import Alert, AlertChange, AlertChanges, AlertState, ChangeKind
from gpuops.core.alerts.rules import Rule
from gpuops.core.alerts.signals import GPU, NODE, SOURCE, EvaluationContext, Inventory, SignalFrame
from gpuops.core.alerts.silences import Maintenance, Silence, silencing
from gpuops.core.telemetry import FleetSample, empty_metrics
from gpuops.core.xid_catalog import XidInfo, describe_xid

log = logging.getLogger("gpuops.alerts")

SOURCE_KEY = "source"
# A pending alert shows (and is stored) once its condition has held this long; shorter blips
# only ever live in the engine's arrays. A restart forgets at most this much of a `for` timer.
PENDING_VISIBLE_AFTER_S = 30.0
NODE_KEY_PREFIX = "node:"


class _RuleState:
    """One rule's per-subject timers, in the order of the subjects of the current inventory."""

    def __init__(
        self, rule: Rule, keys: list[str], active: Mapping[tuple[str, str], Alert], previous: _RuleState | None
    ) -> None:
        self.rule = rule
        self.keys = keys
        self.inventory: Inventory | None = None
        n = len(keys)
        self.pending_at = np.full(n, np.nan)
        self.firing = np.zeros(n, dtype=bool)
        self.last_true = np.full(n, np.nan)
        self.prev_true = np.zeros(n, dtype=bool)
        self.announced = np.zeros(n, dtype=bool)  # has an Alert (stored, visible), not just a timer
        # Timers carry over from the previous inventory by subject; alerts loaded from the store
        # (or of subjects that were away) start from what was persisted.
        before = {key: i for i, key in enumerate(previous.keys)} if previous is not None else {}
        for i, key in enumerate(keys):
            j = before.get(key)
            if j is not None and previous is not None:
                self.pending_at[i], self.firing[i] = previous.pending_at[j], previous.firing[j]
                self.last_true[i], self.prev_true[i] = previous.last_true[j], previous.prev_true[j]
                self.announced[i] = previous.announced[j]
                continue
            alert = active.get((rule.name, key))
            if alert is not None:
                self.pending_at[i] = alert.pending_at
                self.firing[i] = alert.state is AlertState.FIRING
                self.announced[i] = True
                self.last_true[i] = alert.pending_at if alert.last_true_at is None else alert.last_true_at


def evaluation_time(now: float | None) -> float:
    """The epoch seconds a poll is evaluated at: `now` if given (replays, tests), else the wall clock."""
    return time.time() if now is None else float(now)


def _subject_keys(target: str, inventory: Inventory) -> list[str]:
    if target == GPU:
        return inventory.uuids
    if target == NODE:
        return [NODE_KEY_PREFIX + name for name in inventory.node_names]
    return [SOURCE_KEY]


class AlertEngine:
    """Evaluates rules poll after poll. Not thread-safe: one owner (the collector's worker)."""

    def __init__(
        self,
        rules: Iterable[Rule],
        *,
        poll_interval_s: float,
        active: Iterable[Alert] = (),
        next_id: int = 1,
        node_baseline: Mapping[str, int] | None = None,
    ) -> None:
        self.poll_interval_s = float(poll_interval_s)
        self._active: dict[tuple[str, str], Alert] = {(a.rule, a.key): a for a in active if a.active}
        self._next_id = max([next_id, *(a.id + 1 for a in self._active.values())])
        self._node_baseline: dict[str, int] = dict(node_baseline or {})
        self._silences: tuple[Silence, ...] = ()
        self._maintenance: dict[str, Maintenance] = {}
        self._mutes_dirty = True
        self._next_mute_boundary = np.inf
        self._stale_nodes: frozenset[str] = frozenset()
        self._inventory: Inventory | None = None
        self._last_sample: FleetSample | None = None
        self._baseline_for: Inventory | None = None
        self._baseline_array = np.zeros(0, dtype=np.int64)
        self._states: dict[str, _RuleState] = {}
        self._scope_cache: dict[str, np.ndarray] = {}
        self._scope_customers: Mapping[str, str] | None = None
        self.set_rules(rules)

    # ------------------------------------------------------------ configuration

    def set_rules(self, rules: Iterable[Rule]) -> None:
        """Replace the rule set; alerts of rules that are gone or disabled resolve at the next poll."""
        self._rules = tuple(r for r in rules if r.enabled)
        self._scope_cache = {}

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    def set_silences(self, silences: Iterable[Silence], maintenance: Mapping[str, Maintenance]) -> None:
        """The silences and maintenance set in force; mutes are recomputed at the next poll if they changed."""
        silences, maintenance = tuple(silences), dict(maintenance)
        if silences != self._silences or maintenance != self._maintenance:
            self._silences, self._maintenance = silences, maintenance
            self._mutes_dirty = True

    @property
    def active(self) -> list[Alert]:
        return sorted(self._active.values(), key=lambda a: a.id)

    @property
    def node_baseline(self) -> dict[str, int]:
        return dict(self._node_baseline)

    # ------------------------------------------------------------ evaluation

    def evaluate(
        self,
        sample: FleetSample,
        now: float | None = None,
        *,
        allocated: np.ndarray | None = None,
        customers: Mapping[str, str] | None = None,
        last_fresh_ts: np.ndarray | None = None,
    ) -> AlertChanges:
        """One poll: which alerts began pending, began firing, were cancelled or resolved, or changed."""
        now = evaluation_time(now)
        changes: dict[tuple[str, str], AlertChange] = {}
        if self._adopt_inventory(sample, customers):
            self._retire_vanished(now, changes)
        inventory = self._inventory
        assert inventory is not None
        self._last_sample = sample
        context = EvaluationContext(now, self.poll_interval_s, allocated, customers, last_fresh_ts)
        raised = self._raise_node_baseline(inventory)
        frames = {t: SignalFrame(t, sample, inventory, context, self._baseline_array) for t in (GPU, NODE, SOURCE)}
        seen_rules = set()
        for rule in self._rules:
            seen_rules.add(rule.name)
            self._evaluate_rule(rule, frames[rule.target], customers, now, changes)
        for key, alert in list(self._active.items()):
            if key[0] not in seen_rules:  # rule removed or disabled
                self._finish(alert, now, changes)
        self._update_mutes(sample.stale_nodes, now, changes)
        return AlertChanges(ts=now, changes=tuple(changes.values()), node_gpu_counts=raised)

    def source_failed(self, error: str, now: float | None = None) -> AlertChanges:
        """A poll that failed outright (SourceError): no sample, so only the rules reading
        `source_down` are evaluated; every other alert keeps its state until data returns."""
        now = evaluation_time(now)
        sample = self._last_sample if self._last_sample is not None else _empty_sample(now)
        if self._inventory is None:
            self._adopt_inventory(sample, None)
        inventory = self._inventory
        assert inventory is not None
        context = EvaluationContext(now, self.poll_interval_s, source_error=error)
        frame = SignalFrame(SOURCE, sample, inventory, context, self._baseline_array)
        changes: dict[tuple[str, str], AlertChange] = {}
        for rule in self._rules:
            if rule.target == SOURCE and "source_down" in rule.signals():
                self._evaluate_rule(rule, frame, None, now, changes)
        self._update_mutes(self._stale_nodes, now, changes)
        return AlertChanges(ts=now, changes=tuple(changes.values()))

    def _adopt_inventory(self, sample: FleetSample, customers: Mapping[str, str] | None) -> bool:
        """Follow the sample's inventory; True when GPUs appeared or vanished."""
        current = self._inventory
        if current is not None and sample.gpus is not current.gpus and sample.gpus == current.gpus:
            current.gpus = sample.gpus  # an equal inventory in a new tuple: nothing to rebuild
        changed = current is None or sample.gpus is not current.gpus
        if changed:
            self._inventory = Inventory(sample.gpus)
            self._scope_cache = {}
        if customers is not self._scope_customers:
            self._scope_customers = customers
            self._scope_cache = {}
        return changed

    def _retire_vanished(self, now: float, changes: dict[tuple[str, str], AlertChange]) -> None:
        """Alerts of GPUs no longer in the inventory end: nothing could ever resolve them, and
        the node's `gpus_missing` alert says the GPU is gone."""
        inventory = self._inventory
        assert inventory is not None
        present = inventory.position
        for alert in list(self._active.values()):
            if alert.gpu_uuid is not None and alert.gpu_uuid not in present:
                self._finish(alert, now, changes)

    def _raise_node_baseline(self, inventory: Inventory) -> dict[str, int]:
        """Remember the most GPUs each node has reported; only an inventory change can raise it."""
        if self._baseline_for is inventory:
            return {}
        raised = {}
        for name, count in zip(inventory.node_names, inventory.gpu_count.tolist(), strict=True):
            if count > self._node_baseline.get(name, 0):
                self._node_baseline[name] = raised[name] = count
        self._baseline_array = np.array([self._node_baseline.get(n, 0) for n in inventory.node_names])
        self._baseline_for = inventory
        return raised

    def _state_of(self, rule: Rule, frame: SignalFrame) -> _RuleState:
        state = self._states.get(rule.name)
        if state is not None and state.rule != rule:
            state = None  # the rule changed: its timers restart from the active alerts
        if state is None or state.inventory is not frame.inventory:
            keys = _subject_keys(rule.target, frame.inventory)
            state = self._states[rule.name] = _RuleState(rule, keys, self._active, state)
            state.inventory = frame.inventory
        return state

    def _scope_mask(self, rule: Rule, frame: SignalFrame, customers: Mapping[str, str] | None) -> np.ndarray | None:
        if rule.scope.kind == "fleet":
            return None
        mask = self._scope_cache.get(rule.name)
        if mask is None:
            inventory, wanted = frame.inventory, set(rule.scope.values)
            of_gpu = {
                "site": lambda g: g.site,
                "node": lambda g: g.node,
                "model": lambda g: g.name,
                "customer": lambda g: (customers or {}).get(g.uuid),
            }[rule.scope.kind]
            gpu_mask = np.array([of_gpu(g) in wanted for g in inventory.gpus], dtype=bool)
            if rule.target == NODE:
                gpu_mask = np.bincount(inventory.node_of_gpu, weights=gpu_mask, minlength=len(inventory.node_names)) > 0
            mask = self._scope_cache[rule.name] = gpu_mask
        return mask

    def _evaluate_rule(
        self, rule: Rule, frame: SignalFrame, customers: Mapping[str, str] | None, now: float,
        changes: dict[tuple[str, str], AlertChange],
    ) -> None:
        state = self._state_of(rule, frame)
        cond = rule.conditions[0].holds(frame)
        for condition in rule.conditions[1:]:
            cond &= condition.holds(frame)
        scope = self._scope_mask(rule, frame, customers)
        if scope is not None:
            cond &= scope
        active = ~np.isnan(state.pending_at)
        new = cond & ~active
        state.pending_at[new] = now
        state.last_true[cond] = now
        pending = ~state.firing & (active | new)
        fire = pending & cond & (now - state.pending_at >= rule.for_s)
        cancel = pending & ~cond
        quiet = state.firing & ~cond
        resolve = quiet & (now - state.last_true >= rule.keep_firing_for_s)
        if rule.clear and resolve.any():
            cleared = rule.clear[0].holds(frame, unknown=True)
            for condition in rule.clear[1:]:
                cleared &= condition.holds(frame, unknown=True)
            resolve &= cleared
        falling = quiet & state.prev_true & ~resolve
        state.prev_true = cond
        # A pending alert becomes visible (and stored) only once it has lasted a while, so that
        # values hovering around a threshold cost array writes, not database rows.
        announce = pending & cond & ~fire & ~state.announced & (now - state.pending_at >= PENDING_VISIBLE_AFTER_S)
        touched = announce | fire | (cancel & state.announced) | resolve | falling
        state.pending_at[cancel] = np.nan
        if not touched.any():
            return
        for i in np.flatnonzero(touched).tolist():
            key = (rule.name, state.keys[i])
            alert = self._active.get(key)
            if cancel[i] or resolve[i]:
                state.pending_at[i] = np.nan
                state.last_true[i] = np.nan
                state.firing[i] = state.announced[i] = False
                if alert is not None:
                    self._finish(alert, now, changes, cancelled=bool(cancel[i]))
                continue
            if alert is None:
                alert = self._new_alert(rule, state.keys[i], frame, i, customers, float(state.pending_at[i]), now)
                state.announced[i] = True
                changes[key] = AlertChange(ChangeKind.PENDING, alert)
            if fire[i]:
                state.firing[i] = True
                # The summary tells the values at the moment it fired.
                values = template_values(rule, frame, i, customers)
                alert = dataclasses.replace(
                    alert, state=AlertState.FIRING, started_at=now, last_true_at=now,
                    summary=render_template(rule.summary, values), runbook=render_template(rule.runbook, values),
                )
                changes[key] = AlertChange(ChangeKind.FIRING, alert)
            elif falling[i] and alert.last_true_at != state.last_true[i]:
                # Stored so that keep_firing_for counts from the right time after a restart.
                alert = dataclasses.replace(alert, last_true_at=float(state.last_true[i]))
                changes[key] = AlertChange(ChangeKind.UPDATED, alert)
            self._active[key] = alert

    def _finish(self, alert: Alert, now: float, changes: dict[tuple[str, str], AlertChange], *, cancelled: bool = False) -> None:
        key = (alert.rule, alert.key)
        del self._active[key]
        if cancelled or alert.state is AlertState.PENDING:
            changes[key] = AlertChange(ChangeKind.CANCELLED, alert)
            return
        resolved = dataclasses.replace(alert, state=AlertState.RESOLVED, ended_at=now)
        changes[key] = AlertChange(ChangeKind.RESOLVED, resolved)

    def _new_alert(
        self, rule: Rule, key: str, frame: SignalFrame, i: int, customers: Mapping[str, str] | None,
        pending_at: float, now: float,
    ) -> Alert:
        labels = {"rule": rule.name, "severity": rule.severity.label, **_subject_labels(rule.target, frame, i, customers)}
        values = template_values(rule, frame, i, customers)
        alert = Alert(
            id=self._next_id, rule=rule.name, key=key, severity=rule.severity, state=AlertState.PENDING,
            labels=labels, summary=render_template(rule.summary, values), runbook=render_template(rule.runbook, values),
            pending_at=pending_at, last_true_at=now,
        )
        self._next_id += 1
        # Mutes of new alerts are set in _update_mutes.
        return alert

    # ------------------------------------------------------------ mutes

    def _update_mutes(self, stale_nodes: frozenset[str], now: float, changes: dict[tuple[str, str], AlertChange]) -> None:
        """Silence, maintenance and inhibition of every alert whose inputs changed. Inhibition: a
        stale node's GPU alerts are muted, as its node alert already says the data is old."""
        recheck_all = self._mutes_dirty or stale_nodes != self._stale_nodes or now >= self._next_mute_boundary
        self._stale_nodes = stale_nodes
        if recheck_all:
            keys = list(self._active)
            self._mutes_dirty = False
            boundaries = [t for s in self._silences for t in (s.starts_at, s.ends_at) if t > now]
            self._next_mute_boundary = min(boundaries, default=np.inf)
        else:
            keys = [k for k, c in changes.items() if c.kind in (ChangeKind.PENDING, ChangeKind.FIRING) and k in self._active]
        for key in keys:
            alert = self._active[key]
            silenced_by = silencing(alert.labels, self._silences, self._maintenance, now)
            inhibited = "gpu" in alert.labels and alert.labels.get("node") in stale_nodes
            if silenced_by == alert.silenced_by and inhibited == alert.inhibited:
                continue
            alert = dataclasses.replace(alert, silenced_by=silenced_by, inhibited=inhibited)
            self._active[key] = alert
            previous = changes.get(key)
            changes[key] = AlertChange(previous.kind if previous else ChangeKind.UPDATED, alert)


def _empty_sample(ts: float) -> FleetSample:
    """The fleet as known before any poll succeeded: no GPUs."""
    return FleetSample(ts=ts, gpus=(), metrics=empty_metrics(0), state=np.zeros(0, dtype=np.uint8), processes=())


def _subject_labels(target: str, frame: SignalFrame, i: int, customers: Mapping[str, str] | None) -> dict[str, str]:
    inventory = frame.inventory
    if target == GPU:
        gpu = inventory.gpus[i]
        labels = {"node": gpu.node, "gpu": gpu.uuid, "gpu_index": str(gpu.index), "model": gpu.name}
        if gpu.site:
            labels["site"] = gpu.site
        customer = (customers or {}).get(gpu.uuid)
        if customer:
            labels["customer"] = customer
        return labels
    if target == NODE:
        labels = {"node": inventory.node_names[i]}
        site = inventory.node_site[i]
        if site:
            labels["site"] = site
        return labels
    return {}


def xid_template_values(info: XidInfo) -> dict[str, int | str]:
    """The XID placeholders of a summary or description, as the catalogue fills them for `info`
    (the Prometheus rules export renders the same texts)."""
    return {
        "xid": info.code,
        "xid_description": info.description,
        "xid_action": info.immediate_action or "no action given",
        "xid_action_text": info.immediate_action_text or "none given",
    }


def template_values(rule: Rule, frame: SignalFrame, i: int, customers: Mapping[str, str] | None) -> dict:
    """What a rule's summary and runbook placeholders say about subject `i` (see TEMPLATE_FIELDS)."""
    first = rule.conditions[0]
    values: dict = {
        "rule": rule.name, "severity": rule.severity.label,
        "value": float(frame.get(first.signal)[i]),
        "threshold": first.threshold_at(frame, i),
        "limit": first.limit_at(frame, i),
        **_subject_labels(rule.target, frame, i, customers),
    }
    if rule.target == GPU:
        values.setdefault("customer", "(no customer)")
        code = frame.get("xid_code")[i]
        if not np.isnan(code):
            values.update(xid_template_values(describe_xid(int(code))))
    if rule.target == SOURCE:
        failure = frame.context.source_error
        values["errors"] = failure if failure is not None else "; ".join(frame.sample.errors) or "(none)"
    return values


class _Blank(dict):
    """Placeholders without a value (e.g. no XID on a custom rule) render as "?" rather than fail."""

    def __missing__(self, key: str) -> str:
        return "?"


def render_template(template: str, values: Mapping[str, object]) -> str:
    try:
        return template.format_map(_Blank(values))
    except (ValueError, TypeError) as exc:  # e.g. {value:.0f} given "?": keep the raw template
        log.debug("template %r: %s", template, exc)
        return template

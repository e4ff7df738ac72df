"""Suggestions from health: rules that map a GPU's findings to a suggested transition with its
reason, "drain the node, then repair (or RMA) the GPU".

Findings come from the history: XID events and falls off the bus over the last `window_h` hours,
and the GPU's last recorded ECC and row-remap counters. Only GPUs still serving (production or
draining) get suggestions; one already in repair, RMA or retired is being dealt with. A rule with
`auto` may be applied without a person (`gpuops nodes suggest --apply`): only its first step,
draining the node, which never stops a running job; repair and RMA stay a person's decision.
`gpuops collect --suggest-rules FILE` applies them every 5 minutes (`AutoDrain`).

The rules file is JSON: {"rules": [{"name": ..., "finding": "xid", "codes": [79], "then": "repair",
"auto": false}, {"finding": "ecc_uncorrectable", "threshold": 10, ...}, {"finding":
"row_remap_failure", ...}, {"finding": "lost", "count": 2, ...}], "window_h": 24}.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpuops.core import jsontext
from gpuops.core.allocations.errors import AllocationError
from gpuops.core.lifecycle.book import read_view
from gpuops.core.lifecycle.states import State
from gpuops.core.logonce import LastingProblem
from gpuops.core.store.connection import open_read_only
from gpuops.core.store.errors import StoreError
from gpuops.core.store.queries import HistoryReader
from gpuops.core.xid_catalog import describe_xid

if TYPE_CHECKING:
    from gpuops.core.allocations.repository import AllocationRepository

log = logging.getLogger("gpuops.lifecycle")

FINDINGS = ("xid", "ecc_uncorrectable", "row_remap_failure", "lost")
DEFAULT_WINDOW_H = 24.0
#: Still serving: a finding on these is news; repair, RMA, retired (and burn-in, which tests it) are in hand.
SERVING = frozenset({State.PRODUCTION, State.DRAINING})


class RulesError(ValueError):
    """The rules file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Rule:
    """`finding` with its parameters (`codes` for xid, `threshold` for ecc_uncorrectable, `count`
    for lost), the state the GPU goes to after draining (`then`), and whether it is applied alone."""

    name: str
    finding: str
    then: State
    codes: tuple[int, ...] = ()
    threshold: float = 1.0
    count: int = 2
    auto: bool = False


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("xid_79_fell_off_bus", "xid", State.REPAIR, codes=(79,)),
    Rule("xid_48_double_bit_ecc", "xid", State.REPAIR, codes=(48,)),
    Rule("xid_94_95_ecc_page_retirement", "xid", State.REPAIR, codes=(94, 95)),
    Rule("row_remap_failure", "row_remap_failure", State.RMA),
    Rule("ecc_uncorrectable", "ecc_uncorrectable", State.RMA, threshold=10.0),
    Rule("lost_twice", "lost", State.REPAIR, count=2),
)


@dataclass(frozen=True)
class Suggestion:
    """Drain `node` (unless it already is), then move GPU `gpu_uuid` to `then`, because of `reason`."""

    node: str
    gpu_uuid: str
    rule: str
    reason: str
    node_state: State
    then: State
    auto: bool

    @property
    def steps(self) -> tuple[State, State]:
        return State.DRAINING, self.then

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(node_state=self.node_state.value, then=self.then.value, suggest="draining")
        return out


def _finding_text(rule: Rule, xids: Counter[int], lost: int, ecc: float, remap: float, window_h: float) -> str | None:
    """Why `rule` fires on a GPU with these findings, or None."""
    if rule.finding == "xid":
        seen = [code for code in rule.codes if xids.get(code)]
        if not seen:
            return None
        return "; ".join(f"XID {c} x{xids[c]} in {window_h:g} h: {describe_xid(c).description}" for c in seen)
    if rule.finding == "lost":
        return f"fell off the bus {lost} times in {window_h:g} h" if lost >= rule.count else None
    if rule.finding == "ecc_uncorrectable":
        return f"{ecc:g} uncorrectable ECC errors (threshold {rule.threshold:g})" if ecc >= rule.threshold else None
    return "row remapping failed: no spare rows left" if remap > 0 else None


def suggestions(
    path: Path, now: float, rules: Sequence[Rule] = DEFAULT_RULES, window_h: float = DEFAULT_WINDOW_H
) -> list[Suggestion]:
    """Every rule that fires on a serving GPU of the history at `path`, by node and GPU."""
    start = now - window_h * 3600
    with HistoryReader(path, read_only=True) as reader:
        xids: dict[str, Counter[int]] = defaultdict(Counter)
        lost: Counter[str] = Counter()
        for event in reader.events(start, now, kinds=["xid", "gpu_lost"]):
            if event.uuid is None:
                continue
            if event.kind == "xid" and event.code is not None:
                xids[event.uuid][event.code] += 1
            elif event.kind == "gpu_lost":
                lost[event.uuid] += 1
        latest = reader.fleet_at(now, staleness_s=window_h * 3600)
    counters: dict[str, tuple[float, float]] = {}
    nodes: dict[str, str] = {}
    if latest is not None:
        for i, gpu in enumerate(latest.gpus):
            m = latest.metrics
            ecc = max(_finite(m["ecc_uncorrected_volatile"][i]), _finite(m["ecc_uncorrected_aggregate"][i]))
            counters[gpu.uuid] = (ecc, _finite(latest.metrics["remapped_rows_failure"][i]))
            nodes[gpu.uuid] = gpu.node
    conn, _layout = open_read_only(path)
    try:
        view = read_view(conn)
        nodes.update(dict(conn.execute("SELECT gpus.uuid, nodes.name FROM gpus JOIN nodes ON nodes.id = gpus.node_id")))
    finally:
        conn.close()
    out = []
    for uuid in sorted(set(xids) | set(lost) | set(counters), key=lambda u: (nodes.get(u, ""), u)):
        node = nodes.get(uuid)
        if node is None or view.gpu_state(uuid, node) not in SERVING:
            continue
        ecc, remap = counters.get(uuid, (0.0, 0.0))
        for rule in rules:
            text = _finding_text(rule, xids.get(uuid, Counter()), lost.get(uuid, 0), ecc, remap, window_h)
            if text is not None:
                out.append(Suggestion(node, uuid, rule.name, text, view.node_state(node), rule.then, rule.auto))
    return out


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else 0.0


def load_rules(path: Path) -> tuple[tuple[Rule, ...], float]:
    """The rules and window of the JSON file at `path`; RulesError naming what is wrong."""
    try:
        data = jsontext.read_file(path)
    except jsontext.UnreadableJson as exc:
        raise RulesError(f"rules file {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RulesError(f'rules file {path}: expected {{"rules": [...], "window_h": N}}')
    window = data.get("window_h", DEFAULT_WINDOW_H)
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0 < window <= 24 * 90:
        raise RulesError(f"rules file {path}: window_h must be hours, above 0 and at most 90 days, not {window!r}")
    return tuple(_rule(path, n, item) for n, item in enumerate(data["rules"], start=1)), float(window)


def _rule(path: Path, n: int, item: Any) -> Rule:
    where = f"rules file {path}, rule {n}"
    if not isinstance(item, dict):
        raise RulesError(f"{where}: expected an object")
    finding = item.get("finding")
    if finding not in FINDINGS:
        raise RulesError(f"{where}: finding must be one of {', '.join(FINDINGS)}, not {finding!r}")
    try:
        then = State(item.get("then", "repair"))
    except ValueError:
        raise RulesError(f"{where}: then must be repair or rma, not {item.get('then')!r}") from None
    if then not in (State.REPAIR, State.RMA):
        raise RulesError(f"{where}: then must be repair or rma, not {then.value}")
    codes = item.get("codes", [])
    if finding == "xid" and (not codes or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes)):
        raise RulesError(f"{where}: an xid rule needs codes, a list of XID numbers")
    threshold, count = item.get("threshold", 1.0), item.get("count", 2)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold <= 0:
        raise RulesError(f"{where}: threshold must be a positive number")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise RulesError(f"{where}: count must be a whole number of at least 1")
    return Rule(str(item.get("name") or f"rule_{n}"), finding, then, tuple(codes), float(threshold), count,
                bool(item.get("auto", False)))


def first_steps(found: Iterable[Suggestion]) -> list[Suggestion]:
    """The automatic suggestions whose node still serves in production: one per node (its first), to drain."""
    seen: set[str] = set()
    out = []
    for s in found:
        if s.auto and s.node_state is State.PRODUCTION and s.node not in seen:
            seen.add(s.node)
            out.append(s)
    return out


def drain_suggested(repo: AllocationRepository, found: Iterable[Suggestion]) -> list[Suggestion]:
    """Drain the nodes the automatic rules among `found` point at (see `first_steps`), each with the
    suggestion as its reason; returns the suggestions applied."""
    from gpuops.core.lifecycle.book import LifecycleBook

    book = LifecycleBook(repo)
    todo = first_steps(found)
    for s in todo:
        book.transition(s.node, State.DRAINING, f"suggested by {s.rule} ({s.gpu_uuid}): {s.reason}")
    return todo


class AutoDrain:
    """The collector's automatic rules: `apply_auto` at most every `every_s`, never raising for a
    history or book problem (logged once while it lasts)."""

    def __init__(
        self, path: Path, rules: Sequence[Rule], window_h: float = DEFAULT_WINDOW_H, *, every_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path, self.rules, self.window_h = Path(path), tuple(rules), window_h
        self._every_s, self._clock = every_s, clock
        self._last: float | None = None
        self._problem = LastingProblem(log, prefix="automatic lifecycle rules: ")

    def maybe_run(self, now: float) -> list[Suggestion]:
        if self._last is not None and self._clock() - self._last < self._every_s:
            return []
        self._last = self._clock()
        try:
            found = suggestions(self.path, now, self.rules, self.window_h)
            applied = []
            if first_steps(found):
                from gpuops.core.allocations.repository import AllocationRepository

                repo = AllocationRepository.open(self.path)
                try:
                    applied = drain_suggested(repo, found)
                finally:
                    repo.close()
        except (StoreError, AllocationError) as exc:
            self._problem.occur(str(exc))
            return []
        self._problem.resolve()
        for s in applied:
            log.warning("%s: drained (suggested by %s for %s: %s)", s.node, s.rule, s.gpu_uuid, s.reason)
        return applied

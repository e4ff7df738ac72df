"""Reading lifecycle states and making transitions, with the book in the history database.

A GPU's state is its own override when it has one (a GPU sent to repair while its node serves
on), else its node's; a GPU set back to production follows its node again, and everything on a
retired node is retired. Transitions go through the allocation repository's transaction, so they
are refused by --read-only, validated first (every problem at once) and written together with
their audit entry (who, when, why, ticket); entering maintenance puts the node in the alerts'
maintenance (its alerts are muted) in the same transaction, leaving it takes it out.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpuops.core.allocations.errors import Problem, ReadOnlyError, ValidationError
from gpuops.core.lifecycle.hooks import HookFailed, HookResult, Hooks
from gpuops.core.lifecycle.states import DEFAULT_STATE, NOT_WHILE_ALLOCATED, RETURNING, State, transition_problem
from gpuops.core.store import meta
from gpuops.core.timefmt import format_ms

if TYPE_CHECKING:
    from gpuops.core.allocations.repository import AllocationRepository

_COLUMNS = "id, ts_ms, node, gpu_uuid, state, previous, reason, ticket, user, until_ms, expected_ms"


@dataclass(frozen=True, slots=True)
class Transition:
    """One recorded change of a node's state (`gpu_uuid` None) or of one GPU's override.
    `until_ms`: the planned end of a maintenance; `expected_ms`: when a GPU in burn-in, repair or
    RMA is expected back in production (what the capacity planner counts)."""

    id: int
    ts_ms: int
    node: str
    gpu_uuid: str | None
    state: State
    previous: State
    reason: str
    ticket: str | None
    user: str
    until_ms: int | None = None
    expected_ms: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, times as ISO 8601 UTC (the audit log's and the CLI's form)."""
        out = asdict(self)
        out.update(state=self.state.value, previous=self.previous.value)
        for key in ("ts_ms", "until_ms", "expected_ms"):
            value = out.pop(key)
            out[key.removesuffix("_ms")] = None if value is None else format_ms(value)
        return out


def _transition(row: tuple) -> Transition:
    i, ts, node, uuid, state, previous, reason, ticket, user, until, expected = row
    return Transition(i, ts, node, uuid, State(state), State(previous), reason, ticket, user, until, expected)


@dataclass(frozen=True)
class LifecycleView:
    """The current states: the latest transition of each node, and of each GPU overriding its node."""

    nodes: Mapping[str, Transition]
    overrides: Mapping[str, Transition]

    def node_state(self, node: str) -> State:
        record = self.nodes.get(node)
        return DEFAULT_STATE if record is None else record.state

    def deciding(self, uuid: str, node: str) -> Transition | None:
        """The transition that puts this GPU in its state (None: nothing recorded, production)."""
        node_record = self.nodes.get(node)
        if node_record is not None and node_record.state is State.RETIRED:
            return node_record
        return self.overrides.get(uuid, node_record)

    def gpu_state(self, uuid: str, node: str) -> State:
        record = self.deciding(uuid, node)
        return DEFAULT_STATE if record is None else record.state


def read_view(conn: sqlite3.Connection) -> LifecycleView:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM lifecycle_transitions WHERE id IN "
        "(SELECT max(id) FROM lifecycle_transitions GROUP BY node, gpu_uuid)"
    ).fetchall()
    nodes, overrides = {}, {}
    for row in rows:
        t = _transition(row)
        if t.gpu_uuid is None:
            nodes[t.node] = t
        elif t.state is not State.PRODUCTION:
            overrides[t.gpu_uuid] = t
    return LifecycleView(nodes, overrides)


def transitions(conn: sqlite3.Connection, *, node: str | None = None, gpu_uuid: str | None = None) -> list[Transition]:
    """Transitions oldest first: all, a node's own (`node`), or those deciding one GPU's state
    (`gpu_uuid` with its `node`: the node's and the GPU's own)."""
    params: tuple[str | None, ...]
    if gpu_uuid is not None:
        sql, params = "WHERE (node = ? AND gpu_uuid IS NULL) OR gpu_uuid = ?", (node, gpu_uuid)
    elif node is not None:
        sql, params = "WHERE node = ? AND gpu_uuid IS NULL", (node,)
    else:
        sql, params = "", ()
    return [_transition(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM lifecycle_transitions {sql} ORDER BY id", params)]


def gpu_nodes(conn: sqlite3.Connection) -> dict[str, str]:
    """UUID -> node of every GPU the history has seen."""
    return dict(conn.execute("SELECT gpus.uuid, nodes.name FROM gpus JOIN nodes ON nodes.id = gpus.node_id"))


def gpu_states(conn: sqlite3.Connection) -> dict[str, State]:
    """The current state of every GPU the history has seen."""
    view = read_view(conn)
    return {uuid: view.gpu_state(uuid, node) for uuid, node in gpu_nodes(conn).items()}


def state_intervals(
    conn: sqlite3.Connection, start_ms: int, end_ms: int, states: Iterable[State]
) -> dict[str, list[tuple[int, int]]]:
    """Per GPU UUID, the [from, to) intervals within [start_ms, end_ms) it spent in one of `states`,
    replaying its node's transitions and its own as `LifecycleView` judges them."""
    wanted = frozenset(states)
    by_node: dict[str, list[Transition]] = defaultdict(list)
    by_gpu: dict[str, list[Transition]] = defaultdict(list)
    for t in transitions(conn):
        if t.ts_ms < end_ms:
            (by_node[t.node] if t.gpu_uuid is None else by_gpu[t.gpu_uuid]).append(t)
    out: dict[str, list[tuple[int, int]]] = {}
    for uuid, node in gpu_nodes(conn).items():
        events = sorted(by_node.get(node, []) + by_gpu.get(uuid, []), key=lambda t: t.id)
        node_state, override, since = DEFAULT_STATE, None, None
        spans = []
        for t in events:
            if t.gpu_uuid is None:
                node_state = t.state
            else:
                override = None if t.state is State.PRODUCTION else t.state
            state = State.RETIRED if node_state is State.RETIRED else (override or node_state)
            if state in wanted and since is None:
                since = t.ts_ms
            elif state not in wanted and since is not None:
                spans.append((since, t.ts_ms))
                since = None
        if since is not None:
            spans.append((since, end_ms))
        clipped = [(max(lo, start_ms), min(hi, end_ms)) for lo, hi in spans if hi > start_ms and lo < end_ms]
        if clipped:
            out[uuid] = clipped
    return out


def out_of_production(conn: sqlite3.Connection) -> dict[str, Transition]:
    """UUID -> the transition that keeps it there, for every GPU the history has seen that is not in production."""
    view = read_view(conn)
    out = {}
    for uuid, node in gpu_nodes(conn).items():
        record = view.deciding(uuid, node)
        if record is not None and record.state is not State.PRODUCTION:
            out[uuid] = record
    return out


def expected_returns(conn: sqlite3.Connection) -> dict[str, int]:
    """UUID -> expected back in production (ms) of every GPU now in burn-in, repair or RMA with a date."""
    return {
        uuid: record.expected_ms for uuid, record in out_of_production(conn).items()
        if record.state in RETURNING and record.expected_ms is not None
    }


@dataclass(frozen=True)
class _Proposal:
    target: State
    node: str
    gpu_uuid: str | None
    reason: str
    ticket: str | None
    until_ms: int | None
    expected_ms: int | None


@dataclass(frozen=True)
class _Checked:
    """A valid proposal, with what it changes: the deciding record, the current state, the audit entity."""

    proposal: _Proposal
    now_ms: int
    record: Transition | None
    current: State
    entity: str
    entity_id: int | None

    def placeholders(self) -> dict[str, str]:
        p = self.proposal
        return {"node": p.node, "gpu": p.gpu_uuid or "", "state": p.target.value, "previous": self.current.value,
                "reason": p.reason, "ticket": p.ticket or ""}


class LifecycleBook:
    """Validated, audited transitions through an allocation repository (its connection, user,
    clock and read-only flag)."""

    def __init__(self, repo: AllocationRepository) -> None:
        self.repo = repo
        self.conn = repo.conn

    def view(self) -> LifecycleView:
        return read_view(self.conn)

    def transition(
        self,
        node: str,
        target: State | str,
        reason: str,
        *,
        gpu_uuid: str | None = None,
        ticket: str | None = None,
        until_ms: int | None = None,
        expected_ms: int | None = None,
        hooks: Hooks | None = None,
    ) -> Transition:
        """Move `node` (or only its GPU `gpu_uuid`) to `target`. Raises ValidationError listing every
        problem, ReadOnlyError in read-only mode; nothing is written then. With `hooks`, the
        target's hook runs once the move is valid and before it is written, outside any write
        transaction (a slow hook never holds the history's write lock); a hook that fails leaves
        the state as it was, records the failure in the audit log and raises HookFailed."""
        proposal = _Proposal(State(target), node, gpu_uuid, reason.strip(), (ticket or "").strip() or None, until_ms,
                             expected_ms)
        what = f"move {node}{'' if gpu_uuid is None else ' GPU ' + gpu_uuid} to {proposal.target.value}"
        hook = None
        if hooks is not None and proposal.target in hooks.commands:
            if self.repo.read_only:
                raise ReadOnlyError(f"read-only mode: cannot {what}")
            checked = self._checked(proposal)
            hook = hooks.run(proposal.target, checked.placeholders())
            if hook is not None and not hook.ok:
                self._record_failed_hook(what, checked, hook)
                said = hook.output.strip()[-300:]
                raise HookFailed(
                    f"cannot {what}: its hook {hook.failure}; the state is unchanged" + (f"; it said: {said}" if said else ""),
                    hook,
                )
        with self.repo.writing(what) as entries:
            checked = self._checked(proposal)
            p, current = proposal, checked.current
            cursor = self.conn.execute(
                f"INSERT INTO lifecycle_transitions ({_COLUMNS.removeprefix('id, ')}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (checked.now_ms, p.node, p.gpu_uuid, p.target.value, current.value, p.reason, p.ticket, self.repo.user,
                 p.until_ms, p.expected_ms),
            )
            made = Transition(
                meta.inserted_id(cursor), checked.now_ms, p.node, p.gpu_uuid, p.target, current, p.reason, p.ticket,
                self.repo.user, p.until_ms, p.expected_ms,
            )
            after = made.as_dict() if hook is None else {**made.as_dict(), "hook": hook.as_dict()}
            before = None if checked.record is None else checked.record.as_dict()
            entries.append(("transition", checked.entity, checked.entity_id, before, after))
            self._follow_in_alerts(made)
        return made

    def _checked(self, p: _Proposal) -> _Checked:
        """`p` against the book now; ValidationError with every problem."""
        now_ms = self.repo.now_ms()
        view = self.view()
        node_id, gpus = self._node(p.node)
        problems = [] if node_id is not None else [Problem(f"unknown node {p.node!r} (not in this history's inventory)")]
        entity, entity_id = "node", node_id
        if p.gpu_uuid is not None and node_id is not None:
            entity, entity_id = "gpu", gpus.get(p.gpu_uuid)
            if entity_id is None:
                problems.append(Problem(f"node {p.node!r} has no GPU {p.gpu_uuid}"))
        if problems:
            raise ValidationError(problems)
        record = view.nodes.get(p.node) if p.gpu_uuid is None else view.deciding(p.gpu_uuid, p.node)
        current = DEFAULT_STATE if record is None else record.state
        problems = _problems(current, p.target, p.reason, p.ticket, p.until_ms, p.expected_ms, now_ms)
        if p.gpu_uuid is not None and view.node_state(p.node) is State.RETIRED:
            problems = [Problem(f"node {p.node!r} is retired: its GPUs are retired with it")]
        if p.target in NOT_WHILE_ALLOCATED:
            problems.extend(self._held(list(gpus) if p.gpu_uuid is None else [p.gpu_uuid], now_ms, p.target))
        if problems:
            raise ValidationError(problems)
        return _Checked(p, now_ms, record, current, entity, entity_id)

    def _record_failed_hook(self, what: str, checked: _Checked, hook: HookResult) -> None:
        p = checked.proposal
        attempted = {"node": p.node, "gpu_uuid": p.gpu_uuid, "state": p.target.value, "previous": checked.current.value,
                     "reason": p.reason, "ticket": p.ticket, "hook": hook.as_dict()}
        with self.repo.writing(f"record the failed hook of: {what}") as entries:
            entries.append(("hook_failed", checked.entity, checked.entity_id, None, attempted))

    def _node(self, node: str) -> tuple[int | None, dict[str, int]]:
        """The node's id in the inventory (None: never seen) and its GPUs (UUID -> id)."""
        row = self.conn.execute("SELECT id FROM nodes WHERE name = ?", (node,)).fetchone()
        if row is None:
            return None, {}
        return row[0], dict(self.conn.execute("SELECT uuid, id FROM gpus WHERE node_id = ? ORDER BY gpu_index", (row[0],)))

    def _held(self, uuids: list[str], now_ms: int, target: State) -> list[Problem]:
        """The GPUs among `uuids` a customer holds now, which must be released or moved first."""
        held = []
        for uuid in uuids:
            for a in self.repo.allocations(gpu_uuid=uuid, start_ms=now_ms, end_ms=now_ms + 1):
                contract = self.repo.contract(a.contract_id)
                holder = self.repo.customer(contract.customer_id).name
                end = "open end" if a.end_ms is None else format_ms(a.end_ms)
                held.append(f"{uuid} ({holder}, contract {contract.name!r}, until {end})")
        if not held:
            return []
        return [Problem(f"{target.value} needs the GPUs free, but customers hold {len(held)}: {', '.join(held)};"
                        " drain the node and release or move them first")]

    def _follow_in_alerts(self, made: Transition) -> None:
        """Something in maintenance has its alerts muted, by the alerts' own means: a node by the
        alerts' maintenance, one GPU by a silence on its `gpu` label until the planned end (expired
        when it leaves maintenance earlier)."""
        from gpuops.core.alerts.persistence import AlertStore
        from gpuops.core.alerts.silences import Matcher

        alerts = AlertStore(self.conn)
        now = made.ts_ms / 1000
        comment = f"lifecycle: {made.reason}"
        if made.gpu_uuid is None:
            if made.state is State.MAINTENANCE:
                alerts.start_maintenance(made.node, now, comment, author=made.user)
            elif made.previous is State.MAINTENANCE:
                alerts.end_maintenance(made.node)
            return
        this_gpu = (Matcher("gpu", "=", made.gpu_uuid),)
        if made.state is State.MAINTENANCE and made.until_ms is not None:
            alerts.add_silence(this_gpu, now, made.until_ms / 1000, comment, now, author=made.user)
        elif made.previous is State.MAINTENANCE:
            for silence in alerts.silences(active_at=now):
                if silence.comment.startswith("lifecycle: ") and silence.matchers == this_gpu:
                    alerts.expire_silence(silence.id, now)


def _problems(
    current: State, target: State, reason: str, ticket: str | None, until_ms: int | None, expected_ms: int | None,
    now_ms: int,
) -> list[Problem]:
    problems = []
    refused = transition_problem(current, target)
    if refused:
        problems.append(Problem(refused))
    if not reason:
        problems.append(Problem("a transition needs a reason"))
    if target is State.RMA and not ticket:
        problems.append(Problem("rma needs the vendor's case number as its ticket"))
    if target is State.MAINTENANCE:
        if until_ms is None:
            problems.append(Problem("maintenance needs its planned end"))
        elif until_ms <= now_ms:
            problems.append(Problem(f"the maintenance end {format_ms(until_ms)} is not in the future"))
    elif until_ms is not None:
        problems.append(Problem("only maintenance has a planned end; burn-in, repair and rma have an expected return"))
    if expected_ms is not None:
        if target not in RETURNING:
            problems.append(Problem(f"only {', '.join(sorted(s.value for s in RETURNING))} have an expected return"))
        elif expected_ms <= now_ms:
            problems.append(Problem(f"the expected return {format_ms(expected_ms)} is not in the future"))
    return problems


def recorded_view(path: Path) -> LifecycleView:
    """The states recorded in the history at `path`, read without writing anything; nothing recorded
    (everything in production) when there is no history there. Raises StoreError for an unusable one."""
    from gpuops.core.store.connection import open_read_only
    from gpuops.core.store.errors import NoHistory

    try:
        conn, _layout = open_read_only(path)
    except NoHistory:
        return LifecycleView({}, {})
    try:
        return read_view(conn)
    finally:
        conn.close()


def with_lifecycle(records: list[dict[str, Any]], path: Path) -> str | None:
    """Give each GPU record (with `uuid` and `node`) its `lifecycle` from the history at `path`, as
    `gpuops status --json` does; when that history cannot be read, `lifecycle` is None and the
    problem is returned."""
    from gpuops.core.store.errors import StoreError

    try:
        view = recorded_view(path)
    except StoreError as exc:
        for record in records:
            record["lifecycle"] = None
        return f"lifecycle unknown: {exc}"
    for record in records:
        record["lifecycle"] = view.gpu_state(record["uuid"], record["node"]).value
    return None

"""`gpuops nodes list` and `gpuops nodes drain|maintenance|repair|rma|retire|burn-in|production NODE
--reason TEXT [--ticket REF]`: the lifecycle of nodes (and, with --gpu, of one GPU of a node).

Transitions go through the lifecycle book: validated (every problem listed, nothing changed),
written with their audit entry (who, when, why, ticket), refused by --read-only (exit 1, as every
change to the book)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpuops.commands._book import add_book_command, run_on_book
from gpuops.commands._options import Failed, UsageError, add_action
from gpuops.commands._output import add_format, add_output, output_file

if TYPE_CHECKING:
    from gpuops.core.allocations.repository import AllocationRepository
    from gpuops.core.lifecycle.hooks import Hooks

#: gpuops nodes VERB -> the lifecycle state it moves to (kept in step with core.lifecycle.states.VERBS; tested).
VERBS = ("drain", "maintenance", "repair", "rma", "retire", "burn-in", "production")
LIST_COLUMNS = ("node", "lifecycle", "since", "user", "reason", "ticket", "until", "expected_back", "gpus", "gpu_overrides")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_book_command(
        subparsers, "nodes",
        help="list node lifecycle states, or move a node (or one GPU) to another state",
        description="Nodes go through burn_in, production, draining (no new allocations), maintenance (planned, with "
        "an end; its alerts muted), repair, rma (with the vendor case number as --ticket) and retired (final). Only "
        "production GPUs are allocated. Every transition needs --reason and is in the audit log.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = add_action(actions, parser, "list", help="every node with its lifecycle state and the GPUs overriding it")
    add_format(listing, ("table", "json", "csv"), default="table", json_alias=True)
    add_output(listing, what="the list")
    suggest = add_action(actions, parser, "suggest",
                         help="transitions the GPUs' health suggests (XID 79/48/94/95, row remap failure, ECC, lost twice)")
    add_format(suggest, ("table", "json"), default="table", json_alias=True)
    add_output(suggest, what="the suggestions")
    suggest.add_argument("--rules", type=Path, default=None, metavar="FILE",
                         help="suggestion rules, JSON (default: the built-in rules; see core/lifecycle/suggest.py)")
    suggest.add_argument("--apply", action="store_true",
                         help="drain the nodes of the suggestions whose rule says auto (only that first step)")
    for verb in VERBS:
        move = add_action(actions, parser, verb, help=f"move a node (or with --gpu one GPU) to {_state_of(verb)}")
        move.add_argument("node", metavar="NODE")
        move.add_argument("--reason", required=True, metavar="TEXT", help="why (required; in the audit log)")
        move.add_argument("--ticket", default=None, metavar="REF",
                          help="ticket or change reference" + ("; for rma the vendor's case number (required)" if verb == "rma"
                                                               else ""))
        move.add_argument("--gpu", default=None, metavar="UUID", help="only this GPU of NODE (a GPU override of its node)")
        move.add_argument(
            "--hooks", type=Path, default=None, metavar="FILE",
            help="scheduler hooks, JSON {\"timeout_s\": N, \"commands\": {\"STATE\": \"COMMAND {node} ...\"}} (default: "
            "lifecycle-hooks.json in the user config directory, if there is one); a failing hook changes nothing",
        )
        if verb == "maintenance":
            move.add_argument("--until", required=True, metavar="WHEN",
                              help="planned end: ISO 8601 or a duration from now (4h, 2d)")
        if verb in ("burn-in", "repair", "rma"):
            move.add_argument("--expected-back", default=None, metavar="WHEN",
                              help="expected back in production, ISO 8601 or a duration from now (the capacity plan counts it)")
    parser.set_defaults(run=run)


def _state_of(verb: str) -> str:
    from gpuops.core.lifecycle.states import VERBS as STATES

    return STATES[verb].value


def future_ms(flag: str, text: str, now: float) -> int:
    """Epoch ms of a time ahead: ISO 8601, or a duration from `now`; a usage error otherwise."""
    from gpuops.core.timefmt import BadTime, BadTimeSpec, parse_duration, parse_iso_ms

    try:
        return round((now + parse_duration(text)) * 1000)
    except BadTimeSpec:
        pass
    try:
        return parse_iso_ms(text)
    except BadTime:
        raise UsageError(f"{flag} {text!r}: expected ISO 8601 (2026-01-31T12:00:00Z) or a duration from now (4h, 2d)") from None


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        return run_on_book(args, lambda repo: _list(repo, args), writes=False)
    if args.action == "suggest":
        return _suggest(args)
    now = time.time()
    until = getattr(args, "until", None)
    expected = getattr(args, "expected_back", None)
    times = {
        "until_ms": None if until is None else future_ms("--until", until, now),
        "expected_ms": None if expected is None else future_ms("--expected-back", expected, now),
    }
    hooks = _hooks(args.hooks)
    return run_on_book(args, lambda repo: _move(repo, args, hooks, **times), writes=True)


def _hooks(path: Path | None) -> Hooks | None:
    """The scheduler hooks of --hooks, or of the default file when there is one."""
    from gpuops.core.lifecycle.hooks import HookConfigError, configured_hooks

    try:
        return configured_hooks(path)
    except HookConfigError as exc:
        raise Failed(str(exc)) from None


def _move(repo: AllocationRepository, args: argparse.Namespace, hooks: Hooks | None, **times: int | None) -> int:
    from gpuops.core.lifecycle.book import LifecycleBook

    made = LifecycleBook(repo).transition(
        args.node, _state_of(args.action), args.reason, gpu_uuid=args.gpu, ticket=args.ticket, hooks=hooks, **times
    )
    what = made.node if made.gpu_uuid is None else f"{made.node} GPU {made.gpu_uuid}"
    ticket = f", ticket {made.ticket}" if made.ticket else ""
    print(f"{what}: {made.previous.value} -> {made.state.value} ({made.reason}{ticket})")
    return 0


def node_rows(repo: AllocationRepository) -> list[dict[str, Any]]:
    """One object per node of the history's inventory: its state and the GPUs overriding it."""
    from gpuops.core.lifecycle.book import gpu_nodes, read_view
    from gpuops.core.lifecycle.states import DEFAULT_STATE

    view = read_view(repo.conn)
    gpus_of: dict[str, list[str]] = {}
    for uuid, node in gpu_nodes(repo.conn).items():
        gpus_of.setdefault(node, []).append(uuid)
    names = [name for (name,) in repo.conn.execute("SELECT name FROM nodes ORDER BY name")]
    rows = []
    for node in names:
        record = view.nodes.get(node)
        row: dict[str, Any] = {"node": node, "lifecycle": (record.state if record else DEFAULT_STATE).value}
        detail = record.as_dict() if record else {}
        row.update(since=detail.get("ts"), user=detail.get("user"), reason=detail.get("reason"),
                   ticket=detail.get("ticket"), until=detail.get("until"), expected_back=detail.get("expected"))
        row["gpus"] = len(gpus_of.get(node, []))
        row["gpu_overrides"] = [
            {"gpu_uuid": uuid, "lifecycle": o.state.value, "since": o.as_dict()["ts"], "user": o.user, "reason": o.reason,
             "ticket": o.ticket, "expected_back": o.as_dict()["expected"]}
            for uuid in sorted(gpus_of.get(node, [])) if (o := view.overrides.get(uuid)) is not None
        ]
        rows.append(row)
    return rows


def _list(repo: AllocationRepository, args: argparse.Namespace) -> int:
    from gpuops.core.csv_cells import write_rows
    from gpuops.core.jsontext import dumps

    rows = node_rows(repo)
    with output_file(args.output, force=args.force) as tmp:
        if args.format == "json":
            tmp.write_text(dumps(rows, indent=2) + "\n", encoding="utf-8")
        elif args.format == "csv":
            with open(tmp, "w", newline="", encoding="utf-8") as handle:
                write_rows(handle, LIST_COLUMNS, ([_cell(r, c) for c in LIST_COLUMNS] for r in rows))
        else:
            tmp.write_text(_table(rows), encoding="utf-8")
    return 0


def _cell(row: dict[str, Any], column: str) -> Any:
    if column == "gpu_overrides":
        return " ".join(f"{o['gpu_uuid']}={o['lifecycle']}" for o in row[column])
    return row[column]


def _table(rows: list[dict[str, Any]]) -> str:
    header = ("NODE", "LIFECYCLE", "SINCE", "GPUS", "TICKET", "REASON")
    lines = [header] + [
        (r["node"], r["lifecycle"] + (f" (+{len(r['gpu_overrides'])} GPU)" if r["gpu_overrides"] else ""),
         r["since"] or "-", str(r["gpus"]), r["ticket"] or "-", r["reason"] or "-")
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    text = "".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)) + "  " + line[-1] + "\n"
                   for line in lines)
    return text + f"{len(rows)} node(s)\n"


def _already(state: str) -> str:
    return "" if state == "production" else f" (it is {state})"


def _suggest(args: argparse.Namespace) -> int:
    """List what health suggests; with --apply, drain the nodes of the automatic rules."""
    from gpuops.core.jsontext import dumps
    from gpuops.core.lifecycle.suggest import (
        DEFAULT_RULES,
        DEFAULT_WINDOW_H,
        RulesError,
        drain_suggested,
        load_rules,
        suggestions,
    )
    from gpuops.core.store.errors import StoreError
    from gpuops.core.store.paths import default_db_path

    try:
        rules, window_h = (DEFAULT_RULES, DEFAULT_WINDOW_H) if args.rules is None else load_rules(args.rules)
        found = suggestions(args.db or default_db_path(), time.time(), rules, window_h)
    except (RulesError, StoreError) as exc:
        raise Failed(str(exc)) from None
    with output_file(args.output, force=args.force) as tmp:
        if args.format == "json":
            tmp.write_text(dumps([s.as_dict() for s in found], indent=2) + "\n", encoding="utf-8")
        else:
            lines = [
                f"{s.node}  {s.gpu_uuid}  {s.rule}: drain{_already(s.node_state.value)}, then {s.then.value}"
                f"{'  [auto]' if s.auto else ''}\n    {s.reason}\n"
                for s in found
            ]
            tmp.write_text("".join(lines) + f"{len(found)} suggestion(s)\n", encoding="utf-8")
    if not args.apply:
        return 0

    def drain(repo: AllocationRepository) -> int:
        for s in drain_suggested(repo, found):
            print(f"{s.node}: production -> draining (suggested by {s.rule})", file=sys.stderr)
        return 0

    return run_on_book(args, drain, writes=True)

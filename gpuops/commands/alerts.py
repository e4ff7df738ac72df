"""`gpuops alerts`: the alerts recorded in the history database, as a table or JSON.

Active alerts (pending and firing) unless --all, which lists history too, newest first. The JSON
is a list of objects with at least: id, rule, severity, state, gpu_uuid, node, started_at,
summary, acknowledged_by (see `core.alerts.model.Alert.to_json`).

Subcommands act on alerts (the console's Alerts tab does the same):
  ack ID [--note TEXT]                          acknowledge an active alert as the OS user
  silence --match node=x --match rule=~xid_.* --for 2h --comment TEXT [--start TIME]
  silences [--json]                             silences in force or still to come
  expire-silence ID                             end a silence now
  maintenance start|end NODE [--comment TEXT]   mute every alert of a node while it is worked on

--export-rules FILE writes the rule set as a JSON rules file; --import-rules FILE replaces the rule
set with a file's after checking every rule (exit 2 listing every problem, nothing changed). A
running collector picks imported rules up at its next poll.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpuops.core.alerts.persistence import AlertStore

# --all lists at most this many alerts (newest first).
HISTORY_LIMIT = 10_000


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "alerts",
        help="list active alerts (or all of them) from the history database",
        description="List the alerts recorded by `gpuops collect` or the console: active ones, or all with --all.",
    )
    parser.add_argument("--db", type=Path, default=None, metavar="PATH", help="history database (default: in the user data directory)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of alert objects")
    parser.add_argument("--all", action="store_true", help=f"include resolved alerts (newest first, at most {HISTORY_LIMIT})")
    rules = parser.add_mutually_exclusive_group()
    rules.add_argument("--export-rules", type=Path, metavar="FILE", help="write the alert rules to FILE (JSON) and exit")
    rules.add_argument("--import-rules", type=Path, metavar="FILE", help="replace the alert rules with FILE's and exit")
    parser.set_defaults(run=run, action=None)
    _add_actions(parser)


def _add_actions(parser: argparse.ArgumentParser) -> None:
    """The optional subcommands; each also accepts --db after its own arguments."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", type=Path, default=argparse.SUPPRESS, metavar="PATH", help="history database")

    ack = actions.add_parser("ack", parents=[db], help="acknowledge an active alert (as the OS user)")
    ack.add_argument("id", type=int, help="alert id (first column of `gpuops alerts`)")
    ack.add_argument("--note", default="", help="why, or what is being done about it")

    silence = actions.add_parser(
        "silence", parents=[db], help="mute matching alerts for a while",
        description="Mute alerts whose labels match every --match (labels: node, gpu, customer, rule, severity, site, model).",
    )
    silence.add_argument(
        "--match", action="append", required=True, metavar="MATCHER",
        help="label=value, label!=value, label=~regex or label!~regex (repeatable; all must match)",
    )
    silence.add_argument("--for", dest="duration", required=True, metavar="DURATION", help="how long, e.g. 30m, 2h, 1d")
    silence.add_argument("--start", default=None, metavar="TIME", help="ISO 8601 start time (default: now)")
    silence.add_argument("--comment", required=True, help="why (shown with every muted alert)")

    silences = actions.add_parser("silences", parents=[db], help="list silences in force or still to come")
    silences.add_argument("--json", action="store_true", help="print a JSON list")

    expire = actions.add_parser("expire-silence", parents=[db], help="end a silence now")
    expire.add_argument("id", type=int, help="silence id (from `gpuops alerts silences`)")

    maintenance = actions.add_parser("maintenance", parents=[db], help="put a node in maintenance (mutes its alerts) or take it out")
    maintenance.add_argument("change", choices=("start", "end"))
    maintenance.add_argument("node", help="node name, as in the alerts' node label")
    maintenance.add_argument("--comment", default="", help="why (start only)")


def _when(ts: float | None) -> str:
    import time

    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _rules_file(args: argparse.Namespace, store: "AlertStore", text: str | None) -> int:
    import time

    from gpuops.core.alerts.rules import RuleError

    if text is not None:
        try:
            rules = store.import_rules(text, time.time(), where=str(args.import_rules))
        except RuleError as exc:
            print(f"gpuops: rules not imported, nothing changed:\n{exc}", file=sys.stderr)
            return 2
        print(f"imported {len(rules)} rules from {args.import_rules}")
        return 0
    try:
        args.export_rules.write_text(store.export_rules(), encoding="utf-8")
    except OSError as exc:
        print(f"gpuops: cannot write {args.export_rules}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"wrote {len(store.rules())} rules to {args.export_rules}")
    return 0


def _act(args: argparse.Namespace, store: "AlertStore") -> int:
    """One subcommand; bad input exits 2 with one line saying what is wrong, changing nothing."""
    import time

    from gpuops.core.alerts.persistence import AlertNotFound
    from gpuops.core.alerts.silences import SilenceError
    from gpuops.core.timespec import BadTimeSpec, parse_duration, parse_time

    now = time.time()
    try:
        if args.action == "ack":
            alert = store.acknowledge(args.id, now, note=args.note)
            print(f"acknowledged alert {alert.id} ({alert.rule}) as {alert.acknowledged_by}")
        elif args.action == "silence":
            starts_at = now if args.start is None else parse_time(args.start, now)
            duration = parse_duration(args.duration)
            silence = store.add_silence(args.match, starts_at, starts_at + duration, args.comment, now)
            matchers = " ".join(str(m) for m in silence.matchers)
            print(f"silence {silence.id}: {matchers} until {_when(silence.ends_at)}")
        elif args.action == "silences":
            _print_silences(store.silences(active_at=now), args.json)
        elif args.action == "expire-silence":
            store.expire_silence(args.id, now)
            print(f"silence {args.id} expired")
        elif args.change == "start":
            entry = store.start_maintenance(args.node, now, args.comment)
            print(f"{entry.node} is in maintenance (its alerts are muted) since {_when(entry.since)}")
        else:
            if args.node not in store.maintenance():
                print(f"gpuops: {args.node} is not in maintenance", file=sys.stderr)
                return 2
            store.end_maintenance(args.node)
            print(f"{args.node} left maintenance")
    except (AlertNotFound, SilenceError, BadTimeSpec) as exc:
        print(f"gpuops: {exc}", file=sys.stderr)
        return 2
    return 0


def _print_silences(silences: list, as_json: bool) -> None:
    if as_json:
        rows = [
            {"id": s.id, "matchers": [str(m) for m in s.matchers], "starts_at": s.starts_at, "ends_at": s.ends_at,
             "author": s.author, "comment": s.comment, "created_at": s.created_at}
            for s in silences
        ]
        json.dump(rows, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    if not silences:
        print("no silences")
        return
    for s in silences:
        matchers = " ".join(str(m) for m in s.matchers)
        print(f"{s.id}  {_when(s.starts_at)} .. {_when(s.ends_at)}  {s.author}  {matchers}  {s.comment}")


def run(args: argparse.Namespace) -> int:
    from gpuops.core.alerts.persistence import AlertStore
    from gpuops.core.store.connection import open_database
    from gpuops.core.store.errors import StoreError
    from gpuops.core.store.paths import default_db_path

    path = args.db or default_db_path()
    rules_text = None
    if args.import_rules:
        try:
            rules_text = args.import_rules.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"gpuops: cannot read {args.import_rules}: {exc}", file=sys.stderr)
            return 2
    try:
        conn, _layout = open_database(path, create=False)
    except StoreError as exc:
        print(f"gpuops: {exc}", file=sys.stderr)
        return 1
    try:
        store = AlertStore(conn)
        if args.action is not None:
            return _act(args, store)
        if args.export_rules or rules_text is not None:
            return _rules_file(args, store, rules_text)
        alerts = store.history(limit=HISTORY_LIMIT) if args.all else store.active_alerts()
    finally:
        conn.close()
    if args.json:
        json.dump([a.to_json() for a in alerts], sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    if not alerts:
        print("no alerts" if args.all else "no active alerts")
        return 0
    header = ("ID", "SEVERITY", "STATE", "SINCE", "RULE", "ACK", "SUMMARY")
    rows = [
        (str(a.id), a.severity.label, a.state.value + (" (muted)" if a.muted else ""),
         _when(a.started_at or a.pending_at), a.rule, a.acknowledged_by or "", a.summary)
        for a in alerts
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    return 0

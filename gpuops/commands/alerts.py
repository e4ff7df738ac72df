"""`gpuops alerts`: the alerts recorded in the history database, as a table or JSON.

Active alerts (pending and firing) unless --all, which lists history too, newest first. The JSON
is a list of objects with at least: id, rule, severity, state, gpu_uuid, node, started_at,
summary, acknowledged_by (see `core.alerts.model.Alert.to_json`).

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
    from core.alerts.persistence import AlertStore

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
    parser.set_defaults(run=run)


def _when(ts: float | None) -> str:
    import time

    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _rules_file(args: argparse.Namespace, store: "AlertStore", text: str | None) -> int:
    import time

    from core.alerts.rules import RuleError

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


def run(args: argparse.Namespace) -> int:
    from core.alerts.persistence import AlertStore
    from core.store.connection import open_database
    from core.store.errors import StoreError
    from core.store.paths import default_db_path

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

"""`gpuops alerts`: the alerts recorded in the history database, and the actions on them.

`gpuops alerts [--all] [--format table|json]` lists active alerts (pending and firing), or history
too with --all, newest first. The JSON is a list of objects with at least: id, rule, severity,
state, gpu_uuid, node, started_at, summary, acknowledged_by (see `core.alerts.model.Alert.to_json`).

Actions (the console's Alerts tab does the same):
  ack ID [--note TEXT]                          acknowledge an active alert as the OS user
  silence --match node=x --match rule=~xid_.* --for 2h --comment TEXT [--start TIME]
  silences [--format table|json]                silences in force or still to come
  expire-silence ID                             end a silence now
  maintenance start|end NODE [--comment TEXT]   mute every alert of a node while it is worked on
  rules export [-o FILE]                        the rule set as a JSON rules file
  rules import FILE                             replace the rule set with a file's, after checking
                                                every rule (exit 1 listing every problem)
  export-rules --format prometheus [-o FILE]    the enabled rules PromQL can express, as a Prometheus
                                                rules file on dcgm-exporter's metric names; the
                                                skipped ones are listed (file comment, stderr)
A running collector picks imported rules up at its next poll. Under --read-only every action
that writes is refused.

With `--alertmanager URL` (anywhere on the line) the list, `silence`, `silences` and
`expire-silence` work on that Alertmanager instead of the history: its alerts (those Prometheus
fires too) and its silences, shared with on-call (core.alerts.alertmanager_api; credentials and
TLS from GPUOPS_ALERTMANAGER_*).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gpuops.commands._options import BOOK, Failed, UsageError, add_action, add_command
from gpuops.commands._output import add_format, add_output, destination, output_file, print_json

if TYPE_CHECKING:
    from gpuops.core.alerts.persistence import AlertStore

# --all lists at most this many alerts (newest first).
HISTORY_LIMIT = 10_000
#: A silence longer than this is a typo, not a mute (a node out of service goes in maintenance).
MAX_SILENCE_S = 366 * 86_400.0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "alerts", takes=(*BOOK, "alertmanager"),
        help="list active alerts (or all of them) and act on them",
        description="List the alerts recorded by `gpuops collect` or the console (active ones, or all with --all), "
        "or act on them with an ACTION.",
    )
    parser.add_argument("--all", dest="list_all", action="store_true", default=argparse.SUPPRESS,
                        help=f"include resolved alerts (newest first, at most {HISTORY_LIMIT})")
    parser.add_argument(
        "--format", dest="list_format", choices=("table", "json"), default=argparse.SUPPRESS,
        help="output format (default table)",
    )
    parser.add_argument("--json", dest="list_format", action="store_const", const="json", default=argparse.SUPPRESS,
                        help="the same as --format json")
    parser.set_defaults(run=run, action=None, writes=False)
    _add_actions(parser)


#: The actions `--alertmanager URL` sends to Alertmanager (the list too).
ALERTMANAGER_ACTIONS = (None, "silence", "silences", "expire-silence")


def _add_actions(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    ack = add_action(actions, parser, "ack", help="acknowledge an active alert (as the OS user)")
    ack.add_argument("id", type=int, help="alert id (first column of `gpuops alerts`)")
    ack.add_argument("--note", default="", help="why, or what is being done about it")

    silence = add_action(
        actions, parser, "silence", help="mute matching alerts for a while",
        description="Mute alerts whose labels match every --match (labels: node, gpu, customer, rule, severity, site, model).",
    )
    silence.add_argument(
        "--match", action="append", required=True, metavar="MATCHER",
        help="label=value, label!=value, label=~regex or label!~regex (repeatable; all must match)",
    )
    silence.add_argument(
        "--for", dest="duration", required=True, metavar="DURATION",
        help="how long, e.g. 30m, 2h, 1d (at most 366d)",
    )
    silence.add_argument("--start", default=None, metavar="TIME", help="ISO 8601 start time (default: now)")
    silence.add_argument("--comment", required=True, help="why (shown with every muted alert)")

    silences = add_action(actions, parser, "silences", help="list silences in force or still to come")
    add_format(silences, ("table", "json"), default="table", json_alias=True)

    expire = add_action(actions, parser, "expire-silence", help="end a silence now")
    expire.add_argument("id", help="silence id (from `gpuops alerts silences`; Alertmanager's with --alertmanager)")

    maintenance = add_action(actions, parser, "maintenance", help="put a node in maintenance (mutes its alerts) or take it out")
    maintenance.add_argument("change", choices=("start", "end"))
    maintenance.add_argument("node", help="node name, as in the alerts' node label")
    maintenance.add_argument("--comment", default="", help="why (start only)")

    rules = add_action(actions, parser, "rules", help="export the alert rules to a JSON file, or replace them with a file's")
    rule_actions = rules.add_subparsers(dest="rules_action", metavar="ACTION", required=True)
    add_output(add_action(rule_actions, rules, "export", help="write the rule set as a JSON rules file"), what="the rules")
    importing = add_action(rule_actions, rules, "import", help="replace the rule set with FILE's (every rule checked first)")
    importing.add_argument("file", type=Path, metavar="FILE")
    importing.set_defaults(writes=True)
    export = add_action(
        actions, parser, "export-rules", help="write the enabled alert rules as a Prometheus rules file",
        description="Write every enabled rule that PromQL can express as Prometheus alerting rules on "
        "dcgm-exporter's metric names; the others are listed as skipped, each with its reason. "
        "runbook_url annotations come from GPUOPS_RUNBOOK_BASE_URL.",
    )
    add_format(export, ("prometheus",), default=None)
    add_output(export, what="the rules file")
    for writing in (ack, silence, expire, maintenance):
        writing.set_defaults(writes=True)


def _when(ts: float | None) -> str:
    from gpuops.core.timefmt import local_time

    return "-" if ts is None else local_time(ts)


def _rules(args: argparse.Namespace, store: AlertStore) -> int:
    import time

    from gpuops.core.alerts.rules import RuleError

    if args.rules_action == "export":
        text = store.export_rules()
        with output_file(args.output, force=args.force) as tmp:
            tmp.write_text(text, encoding="utf-8")
        print(f"wrote {len(store.rules())} rules to {destination(args.output)}", file=sys.stderr)
        return 0
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Failed(f"cannot read {args.file}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        rules = store.import_rules(text, time.time(), where=str(args.file))
    except RuleError as exc:
        raise Failed(f"rules not imported, nothing changed:\n{exc}") from None
    print(f"imported {len(rules)} rules from {args.file}")
    return 0


def _export_rules(args: argparse.Namespace, store: AlertStore) -> int:
    """Prometheus rules file of the stored rule set; what was skipped goes to stderr too."""
    import os

    from gpuops.core.alerts.alertmanager import RUNBOOK_BASE_ENV
    from gpuops.core.alerts.promrules import prometheus_rules

    base = os.environ.get(RUNBOOK_BASE_ENV, "")
    if base and not base.startswith(("http://", "https://")):
        raise Failed(f"{RUNBOOK_BASE_ENV}={base!r} must start with http:// or https://")
    exported = prometheus_rules(store.rules(), runbook_base_url=base or None)
    with output_file(args.output, force=args.force) as tmp:
        tmp.write_text(exported.to_yaml(), encoding="utf-8")
    print(f"wrote {len(exported.rules)} Prometheus rules to {destination(args.output)}", file=sys.stderr)
    if exported.skipped:
        print(f"skipped {len(exported.skipped)} rules PromQL cannot express:", file=sys.stderr)
        for skipped in exported.skipped:
            print(f"  {skipped.name}: {skipped.reason}", file=sys.stderr)
    return 0


def _act(args: argparse.Namespace, store: AlertStore) -> int:
    """One action. A command line that cannot mean anything (a bad matcher or duration) is a usage
    error (exit 2); an alert, silence or maintenance that is not there is a failure (exit 1)."""
    import time

    from gpuops.core.alerts.persistence import AlertNotFound
    from gpuops.core.alerts.silences import SilenceError
    from gpuops.core.timefmt import BadTimeSpec

    now = time.time()
    try:
        if args.action == "rules":
            return _rules(args, store)
        if args.action == "export-rules":
            return _export_rules(args, store)
        if args.action == "ack":
            alert = store.acknowledge(args.id, now, note=args.note)
            print(f"acknowledged alert {alert.id} ({alert.rule}) as {alert.acknowledged_by}")
        elif args.action == "silence":
            starts_at, ends_at = _silence_window(args, now)
            silence = store.add_silence(args.match, starts_at, ends_at, args.comment, now)
            matchers = " ".join(str(m) for m in silence.matchers)
            print(f"silence {silence.id}: {matchers} until {_when(silence.ends_at)}")
        elif args.action == "silences":
            _print_silences(store.silences(active_at=now), args.format == "json")
        elif args.action == "expire-silence":
            try:
                store.expire_silence(_local_silence_id(args.id), now)
            except SilenceError as exc:  # the only one here: no such silence in force
                raise Failed(str(exc)) from None
            print(f"silence {args.id} expired")
        elif args.change == "start":
            entry = store.start_maintenance(args.node, now, args.comment)
            print(f"{entry.node} is in maintenance (its alerts are muted) since {_when(entry.since)}")
        else:
            if args.node not in store.maintenance():
                raise Failed(f"{args.node} is not in maintenance")
            store.end_maintenance(args.node)
            print(f"{args.node} left maintenance")
    except AlertNotFound as exc:
        raise Failed(str(exc)) from None
    except (SilenceError, BadTimeSpec) as exc:
        raise UsageError(str(exc)) from None
    return 0


def _silence_window(args: argparse.Namespace, now: float) -> tuple[float, float]:
    """(start, end) of `silence --start --for`; BadTimeSpec or a UsageError when they cannot mean a silence."""
    from gpuops.core.timefmt import parse_duration, parse_time

    starts_at = now if args.start is None else parse_time(args.start, now)
    duration = parse_duration(args.duration)
    if not 0 < duration <= MAX_SILENCE_S:
        raise UsageError(f"--for {args.duration}: a silence lasts more than 0 s and at most 366 days")
    return starts_at, starts_at + duration


def _local_silence_id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"silence id {text!r} is not a number (an Alertmanager silence needs --alertmanager URL)") from None


def _alertmanager(args: argparse.Namespace) -> int:
    """The list or a silence action on Alertmanager (`--alertmanager URL`)."""
    import time

    from gpuops.core.alerts.alertmanager_api import AlertmanagerClient, AlertmanagerError
    from gpuops.core.alerts.silences import Matcher, SilenceError
    from gpuops.core.timefmt import BadTimeSpec

    if args.action not in ALERTMANAGER_ACTIONS:
        raise UsageError(f"--alertmanager does not go with `alerts {args.action}` (it acts on the history)")
    if hasattr(args, "list_all"):
        raise UsageError("--all lists the history's resolved alerts; Alertmanager keeps only the current ones")
    if args.writes and args.read_only:
        raise Failed(f"--read-only: `gpuops alerts {args.action}` would change Alertmanager; refused")
    now = time.time()
    try:
        client = AlertmanagerClient(args.alertmanager)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        if args.action is None:
            _print_am_alerts(client.alerts(), getattr(args, "list_format", "table") == "json")
        elif args.action == "silence":
            matchers = [Matcher.parse(text) for text in args.match]
            starts_at, ends_at = _silence_window(args, now)
            silence_id = client.create_silence(matchers, starts_at, ends_at, args.comment)
            print(f"Alertmanager silence {silence_id}: {' '.join(args.match)} until {_when(ends_at)}")
        elif args.action == "silences":
            _print_am_silences(client.silences(), args.format == "json")
        else:
            client.expire_silence(args.id)
            print(f"Alertmanager silence {args.id} expired")
    except (SilenceError, BadTimeSpec) as exc:
        raise UsageError(str(exc)) from None
    except AlertmanagerError as exc:
        raise Failed(str(exc)) from None
    finally:
        client.close()
    return 0


def _print_am_alerts(alerts: list, as_json: bool) -> None:
    if as_json:
        print_json([a.to_json() for a in alerts])
        return
    if not alerts:
        print("no alerts in Alertmanager")
        return
    rows = [(a.severity or "-", a.state + (f" ({', '.join(a.silenced_by)})" if a.silenced_by else ""),
             _when(a.started_at), a.rule, a.node or "-", a.gpu_uuid or a.gpu_index or "-", a.summary) for a in alerts]
    _print_table(("SEVERITY", "STATE", "SINCE", "RULE", "NODE", "GPU", "SUMMARY"), rows)


def _print_am_silences(silences: list, as_json: bool) -> None:
    if as_json:
        print_json([s.to_json() for s in silences])
        return
    if not silences:
        print("no silences in Alertmanager")
    for s in silences:
        matchers = " ".join(s.matchers)
        print(f"{s.id}  {s.state}  {_when(s.starts_at)} .. {_when(s.ends_at)}  {s.created_by}  {matchers}  {s.comment}")


def _print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Columns padded to their widest cell; the last one (free text) is not padded."""
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])


def _print_silences(silences: list, as_json: bool) -> None:
    if as_json:
        rows = [
            {"id": s.id, "matchers": [str(m) for m in s.matchers], "starts_at": s.starts_at, "ends_at": s.ends_at,
             "author": s.author, "comment": s.comment, "created_at": s.created_at}
            for s in silences
        ]
        print_json(rows)
        return
    if not silences:
        print("no silences")
        return
    for s in silences:
        matchers = " ".join(str(m) for m in s.matchers)
        print(f"{s.id}  {_when(s.starts_at)} .. {_when(s.ends_at)}  {s.author}  {matchers}  {s.comment}")


def run(args: argparse.Namespace) -> int:
    from gpuops.core.alerts.persistence import AlertStore
    from gpuops.core.store.connection import open_database, open_read_only
    from gpuops.core.store.errors import StoreError
    from gpuops.core.store.paths import default_db_path

    listing = {name for name in ("list_all", "list_format") if hasattr(args, name)}
    if args.action is not None and listing:
        raise UsageError(f"--all and --format list alerts; they do not go with `alerts {args.action}`")
    if args.alertmanager is not None:
        return _alertmanager(args)
    if args.writes and args.read_only:
        raise Failed(f"--read-only: `gpuops alerts {args.action}` would change the history; refused")
    try:
        path = args.db or default_db_path()
        conn, _layout = open_database(path, create=False) if args.writes else open_read_only(path)
    except StoreError as exc:
        raise Failed(str(exc)) from None
    try:
        store = AlertStore(conn, read_only=not args.writes)
        if args.action is not None:
            return _act(args, store)
        list_all = getattr(args, "list_all", False)
        alerts = store.history(limit=HISTORY_LIMIT) if list_all else store.active_alerts()
    finally:
        conn.close()
    if getattr(args, "list_format", "table") == "json":
        print_json([a.to_json() for a in alerts])
        return 0
    if not alerts:
        print("no alerts" if list_all else "no active alerts")
        return 0
    header = ("ID", "SEVERITY", "STATE", "SINCE", "RULE", "ACK", "SUMMARY")
    rows = [
        (str(a.id), a.severity.label, a.state.value + (" (muted)" if a.muted else ""),
         _when(a.started_at or a.pending_at), a.rule, a.acknowledged_by or "", a.summary)
        for a in alerts
    ]
    _print_table(header, rows)
    return 0

"""`gpuops doctor`: what gpuops sees on this machine and what to do about it, one check per line.

The checks (issue 18): the NVIDIA driver and NVML (versions, or why NVML cannot start), the GPUs
found, the history database (path, size, integrity, schema version, whether a collector holds it),
the saved source and whether it answers, Alertmanager reachability, the desktop entry.

Doctor changes nothing: the history is opened read-only (never created, migrated or written),
the console's settings file is read as text (no Qt), the collector lock is only probed.
Each check is `ok`, a `note` (worth knowing, nothing broken) or a `problem`; any problem makes the
exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from gpuops.commands._options import add_command
from gpuops.commands._output import add_format, print_json

OK, NOTE, PROBLEM = "ok", "note", "problem"
ALERTMANAGER_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Check:
    """One finding: what was checked, its status, what was seen, and what to do ('' when nothing)."""

    name: str
    status: str
    detail: str
    advice: str = ""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "doctor", takes=("source", "seed", "topology", "db", "alertmanager"),
        help="check what gpuops sees here (driver, GPUs, history, source, Alertmanager, menu entry)",
        description="Check the NVIDIA driver and NVML, the GPUs, the history database, the saved source (or --source), "
        "Alertmanager (--alertmanager) and the desktop entry, and say what to do. Changes nothing. "
        "Exits 1 when something needs attention.",
    )
    add_format(parser, ("text", "json"), default="text", json_alias=True)
    parser.set_defaults(run=run)


# --- the console's saved preferences, read without Qt --------------------------------------------


def settings_file() -> Path:
    """Where the console's QSettings INI file lives on Linux (see gui/app/settings_store.py)."""
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "gpuops" / "gpuops.ini"


def _ini_text(value: str) -> str:
    """A QSettings INI string value: quoted (with \\" and \\\\ escapes) when it holds , ; = or quotes."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def saved_preferences(path: Path) -> dict[str, str]:
    """{"source": ..., "db_path": ...} as the console saved them; missing keys are absent."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return {}
    found = {}
    for key, (section, option) in {"source": ("poll", "source"), "db_path": ("history", "db_path")}.items():
        if parser.has_option(section, option) and _ini_text(parser.get(section, option)):
            found[key] = _ini_text(parser.get(section, option))
    return found


# --- checks ------------------------------------------------------------------------------------


def check_nvml(needed: bool) -> list[Check]:
    """Driver and NVML versions and the GPUs NVML finds (one poll). No driver at all is a note
    unless the source in use is `nvml`; a driver that is installed but does not start is always a
    problem."""
    from gpuops.core.sources.base import SourceError
    from gpuops.core.sources.nvml import LIBRARY_MISSING, NvmlSource

    try:
        source = NvmlSource()
    except SourceError as exc:
        missing = str(exc) == LIBRARY_MISSING
        status = PROBLEM if needed or not missing else NOTE
        advice = (
            "install the NVIDIA driver, or watch remote GPUs with --source scrape:... or prometheus:..."
            if missing else "fix the driver as the line says, then run `gpuops doctor` again"
        )
        return [
            Check("nvml", status, f"NVML cannot start: {exc}", advice),
            Check("gpus", NOTE if status == NOTE else PROBLEM, "no local GPU can be seen without NVML"),
        ]
    try:
        sample = source.poll()
    except SourceError as exc:
        return [Check("nvml", PROBLEM, f"NVML started but the first poll failed: {exc}", "check the driver (dmesg, nvidia-smi)")]
    finally:
        source.close()
    first = sample.gpus[0] if sample.gpus else None
    versions = (
        f"driver {first.driver_version or '?'}, NVML {first.nvml_version or '?'}, CUDA {first.cuda_version or '?'}"
        if first else "driver loaded"
    )
    checks = [Check("nvml", OK, versions)]
    if not sample.gpus:
        checks.append(Check("gpus", PROBLEM, "NVML found no GPU", "check that this system sees the GPUs (lspci, nvidia-smi)"))
        return checks
    models = ", ".join(f"{count}× {name}" for name, count in Counter(g.name for g in sample.gpus).items())
    bad = [f"GPU {g.index} {sample.gpu_state(i).label}" for i, g in enumerate(sample.gpus) if sample.gpu_state(i).label != "ok"]
    if bad:
        checks.append(Check("gpus", PROBLEM, f"{len(sample.gpus)} GPUs ({models}); " + ", ".join(bad),
                            "a lost GPU needs a reset or a reboot; see `gpuops status --health critical`"))
    else:
        checks.append(Check("gpus", OK, f"{len(sample.gpus)} GPUs ({models})"))
    return checks


def _size_text(path: Path) -> str:
    from gpuops.core.units import format_bytes

    parts = [format_bytes(path.stat().st_size)]
    for suffix in ("-wal", "-shm"):
        side = Path(f"{os.path.realpath(path)}{suffix}")
        if side.exists():
            parts.append(f"{suffix[1:].upper()} {format_bytes(side.stat().st_size)}")
    return " + ".join(parts)


def check_history(path: Path) -> Check:
    """Path, size, integrity (SQLite's quick_check), schema version and the collector lock, all
    read-only: a damaged file is described, never repaired or touched."""
    import sqlite3

    from gpuops.core.store.connection import open_read_only
    from gpuops.core.store.errors import NoHistory, StoreError
    from gpuops.core.store.locking import collector_running
    from gpuops.core.store.schema import SCHEMA_VERSION

    if not os.path.lexists(path):
        return Check("history", NOTE, f"{path}: none yet", "`gpuops collect` (or the console) creates it on its first poll")
    try:
        size = _size_text(path)
        conn, _layout = open_read_only(path)
    except NoHistory:
        return Check("history", NOTE, f"{path}: none yet", "`gpuops collect` (or the console) creates it on its first poll")
    except (StoreError, OSError) as exc:
        return Check("history", PROBLEM, str(exc), "move the file aside (keep it for inspection) and let gpuops start a new one")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # open_read_only has read it once already
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
    except sqlite3.DatabaseError as exc:  # what SQLite says about a damaged file is the finding
        problems = [str(exc)]
    finally:
        conn.close()
    try:
        holder = "a collector writes to it" if collector_running(path) else "no collector running"
    except StoreError as exc:
        holder = str(exc)
    detail = f"{path}: {size}, schema {version} (this gpuops: {SCHEMA_VERSION}), {holder}"
    if problems != ["ok"]:
        found = "; ".join(" ".join(problem.split()) for problem in problems)  # SQLite's report is multi-line
        return Check("history", PROBLEM, f"{detail}; integrity check failed: {found}",
                     "stop the collector, move the file aside (keep it) and let gpuops start a new one")
    return Check("history", OK, f"{detail}, integrity ok")


def check_source(spec: str, origin: str, *, seed: int, topology: Path | None) -> Check:
    """Poll the source once: does it answer, how many GPUs, which targets failed."""
    from gpuops.commands.status import poll_failure
    from gpuops.core.sources.base import SourceError
    from gpuops.core.sources.factory import open_source

    try:
        with open_source(spec, seed=seed, topology=topology) as source:
            sample = source.poll()
            notice, simulated = source.notice, source.simulated
    except SourceError as exc:
        return Check("source", PROBLEM, f"{spec} ({origin}) does not answer: {exc}", "fix it, or choose another in Settings")
    failure = poll_failure(sample, strict=True)
    detail = f"{spec} ({origin}) answers: {len(sample)} GPUs" + (f"; {notice}" if notice else "")
    if failure is not None:
        return Check("source", PROBLEM, f"{detail}; {failure}", "see `gpuops status` for each failed target")
    if simulated and not spec.strip().lower().startswith("demo"):
        return Check("source", NOTE, detail, "the console shows a simulated fleet; choose a real source in Settings or --source")
    return Check("source", OK, detail)


def check_alertmanager(url: str | None) -> Check:
    if url is None:
        return Check("alertmanager", NOTE, "not checked", "give --alertmanager URL (what `gpuops collect --alertmanager` uses)")
    if not url.startswith(("http://", "https://")):
        return Check("alertmanager", PROBLEM, f"{url!r} is not an http(s) URL", "give the Alertmanager's base URL, e.g. http://host:9093")
    from gpuops.core.alerts.alertmanager import ENV_PREFIX
    from gpuops.core.sources.http_fetch import FetchError, HttpFetcher, HttpOptions

    try:  # the credentials and CA that `collect` and `alerts --alertmanager` use, or the check proves nothing
        options = HttpOptions.from_env(ENV_PREFIX)
    except ValueError as exc:
        return Check("alertmanager", PROBLEM, f"{ENV_PREFIX}_* settings are unusable: {exc}",
                     f"fix the {ENV_PREFIX}_* variables: `collect` cannot reach Alertmanager with them either")
    fetcher = HttpFetcher(options, timeout_s=ALERTMANAGER_TIMEOUT_S, max_bytes=2**16)
    try:
        fetcher.get(url.rstrip("/") + "/-/ready")
    except FetchError as exc:
        return Check("alertmanager", PROBLEM, f"{url} is not ready: {exc}", "start it or fix the URL: no alert reaches it")
    finally:
        fetcher.close()
    return Check("alertmanager", OK, f"{url} is ready")


def check_desktop() -> Check:
    from gpuops.core.desktop_integration import DesktopPaths

    entry = DesktopPaths.for_current_user().entry
    if not entry.exists():
        return Check("desktop", NOTE, f"no menu entry ({entry})", "`gpuops install-desktop` adds one (servers need none)")
    try:
        lines = entry.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        return Check("desktop", PROBLEM, f"{entry} cannot be read: {exc}", "`gpuops install-desktop` writes it again")
    command = next((line[len("Exec="):] for line in lines if line.startswith("Exec=")), "")
    executable = command.split(" ", 1)[0].replace("\\s", " ").replace("\\\\", "\\")
    if not executable or not os.access(executable, os.X_OK):
        return Check("desktop", PROBLEM, f"{entry} starts {executable or 'nothing'}, which is not an executable file",
                     "`gpuops install-desktop` points it at this installation")
    return Check("desktop", OK, f"{entry} starts {executable}")


# --- the command ---------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from gpuops.core.store.paths import default_db_path

    saved = saved_preferences(settings_file())
    if args.source is not None:
        spec, origin = args.source, "--source"
    elif "source" in saved:
        spec, origin = saved["source"], f"saved in {settings_file()}"
    else:
        spec, origin = "auto", "default"
    db = args.db or (Path(saved["db_path"]) if "db_path" in saved else default_db_path())
    uses_nvml = spec.split(":", 1)[0].strip().lower() == "nvml"
    checks = [
        *check_nvml(needed=uses_nvml),
        check_history(db),
        check_source(spec, origin, seed=args.seed, topology=args.topology),
        check_alertmanager(args.alertmanager),
        check_desktop(),
    ]
    attention = any(check.status == PROBLEM for check in checks)
    if args.format == "json":
        print_json({"attention": attention, "checks": [asdict(check) for check in checks]})
    else:
        for check in checks:
            print(f"{check.status:<8} {check.name:<13} {check.detail}")
            if check.advice and check.status != OK:
                print(f"{'':<8} {'':<13} → {check.advice}")
        print("needs attention" if attention else "all good")
    sys.stdout.flush()
    return 1 if attention else 0

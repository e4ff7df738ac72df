"""The `gpuops status` table, as gpustat and nvitop print theirs: one line per GPU that fits 100
columns (all of it with `wide`), a health column graded as the console grades it, the processes of
each GPU, filters by GPU, node and health, and ANSI colour by health and load.

Pure text in, text out: the command decides whether the terminal gets colour and redraws.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gpuops.core.health import HealthModel
from gpuops.core.telemetry import FleetSample
from gpuops.core.units import MISSING, format_bytes, format_optional

DEFAULT_WIDTH = 100
GIB = float(2**30)
#: Health grades a GPU can have in the table, best first; `stale` is "no fresh data this poll".
HEALTH_GRADES: tuple[str, ...] = ("ok", "warning", "critical", "stale")
STALE_REASON = "no fresh data: its target failed this poll"
#: nvitop's load thresholds (percent): below LIGHT is light, from HEAVY on is heavy.
LOAD_LIGHT_PCT = 10.0
LOAD_HEAVY_PCT = 75.0

_RESET = "\x1b[0m"
_GREEN, _YELLOW, _RED, _BOLD_RED, _DIM = "\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[1;31m", "\x1b[2m"
_HEALTH_COLOUR = {"ok": _GREEN, "warning": _YELLOW, "critical": _BOLD_RED, "stale": _DIM}


@dataclass(frozen=True)
class Grade:
    """One GPU's health as the table shows it: a grade of HEALTH_GRADES and why ('' when ok)."""

    grade: str
    reason: str = ""

    @property
    def text(self) -> str:
        return self.grade if not self.reason else f"{self.grade}: {self.reason}"


def grade_sample(sample: FleetSample, model: HealthModel) -> list[Grade]:
    """Each GPU's grade, in sample order: the console's health model, and `stale` for the GPUs
    of nodes whose target failed (their values are not current, whatever they were)."""
    health = model.assess(sample)
    grades = []
    for i, gpu in enumerate(sample.gpus):
        if gpu.node in sample.stale_nodes:
            grades.append(Grade("stale", STALE_REASON))
        else:
            grades.append(Grade(health.of(i).label, health.reasons[i]))
    return grades


def colour_enabled(*, is_tty: bool, no_color_flag: bool, environ: dict[str, str] | os._Environ[str]) -> bool:
    """Colour on a terminal only: never when piped, with --no-color, NO_COLOR set (no-color.org:
    any non-empty value) or TERM=dumb."""
    return is_tty and not no_color_flag and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"


@dataclass(frozen=True)
class Filters:
    """`--gpu` (UUID, UUID prefix or index), `--node` (name or shell pattern), `--health` (grades);
    empty means everything. A GPU is shown when it matches every given filter."""

    gpus: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    healths: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.gpus or self.nodes or self.healths)

    def matches(self, record: dict[str, Any], grade: Grade) -> bool:
        if self.nodes and not any(fnmatch.fnmatchcase(record["node"], pattern) for pattern in self.nodes):
            return False
        if self.healths and grade.grade not in self.healths:
            return False
        return not self.gpus or any(_gpu_matches(record, token) for token in self.gpus)

    def describe(self) -> str:
        given = (("gpu", self.gpus), ("node", self.nodes), ("health", self.healths))
        return " ".join(f"--{flag} {','.join(values)}" for flag, values in given if values)


def _gpu_matches(record: dict[str, Any], token: str) -> bool:
    if token.isdigit():
        return record["index"] == int(token)
    return record["uuid"] == token or (len(token) >= 8 and record["uuid"].startswith(token))


def split_values(values: Iterable[str] | None) -> tuple[str, ...]:
    """`--x a,b --x c` -> ("a", "b", "c")."""
    return tuple(part.strip() for value in values or () for part in value.split(",") if part.strip())


def selected(records: Sequence[dict[str, Any]], grades: Sequence[Grade], filters: Filters) -> list[int]:
    """Positions of the GPUs the filters keep, in order."""
    return [i for i, (record, grade) in enumerate(zip(records, grades, strict=True)) if filters.matches(record, grade)]


# --- cells ---------------------------------------------------------------------------------


def _short_name(name: str) -> str:
    return name.removeprefix("NVIDIA ").strip() or name


def _gib(value: int | None, spec: str) -> str:
    return MISSING if value is None else spec.format(value / GIB)


def _load_colour(pct: float | None) -> str:
    if pct is None:
        return ""
    if pct >= LOAD_HEAVY_PCT:
        return _RED
    return _YELLOW if pct >= LOAD_LIGHT_PCT else _GREEN


def _mem_pct(record: dict[str, Any]) -> float | None:
    used, total = record["mem_used_bytes"], record["mem_total_bytes"]
    return None if used is None or not total else 100.0 * used / total


@dataclass(frozen=True)
class _Column:
    key: str
    title: str
    right: bool = False  # numbers align right
    cap: int | None = None  # the most it may take in the 100-column table (None: never cut)


_DEFAULT_COLUMNS: tuple[_Column, ...] = (
    _Column("node", "NODE", cap=16),
    _Column("index", "IDX", right=True),
    _Column("name", "NAME", cap=14),
    _Column("util", "UTIL%", right=True),
    _Column("memory", "MEMORY", right=True),
    _Column("temp", "TEMP", right=True),
    _Column("power", "POWER", right=True),
    _Column("health", "HEALTH"),
)
_WIDE_COLUMNS: tuple[_Column, ...] = (
    _Column("node", "NODE"),
    _Column("index", "IDX", right=True),
    _Column("uuid", "UUID"),
    _Column("name", "NAME"),
    _Column("state", "STATE"),
    _Column("util", "UTIL%", right=True),
    _Column("util_mem", "MEMUTIL%", right=True),
    _Column("memory_wide", "MEMORY", right=True),
    _Column("mem_pct", "MEM%", right=True),
    _Column("temp", "TEMP", right=True),
    _Column("mem_temp", "MEMTEMP", right=True),
    _Column("power", "POWER", right=True),
    _Column("fan", "FAN%", right=True),
    _Column("pstate", "PSTATE"),
    _Column("sm_clock", "SM MHZ", right=True),
    _Column("procs", "PROCS", right=True),
    _Column("health", "HEALTH"),
)
_SEPARATOR = "  "


def _cells(record: dict[str, Any], grade: Grade) -> dict[str, str]:
    used, total = record["mem_used_bytes"], record["mem_total_bytes"]
    mem_pct = _mem_pct(record)
    temp = format_optional(record["temp_c"], "{:.0f}°C")
    return {
        "node": record["node"],
        "index": str(record["index"]),
        "uuid": record["uuid"],
        "name": _short_name(record["name"]),
        "state": record["state"],
        "util": format_optional(record["util_gpu_pct"], "{:.0f}"),
        "util_mem": format_optional(record["util_mem_pct"], "{:.0f}"),
        "memory": f"{_gib(used, '{:.1f}')}/{_gib(total, '{:.0f}')}G",
        "memory_wide": f"{format_bytes(used)} / {format_bytes(total)}",
        "mem_pct": format_optional(mem_pct, "{:.0f}"),
        "temp": temp,
        "mem_temp": format_optional(record["mem_temp_c"], "{:.0f}°C"),
        "power": f"{format_optional(record['power_w'], '{:.0f}')}/{format_optional(record['power_limit_w'], '{:.0f}')}W",
        "fan": format_optional(record["fan_pct"], "{:.0f}"),
        "pstate": MISSING if record["pstate"] is None else f"P{record['pstate']}",
        "sm_clock": format_optional(record["sm_clock_mhz"]),
        "procs": str(len(record["processes"])),
        "health": grade.text,
    }


def _colours(record: dict[str, Any], grade: Grade) -> dict[str, str]:
    """ANSI colour per cell key: health by grade, utilization and memory by load."""
    load = _load_colour(record["util_gpu_pct"])
    memory = _load_colour(_mem_pct(record))
    stale = grade.grade == "stale"
    return {
        "health": _HEALTH_COLOUR[grade.grade],
        "util": _DIM if stale else load,
        "util_mem": _DIM if stale else _load_colour(record["util_mem_pct"]),
        "memory": _DIM if stale else memory,
        "memory_wide": _DIM if stale else memory,
        "mem_pct": _DIM if stale else memory,
        "state": "" if record["state"] == "ok" else _YELLOW,
    }


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _widths(columns: Sequence[_Column], rows: Sequence[dict[str, str]], width: int | None) -> dict[str, int]:
    """Each column's width: its content, capped in the narrow table so that the whole line fits
    `width`; the last column (health) takes what is left."""
    natural = {c.key: max([len(c.title)] + [len(row[c.key]) for row in rows]) for c in columns}
    if width is None:
        return natural
    widths = {c.key: natural[c.key] if c.cap is None else min(natural[c.key], c.cap) for c in columns}
    last = columns[-1].key
    rest = sum(w for key, w in widths.items() if key != last) + len(_SEPARATOR) * (len(columns) - 1)
    widths[last] = max(len(columns[-1].title), min(natural[last], width - rest))
    return widths


def _line(columns: Sequence[_Column], widths: dict[str, int], cells: dict[str, str], colours: dict[str, str] | None) -> str:
    parts = []
    for column in columns:
        width = widths[column.key]
        text = _cut(cells[column.key], width)
        padding = " " * (width - len(text))
        colour = colours.get(column.key) if colours else None
        if colour:
            text = f"{colour}{text}{_RESET}"  # the padding stays plain, so a line still ends in its text
        parts.append(padding + text if column.right else text + padding)
    return _SEPARATOR.join(parts).rstrip()


def _process_user(pid: int) -> str:
    """The owner of a process of this machine (what `ps -o user` says), '' when it cannot be seen."""
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return ""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _process_lines(record: dict[str, Any], *, local: bool, width: int | None) -> list[str]:
    """PID, USER, GPU MEM, NAME under a GPU. USER only for processes of this machine that it can
    see (`local`); NAME empty for a process of another PID namespace (a container)."""
    lines = []
    for process in record["processes"]:
        name = process["name"] or ""
        user = _process_user(process["pid"]) if local and process["name"] is not None else ""
        mem = format_bytes(process["used_mem_bytes"])
        line = f"    {process['pid']:>8}  {user:<12}  {mem:>10}  {name}".rstrip()
        lines.append(line if width is None else _cut(line, width))
    return lines


@dataclass(frozen=True)
class TableOptions:
    wide: bool = False
    colour: bool = False
    processes: bool = False
    #: the machine's own GPUs (NVML): process owners can be looked up in /proc.
    local_processes: bool = False


def render_table(
    records: Sequence[dict[str, Any]], grades: Sequence[Grade], errors: Sequence[str], options: TableOptions
) -> str:
    """The table of `records` (already filtered) with their grades, then one `error:` line per
    problem of the poll."""
    columns = _WIDE_COLUMNS if options.wide else _DEFAULT_COLUMNS
    width = None if options.wide else DEFAULT_WIDTH
    cells = [_cells(record, grade) for record, grade in zip(records, grades, strict=True)]
    widths = _widths(columns, cells, width)
    header = {c.key: c.title for c in columns}
    lines = [_line(columns, widths, header, None)]
    if options.processes:
        lines[0] += "\n" + f"    {'PID':>8}  {'USER':<12}  {'GPU MEM':>10}  PROCESS"
    for record, grade, row in zip(records, grades, cells, strict=True):
        lines.append(_line(columns, widths, row, _colours(record, grade) if options.colour else None))
        if options.processes:
            lines.extend(_process_lines(record, local=options.local_processes, width=width))
    lines.extend(f"error: {error}" for error in errors)  # never cut: the whole reason matters
    return "\n".join(lines)

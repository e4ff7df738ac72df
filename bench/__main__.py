"""Run the benchmarks: `python -m bench [nvml demo gui store ...] [--out FILE]`.

Each `bench/bench_<name>.py` exposes `run() -> list[dict]`, one dict per measure with keys
measure, value, unit, target (and any extra detail). This runner prints them as a table and
writes them all to JSON, so figures can be compared between sessions.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results" / "latest.json"


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))


def format_table(rows: list[dict]) -> str:
    header = ("measure", "value", "unit", "target")
    cells = [header] + [
        (r["measure"], f"{r['value']:.3g}" if isinstance(r["value"], float) else str(r["value"]), r["unit"], str(r["target"]))
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {', '.join(available())}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    rows: list[dict] = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        for row in importlib.import_module(f"bench.bench_{name}").run():
            rows.append({"bench": name, **row})
    print(format_table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "ran_at": time.time(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "results": rows,
    }
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Whole-process CPU of a one-shot `gpuops status` on 8 GPUs (fake driver, scenario "eight"), side
by side with `nvitop --once` (and `gpustat --json`) on the same driver when they are installed.

Each command runs as a fresh process with the fake libnvidia-ml.so.1 on LD_LIBRARY_PATH, as a
user would run it; its CPU (user + system, from wait4's rusage) covers interpreter start, imports,
NVML start-up, one poll and printing. Commands alternate so that a busy neighbour costs all of
them alike; the median of RUNS is reported. nvitop and gpustat are not gpuops dependencies: they
are looked up on PATH (or GPUOPS_BENCH_NVITOP / GPUOPS_BENCH_GPUSTAT), and when absent ours is
reported alone.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from tests.fake_nvml.build import build_fake_nvml
from tests.fake_nvml.control import DEFAULT_BUILD_DIR, subprocess_env

RUNS = 15
N_GPUS = 8


def _ours() -> list[str]:
    script = Path(sys.executable).parent / "gpuops"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gpuops"]


def _tool(name: str, variable: str) -> str | None:
    return os.environ.get(variable) or shutil.which(name)


def _interpreter(command: list[str]) -> str:
    """The Python a command runs on: itself, or the one in its script's #! line."""
    if command[0] == sys.executable:
        return sys.executable
    with open(command[0], "rb") as script:
        first = script.readline()
    return first[2:].decode().strip().split()[0] if first.startswith(b"#!") else sys.executable


def _cpu_s(command: list[str], env: dict[str, str]) -> float:
    """CPU seconds (user + system) of one run of `command`, which must exit 0."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = process.stderr.read()  # type: ignore[union-attr]  # stderr=PIPE
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}: {stderr.decode(errors='replace')[-400:]}")
    return usage.ru_utime + usage.ru_stime


def run() -> list[dict]:
    env = subprocess_env(build_fake_nvml(DEFAULT_BUILD_DIR), "eight")
    commands = {"gpuops status": [*_ours(), "status", "--source", "nvml"]}
    skipped: dict[str, str] = {}
    for label, name, variable, args in (
        ("nvitop --once", "nvitop", "GPUOPS_BENCH_NVITOP", ["--once"]),
        ("gpustat --json", "gpustat", "GPUOPS_BENCH_GPUSTAT", ["--json"]),
    ):
        path = _tool(name, variable)
        if path is None:
            skipped[label] = "not installed"
            continue
        try:
            _cpu_s([path, *args], env)  # it must work on this driver at all
        except RuntimeError as exc:
            skipped[label] = f"fails on the fake driver: {str(exc).splitlines()[-1]}"
            continue
        commands[label] = [path, *args]
    samples: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(RUNS):
        for label, command in commands.items():
            samples[label].append(_cpu_s(command, env))
    starts = {label: [_cpu_s([_interpreter(command), "-c", "pass"], env) for _ in range(RUNS)]
              for label, command in commands.items()}
    median = {label: statistics.median(values) for label, values in samples.items()}
    start = {label: statistics.median(values) for label, values in starts.items()}
    ours = median["gpuops status"]
    rows = [{
        "measure": f"gpuops status, {N_GPUS} GPUs, whole process",
        "value": ours * 1e3, "unit": "ms CPU", "target": "<= nvitop --once",
        "runs": RUNS, "min_ms": min(samples["gpuops status"]) * 1e3, "interpreter_start_ms": start["gpuops status"] * 1e3,
    }]
    for label in commands.keys() - {"gpuops status"}:
        rows.append({"measure": f"{label}, {N_GPUS} GPUs, whole process", "value": median[label] * 1e3, "unit": "ms CPU",
                     "target": "-", "runs": RUNS, "command": commands[label]})
        rows.append({"measure": f"gpuops status / {label}", "value": ours / median[label], "unit": "ratio",
                     "target": "<= 1" if label.startswith("nvitop") else "-"})
        # Each in its own environment: a bare `python -c pass` there (site hooks, .pth files) taken off.
        rows.append({"measure": f"gpuops status / {label}, interpreter start taken off", "unit": "ratio", "target": "-",
                     "value": (ours - start["gpuops status"]) / (median[label] - start[label]),
                     "interpreter_start_ms": start[label] * 1e3})
    for label, why in skipped.items():
        rows.append({"measure": f"{label}: not measured", "value": why, "unit": "-", "target": "-"})
    return rows

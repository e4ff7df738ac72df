"""CPU cost and NVML calls of one NvmlSource poll of 8 GPUs, on every driver family of the fake driver.

Each profile (tests/fake_nvml PROFILES) is its own library and a process loads only one
libnvidia-ml.so.1, so each is measured in a child process (`python -m bench.bench_nvml PROFILE`).
The child loads the fake before pynvml's first nvmlInit, so the real pynvml bindings and the real
source code run; only the driver underneath is simulated (its own work is a table lookup, so what
is measured is the source plus pynvml/ctypes).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.fake_nvml import DEFAULT_BUILD_DIR, PROFILES, build_fake_nvml, load_fake_nvml

REPO = Path(__file__).resolve().parents[1]
N_GPUS = 8
WARMUP_POLLS = 20
MEASURED_POLLS = 500
# Eight GPUs of each family: full-field boards for the driver-age profiles, eight vGPU guests,
# eight H100s each split into three MIG devices.
_SCENARIOS = {"vgpu": "eight-vgpu", "mig": "eight-mig"}


def measure(profile: str) -> dict[str, float]:
    """In this process: load `profile`'s fake driver and time MEASURED_POLLS polls."""
    fake = load_fake_nvml(build_fake_nvml(DEFAULT_BUILD_DIR, profile))
    fake.reset(_SCENARIOS.get(profile, "eight"))
    from gpuops.core.sources.nvml import NvmlSource

    with NvmlSource() as source:
        for _ in range(WARMUP_POLLS):
            source.poll()
        calls_before = fake.call_count()
        cpu_before = time.process_time()
        wall_before = time.perf_counter()
        for _ in range(MEASURED_POLLS):
            sample = source.poll()
        cpu_ms = (time.process_time() - cpu_before) / MEASURED_POLLS * 1e3
        wall_ms = (time.perf_counter() - wall_before) / MEASURED_POLLS * 1e3
        calls_per_poll = (fake.call_count() - calls_before) / MEASURED_POLLS
    if len(sample) != N_GPUS or any(sample.gpu_state(i).label != "ok" for i in range(N_GPUS)):
        raise RuntimeError(f"{profile}: expected {N_GPUS} answering GPUs, got {[g.uuid for g in sample.gpus]}")
    return {"cpu_ms": cpu_ms, "wall_ms": wall_ms, "calls_per_poll": calls_per_poll}


def run() -> list[dict]:
    rows: list[dict] = []
    for profile in PROFILES:
        child = subprocess.run(
            [sys.executable, "-m", "bench.bench_nvml", profile], cwd=REPO, capture_output=True, text=True, timeout=600,
        )
        if child.returncode != 0:
            raise RuntimeError(f"NVML bench for profile {profile} failed:\n{child.stderr}")
        figures = json.loads(child.stdout)
        rows.append({
            "measure": f"nvml poll, {N_GPUS} GPUs, fake driver '{profile}'",
            "value": figures["cpu_ms"],
            "unit": "ms CPU/poll",
            "target": "<= 3",
            "profile": profile,
            "calls_per_poll": figures["calls_per_poll"],
            "wall_ms_per_poll": figures["wall_ms"],
        })
        rows.append({
            "measure": f"nvml calls per poll, {N_GPUS} GPUs, '{profile}'",
            "value": figures["calls_per_poll"],
            "unit": "calls/poll",
            "target": "-",
            "profile": profile,
        })
    return rows


if __name__ == "__main__":
    json.dump(measure(sys.argv[1]), sys.stdout)

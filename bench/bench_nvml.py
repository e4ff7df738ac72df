"""CPU cost and NVML calls of one NvmlSource poll: 8 GPUs, every field answering, fake driver.

The fake driver is loaded into this process before pynvml's first nvmlInit, so the real pynvml
bindings and the real source code run; only the driver underneath is simulated (its own work is
a table lookup, so what is measured is the source plus pynvml/ctypes).
"""

from __future__ import annotations

import time

from tests.fake_nvml import load_fake_nvml

N_GPUS = 8
WARMUP_POLLS = 20
MEASURED_POLLS = 500


def run() -> list[dict]:
    fake = load_fake_nvml()
    fake.reset("eight")
    fake.set_device_count(N_GPUS)
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
    if len(sample) != N_GPUS:
        raise RuntimeError(f"expected {N_GPUS} GPUs from the fake driver, got {len(sample)}")
    fake.reset("default")
    return [
        {
            "measure": f"nvml poll, {N_GPUS} GPUs, fake driver",
            "value": cpu_ms,
            "unit": "ms CPU/poll",
            "target": "<= 3",
            "calls_per_poll": calls_per_poll,
            "wall_ms_per_poll": wall_ms,
        },
        {
            "measure": f"nvml calls per poll, {N_GPUS} GPUs",
            "value": calls_per_poll,
            "unit": "calls/poll",
            "target": "-",
        },
    ]

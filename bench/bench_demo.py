"""Cost of sampling the simulated fleet: a live poll at 1,000 and 10,000 GPUs, and the
fast-forward the history backfill uses (one sample per simulated minute).

Each fleet is polled once before measuring, so the one-off work (building every GPU's process
list) is not counted; after that a poll rebuilds processes only for GPUs whose job changed.
"""

from __future__ import annotations

import statistics
import time

from gpuops.core.sources.demo import DemoSource

MEASURED_POLLS = 40
FAST_FORWARD_STEPS = 60
FAST_FORWARD_STEP_S = 60.0


def _median_poll_ms(n_gpus: int) -> tuple[float, float]:
    source = DemoSource(n_gpus, seed=0)
    started = time.perf_counter()
    source.poll()
    first_ms = (time.perf_counter() - started) * 1e3
    durations = []
    for _ in range(MEASURED_POLLS):
        started = time.perf_counter()
        source.poll()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations) * 1e3, first_ms


def _fast_forward_ms(n_gpus: int) -> float:
    start = time.time() - FAST_FORWARD_STEPS * FAST_FORWARD_STEP_S
    source = DemoSource(n_gpus, seed=0, start_ts=start)
    source.sample_at(start)
    durations = []
    for step in range(1, FAST_FORWARD_STEPS + 1):
        started = time.perf_counter()
        source.sample_at(start + step * FAST_FORWARD_STEP_S)
        durations.append(time.perf_counter() - started)
    return statistics.median(durations) * 1e3


def run() -> list[dict]:
    rows = []
    for n_gpus, target in ((1_000, "measure and report"), (10_000, "<= 20")):
        median_ms, first_ms = _median_poll_ms(n_gpus)
        rows.append(
            {
                "measure": f"demo poll, {n_gpus:,} GPUs",
                "value": median_ms,
                "unit": "ms/poll",
                "target": target,
                "first_poll_ms": first_ms,
                "polls": MEASURED_POLLS,
            }
        )
    rows.append(
        {
            "measure": "demo fast-forward, 10,000 GPUs, 1 min steps",
            "value": _fast_forward_ms(10_000),
            "unit": "ms/sample",
            "target": "measure and report",
        }
    )
    return rows

"""Cost of evaluating every built-in alert rule over a 10,000-GPU simulated fleet per poll.

Samples come from DemoSource(n_gpus=10000) at 5-s steps (precomputed, so only the engine is
timed). The engine runs with allocations and a customer mapping given, so that every rule
(including the allocation ones) is evaluated. Reported: mean and 95th percentile CPU time per
evaluation, and how many alerts the simulated fleet raises.
"""

from __future__ import annotations

import time

import numpy as np

N_GPUS = 10_000
STEP_S = 5.0
WARMUP_POLLS = 20
MEASURED_POLLS = 200
START_TS = 1_763_798_400.0


def run() -> list[dict]:
    from core.alerts.builtin_rules import builtin_rules
    from core.alerts.engine import AlertEngine
    from core.sources.demo import DemoSource

    source = DemoSource(n_gpus=N_GPUS, seed=0)
    total = WARMUP_POLLS + MEASURED_POLLS
    samples = [source.sample_at(START_TS + i * STEP_S) for i in range(total)]
    rng = np.random.default_rng(0)
    allocated = rng.random(N_GPUS) < 0.8
    customers = {g.uuid: f"customer{i % 40}" for i, g in enumerate(samples[0].gpus) if allocated[i]}
    engine = AlertEngine(builtin_rules(), poll_interval_s=STEP_S)
    times_ms = []
    changes = 0
    for i, sample in enumerate(samples):
        started = time.process_time()
        result = engine.evaluate(sample, sample.ts, allocated=allocated, customers=customers)
        elapsed_ms = (time.process_time() - started) * 1e3
        if i >= WARMUP_POLLS:
            times_ms.append(elapsed_ms)
            changes += len(result.changes)
    active = engine.active
    return [
        {
            "measure": f"alert evaluation, {len(builtin_rules())} built-in rules, {N_GPUS} GPUs",
            "value": float(np.mean(times_ms)),
            "unit": "ms CPU/poll",
            "target": "<= 10",
            "p95_ms": float(np.percentile(times_ms, 95)),
            "max_ms": float(np.max(times_ms)),
        },
        {
            "measure": f"alert evaluation p95, {N_GPUS} GPUs",
            "value": float(np.percentile(times_ms, 95)),
            "unit": "ms CPU/poll",
            "target": "<= 10",
        },
        {"measure": "alert changes per poll (simulated fleet)", "value": changes / MEASURED_POLLS, "unit": "changes/poll", "target": "-"},
        {"measure": "active alerts at the end (simulated fleet)", "value": len(active), "unit": "alerts", "target": "-"},
    ]

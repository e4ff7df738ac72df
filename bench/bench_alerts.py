"""Cost of evaluating every built-in alert rule over a 10,000-GPU simulated fleet per poll.

Samples come from DemoSource(n_gpus=10000) at 5-s steps (precomputed, so only alerting is
timed). Three measures:
- the engine alone, without allocations (what `gpuops collect` runs today);
- the engine with an allocation mask and customer mapping, so every rule runs; the mask is
  random, so the allocation rules see many GPUs near their thresholds: a stress case;
- the engine plus persisting the changes to SQLite (AlertService.process), with allocations.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

N_GPUS = 10_000
STEP_S = 5.0
WARMUP_POLLS = 20
MEASURED_POLLS = 150
START_TS = 1_763_798_400.0


def _timed(evaluate, samples) -> tuple[list[float], int]:
    """CPU ms per measured poll, and alert changes over the measured polls."""
    times_ms, changes = [], 0
    for i, sample in enumerate(samples):
        started = time.process_time()
        result = evaluate(sample)
        elapsed_ms = (time.process_time() - started) * 1e3
        if i >= WARMUP_POLLS:
            times_ms.append(elapsed_ms)
            changes += len(result.changes)
    return times_ms, changes


def _row(measure: str, times_ms: list[float], changes: int) -> dict:
    return {
        "measure": measure, "value": float(np.mean(times_ms)), "unit": "ms CPU/poll", "target": "<= 10",
        "p95_ms": float(np.percentile(times_ms, 95)), "max_ms": float(np.max(times_ms)),
        "changes_per_poll": changes / MEASURED_POLLS,
    }


def run() -> list[dict]:
    from gpuops.core.alerts.builtin_rules import builtin_rules
    from gpuops.core.alerts.engine import AlertEngine
    from gpuops.core.alerts.service import AlertService
    from gpuops.core.sources.demo import DemoSource
    from gpuops.core.store.connection import open_database

    source = DemoSource(n_gpus=N_GPUS, seed=0)
    samples = [source.sample_at(START_TS + i * STEP_S) for i in range(WARMUP_POLLS + MEASURED_POLLS)]
    allocated = np.random.default_rng(0).random(N_GPUS) < 0.8
    customers = {g.uuid: f"customer{i % 40}" for i, g in enumerate(samples[0].gpus) if allocated[i]}
    n_rules = len(builtin_rules())

    plain = AlertEngine(builtin_rules(), poll_interval_s=STEP_S)
    rows = [_row(f"alert rules ({n_rules}), {N_GPUS} GPUs, no allocations",
                 *_timed(lambda s: plain.evaluate(s, s.ts), samples))]
    full = AlertEngine(builtin_rules(), poll_interval_s=STEP_S)
    rows.append(_row(f"alert rules ({n_rules}), {N_GPUS} GPUs, random allocations",
                     *_timed(lambda s: full.evaluate(s, s.ts, allocated=allocated, customers=customers), samples)))
    with tempfile.TemporaryDirectory() as tmp:
        conn, _ = open_database(Path(tmp) / "history.sqlite", create=True)
        service = AlertService(conn, poll_interval_s=STEP_S)
        times_ms, changes = _timed(lambda s: service.process(s, s.ts, allocated=allocated, customers=customers), samples)
        row = _row(f"alert rules + SQLite persist, {N_GPUS} GPUs, random allocations", times_ms, changes)
        row["target"] = "-"
        rows.append(row)
        rows.append({"measure": "active alerts at the end (random allocations)", "value": len(service.engine.active),
                     "unit": "alerts", "target": "-"})
        conn.close()
    return rows

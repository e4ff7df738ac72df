"""History read from a real Prometheus (issue 15): one GPU over 24 h, and the fleet at a past instant.

One Prometheus (the Debian package, on loopback) is backfilled with promtool: GPU 0 scraped every
15 s for the last 24 h (the four plotted DCGM fields), and a fleet of FLEET_GPUS GPUs on nodes of 8
with every DCGM field gpuops reads, 35 series per GPU with dcgm-exporter's labels, sampled twice
a minute before the instant asked. Measured through core.sources.prometheus_history, as the
console and the CLI call it:

* 24 h of one GPU: the four plotted series in 1,000 buckets each (query_range, one per metric, in
  turn, as the GUI's history loader asks them); and the raw rows of the same metrics (the
  export's read: 5,760 samples per metric).
* The fleet at a past instant: the prometheus: source's poll evaluated at that time, for
  FLEET_GPUS GPUs: at instants a minute apart (each asks its inventory too, as a jump of the
  replay slider does), and a second after one (the inventory of 30 s holds, as when dragging).

Targets (issue 15): 24 h of one GPU <= 200 ms; 8,000 GPUs at a past instant <= 1 s. Prometheus
shares the machine's CPUs with the client, as it would not in production.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from gpuops.core import dcgm_schema as dcgm
from gpuops.core.sources.prometheus_history import PrometheusHistory
from tests.backfilled_prometheus import Written, backfilled_prometheus

FLEET_GPUS = int(os.environ.get("GPUOPS_BENCH_FLEET_GPUS", "8000"))
DAY_S = 86_400.0
SCRAPE_S = 15.0
REPEATS = 5
PLOTTED = {"DCGM_FI_DEV_GPU_UTIL": "util_gpu_pct", dcgm.FB_USED: "mem_used_bytes", "DCGM_FI_DEV_GPU_TEMP": "temp_c",
           "DCGM_FI_DEV_POWER_USAGE": "power_w"}


def _labels(i: int) -> dict[str, str]:
    node = f"node{i // 8:04d}"
    return {
        "UUID": f"GPU-{i:08x}-0000-4000-8000-{i:012x}", "gpu": str(i % 8), "device": f"nvidia{i % 8}",
        "Hostname": node, "modelName": "NVIDIA H100 80GB HBM3", "pci_bus_id": f"00000000:{0x18 + i % 8:02X}:00.0",
        "DCGM_FI_DRIVER_VERSION": "550.54.15", "instance": f"{node}:9400", "job": "dcgm",
    }


def _series(end: float, instant: float) -> Iterator[Written]:
    day = [end - DAY_S + k * SCRAPE_S for k in range(int(DAY_S / SCRAPE_S))]
    for name in PLOTTED:
        yield Written(name, _labels(0), [(t, float(k % 100)) for k, t in enumerate(day)])
    fields = [f for f in dcgm.FIELDS if f.metric]
    for i in range(1, FLEET_GPUS):
        labels = _labels(i)
        for field in fields:
            yield Written(field.name, labels, [(instant - 50, float(i % 97)), (instant - 20, float(i % 89))])


def run() -> list[dict]:
    end = math.floor(time.time() / 3600) * 3600 - 3 * 3600.0
    instant = end - 600.0
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        with backfilled_prometheus(Path(tmp), _series(end, instant)) as base, \
                PrometheusHistory.from_spec(f"prometheus:{base}?timeout=30") as history:
            setup_s = time.monotonic() - started
            uuid = _labels(0)["UUID"]
            plots, raws, fleets = [], [], []
            points = 0
            for _ in range(REPEATS):
                t0 = time.perf_counter()
                points = sum(len(history.series(uuid, m, end - DAY_S, end, 1000)) for m in PLOTTED.values())
                plots.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                rows = len(history.table(uuid, end - DAY_S, end, "raw", list(PLOTTED.values())).ts)
                raws.append(time.perf_counter() - t0)
            gpus, scrubs = 0, []
            for k in range(REPEATS):
                # Instants a minute apart: each needs its own inventory, as a jump of the replay slider.
                t0 = time.perf_counter()
                sample = history.fleet_at(instant + 60 * (k % 2))
                fleets.append(time.perf_counter() - t0)
                gpus = len(sample)
                # Then a second later, as when the slider is dragged: the inventory still holds.
                t0 = time.perf_counter()
                history.fleet_at(instant + 60 * (k % 2) + 1)
                scrubs.append(time.perf_counter() - t0)

    def ms(values: list[float]) -> float:
        return round(statistics.median(values) * 1000, 1)

    return [
        {"measure": "24 h of one GPU: 4 plotted series, 1,000 buckets each (median)", "value": ms(plots), "unit": "ms",
         "target": "<= 200", "points": points},
        {"measure": "24 h of one GPU: raw rows of the 4 plotted metrics (median)", "value": ms(raws), "unit": "ms",
         "target": "measure and report", "rows": rows},
        {"measure": f"the fleet at a past instant, {gpus} GPUs, inventory included (median)", "value": ms(fleets),
         "unit": "ms", "target": "<= 1000 at 8,000 GPUs", "gpus": gpus},
        {"measure": f"the fleet 1 s after the last instant read, {gpus} GPUs (median)", "value": ms(scrubs),
         "unit": "ms", "target": "<= 1000 at 8,000 GPUs", "gpus": gpus},
        {"measure": "backfill (promtool) and Prometheus start", "value": round(setup_s, 1), "unit": "s",
         "target": "setup, not a target"},
    ]

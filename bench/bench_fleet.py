"""Fleet scale: scraping 1,000 endpoints, reading 8,000 GPUs from Prometheus, and the agent's CPU.

* Scrape: one ThreadingHTTPServer on 127.0.0.1 serves 1,000 distinct paths, one per node, each
  the exposition `gpuops agent` renders for that node's 8 GPUs of the simulated fleet (real
  names, labels, processes; ~35 metrics per GPU). Distinct paths are distinct targets to the
  source (own parse cache, own error), while one port keeps the bench inside file-descriptor
  limits. The server shares this process and its GIL with the source, so the figure is
  pessimistic: real endpoints answer from their own machines. The first poll fills the parse
  caches (prometheus_client's parser sees every line once); steady-state polls are the target.
* Prometheus: a real Prometheus (the Debian package, on loopback) backfilled by promtool with
  the same 8,000 GPUs' series and Prometheus' target labels, sampled seconds before the polls:
  the figure is a poll's whole cost, Prometheus' evaluation (sharing this machine's CPUs with
  the source, as it would not in production) and the source's HTTP, JSON and assembly.
* Agent CPU: `gpuops agent --source demo:8 --interval 1` in a subprocess, scraped once a second
  for ~20 s; process CPU time (utime + stime from /proc) over wall time, startup excluded.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from gpuops.core.agent.collector import snapshot_exposition
from gpuops.core.agent.poller import AgentSnapshot
from gpuops.core.sources.demo import DemoSource
from gpuops.core.sources.prometheus import PrometheusSource
from gpuops.core.sources.scrape import ScrapeSource
from gpuops.core.telemetry import FleetSample
from tests.backfilled_prometheus import at, backfilled_prometheus
from tests.local_http import Answer, LocalServer, static_routes

REPO = Path(__file__).resolve().parent.parent
N_GPUS = 8_000
WARM_POLLS = 3
AGENT_SECONDS = 20


def _node_exposition(sample: FleetSample, positions: list[int]) -> bytes:
    index = np.array(positions)
    part = FleetSample(
        ts=sample.ts,
        gpus=tuple(sample.gpus[i] for i in positions),
        metrics={name: column[index] for name, column in sample.metrics.items()},
        state=sample.state[index],
        processes=tuple(sample.processes[i] for i in positions),
    )
    return snapshot_exposition(AgentSnapshot(sample=part))


def _fleet_expositions() -> dict[str, bytes]:
    source = DemoSource(n_gpus=N_GPUS, seed=1)
    sample = source.poll()
    source.close()
    by_node: dict[str, list[int]] = {}
    for i, gpu in enumerate(sample.gpus):
        by_node.setdefault(gpu.node, []).append(i)
    return {node: _node_exposition(sample, positions) for node, positions in by_node.items()}


def _bench_scrape(expositions: dict[str, bytes]) -> list[dict]:
    answers = {f"/{node}/metrics": Answer(body) for node, body in expositions.items()}
    server = LocalServer(static_routes(answers))
    source = ScrapeSource([server.base + path for path in answers], timeout_s=5.0)
    try:
        started = time.perf_counter()
        first = source.poll()
        first_s = time.perf_counter() - started
        warm, cpu = [], []
        for _ in range(WARM_POLLS):
            started, cpu_started = time.perf_counter(), time.process_time()
            sample = source.poll()
            warm.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
    finally:
        source.close()
        server.stop()
    assert len(sample) == N_GPUS and not sample.errors, (len(sample), sample.errors[:3])
    detail = {"targets": len(answers), "gpus": len(sample), "bytes_per_poll": sum(map(len, expositions.values())),
              "load_avg_1m": os.getloadavg()[0], "cpus": os.cpu_count()}
    return [
        {"measure": "scrape poll, 1,000 endpoints / 8,000 GPUs, steady state (median)", "value": statistics.median(warm),
         "unit": "s", "target": "<= 2", "process_cpu_s_incl_fake_servers": statistics.median(cpu), **detail},
        {"measure": "scrape poll, 1,000 endpoints / 8,000 GPUs, first poll (parse caches cold)", "value": first_s,
         "unit": "s", "target": "info", "gpus_read": len(first) - len(first.stale_nodes) * 8,
         "targets_failed": len(first.errors), "first_error": first.errors[0] if first.errors else None},
    ]


def _series(expositions: dict[str, bytes]) -> list[tuple[dict[str, str], float]]:
    series = []
    for n, body in enumerate(expositions.values()):
        instance = f"10.{n // 250}.{n % 250}.1:9400"
        series.append(({"__name__": "up", "instance": instance, "job": "gpuops"}, 1.0))
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                labels = {**sample.labels, "__name__": sample.name, "instance": instance, "job": "gpuops"}
                series.append((labels, float(sample.value)))
    return series


def _bench_prometheus(expositions: dict[str, bytes]) -> list[dict]:
    series = _series(expositions)
    with tempfile.TemporaryDirectory() as tmp, \
            backfilled_prometheus(Path(tmp), at(series, time.time() - 5)) as base:
        # a generous timeout: Prometheus shares this machine's CPUs with the source
        source = PrometheusSource.from_spec(f"prometheus:{base}?selector=job%3D%22gpuops%22&timeout=120", environ={})
        source.poll()  # the first poll also asks the inventory, which later polls keep for 30 s
        times, cpu = [], []
        for _ in range(WARM_POLLS):
            started, cpu_started = time.perf_counter(), time.process_time()
            sample = source.poll()
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
        source.close()
    assert len(sample) == N_GPUS and not sample.errors, (len(sample), sample.errors[:3])
    return [{"measure": "prometheus: poll, 8,000 GPUs (median)", "value": statistics.median(times), "unit": "s",
             "target": "<= 1", "queries_per_poll": len(source._queries()), "series_in_prometheus": len(series),
             "source_process_cpu_s": statistics.median(cpu), "load_avg_1m": os.getloadavg()[0]}]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _bench_agent_cpu() -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD")}
    agent = subprocess.Popen(
        [sys.executable, "-m", "gpuops", "agent", "--source", "demo:8", "--listen", "127.0.0.1:0", "--interval", "1"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert agent.stdout is not None
        url = agent.stdout.readline().split()[3]
        urllib.request.urlopen(url, timeout=10).read()  # warm: first scrape imports and renders once
        cpu_start, wall_start = _cpu_seconds(agent.pid), time.monotonic()
        for second in range(1, AGENT_SECONDS + 1):
            urllib.request.urlopen(url, timeout=10).read()
            time.sleep(max(0.0, wall_start + second - time.monotonic()))
        cpu = _cpu_seconds(agent.pid) - cpu_start
        wall = time.monotonic() - wall_start
    finally:
        agent.terminate()
        agent.wait(10)
    return [{"measure": "agent CPU, demo:8, 1 poll + 1 scrape per second", "value": 100.0 * cpu / wall,
             "unit": "% of a core", "target": "<= 2", "seconds": round(wall, 1), "load_avg_1m": os.getloadavg()[0]}]


def run() -> list[dict]:
    expositions = _fleet_expositions()
    return [*_bench_scrape(expositions), *_bench_prometheus(expositions), *_bench_agent_cpu()]

"""End to end: `gpuops agent` processes (simulated fleet, and NVML over the fake driver) scraped
by a real Prometheus server, read back through the `prometheus:` source.

Needs the Debian package `prometheus` (scripts/dev.sh installs it). Without it this fails in CI
(CI=true), where a skip would hide a missing install, and skips elsewhere saying why.
"""

from __future__ import annotations

import json
import math
import os
import select
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpuops.core.sources.factory import open_source
from gpuops.core.telemetry import SAMPLE_METRICS, FleetSample
from tests.fake_nvml.build import build_fake_nvml
from tests.fake_nvml.control import DEFAULT_BUILD_DIR, subprocess_env
from tests.servers import free_port, stop, wait_until
from tests.tools import require_tool

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
PROMETHEUS = "/usr/bin/prometheus"
STARTUP_LIMIT_S = 60.0
DEMO_GPUS = 8
# Agents poll once and then hold still, so what Prometheus stored is exactly what they serve.
FROZEN_INTERVAL_S = "3600"


def _read_line(process: subprocess.Popen[str], limit_s: float) -> str:
    """The first stdout line, within `limit_s`; the process's stderr in the failure otherwise."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], limit_s)
    if not ready:
        process.kill()
        pytest.fail(f"no output within {limit_s} s: {process.stderr.read() if process.stderr else ''}")
    line = process.stdout.readline()
    if not line:
        pytest.fail(f"exited with {process.wait(5)}: {process.stderr.read() if process.stderr else ''}")
    return line.strip()


def _start_agent(source: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "gpuops", "agent", "--source", source, "--listen", "127.0.0.1:0",
         "--interval", FROZEN_INTERVAL_S],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = _read_line(process, STARTUP_LIMIT_S)
    assert line.startswith("gpuops agent: serving http://127.0.0.1:"), line
    url = line.split()[3]
    return process, url


def _instant(base: str, promql: str) -> list[dict]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)["data"]["result"]


def _wait_for(base: str, promql: str, want: float, limit_s: float) -> None:
    """Poll until `promql` evaluates to `want`."""
    def reached() -> bool:
        result = _instant(base, promql)
        return bool(result) and float(result[0]["value"][1]) == want

    wait_until(f"{promql} to become {want}", reached, limit_s, interval_s=0.2)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[dict]:
    prometheus_binary = require_tool(PROMETHEUS, "prometheus", install="apt-get install -y prometheus; scripts/dev.sh does it")
    library = build_fake_nvml(DEFAULT_BUILD_DIR)
    plain_env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD")}
    processes: list[subprocess.Popen[str]] = []
    try:
        demo, demo_url = _start_agent(f"demo:{DEMO_GPUS}", plain_env)
        processes.append(demo)
        nvml, nvml_url = _start_agent("nvml", subprocess_env(library, base=plain_env))
        processes.append(nvml)
        work = tmp_path_factory.mktemp("prometheus")
        targets = [urllib.parse.urlsplit(url).netloc for url in (demo_url, nvml_url)]
        (work / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: gpuops\n    static_configs:\n"
            f"      - targets: {json.dumps(targets)}\n"
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [prometheus_binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        processes.append(server)
        _wait_for(base, 'count(up{job="gpuops"} == 1)', 2, STARTUP_LIMIT_S)
        yield {"base": base, "demo": demo, "demo_url": demo_url, "nvml_url": nvml_url, "targets": targets}
    finally:
        for process in reversed(processes):
            stop(process)


def _through(spec: str) -> FleetSample:
    with open_source(spec) as source:
        return source.poll()


def _assert_same(direct: FleetSample, via_prometheus: FleetSample) -> None:
    by_uuid = {gpu.uuid: i for i, gpu in enumerate(via_prometheus.gpus)}
    assert set(by_uuid) == set(direct.uuids)
    for i, gpu in enumerate(direct.gpus):
        j = by_uuid[gpu.uuid]
        assert via_prometheus.gpus[j] == gpu
        assert via_prometheus.gpu_state(j) == direct.gpu_state(i)
        assert sorted(via_prometheus.processes[j], key=lambda p: p.pid) == sorted(direct.processes[i], key=lambda p: p.pid)
        for name in SAMPLE_METRICS:
            want, got = float(direct.metrics[name][i]), float(via_prometheus.metrics[name][j])
            assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want, rel=1e-12), (gpu.uuid, name)


def test_prometheus_source_reads_back_what_the_agents_serve(fleet) -> None:
    _wait_for(fleet["base"], "count(gpuops_gpu_info)", DEMO_GPUS + _gpu_count(fleet["nvml_url"]), STARTUP_LIMIT_S)
    direct = _through(f"scrape:{fleet['demo_url']},{fleet['nvml_url']}")
    assert direct.errors == () and len(direct) > DEMO_GPUS
    via = _through(f"prometheus:{fleet['base']}?selector=job%3D%22gpuops%22")
    assert via.errors == () and via.stale_nodes == frozenset()
    _assert_same(direct, via)
    assert any(via.processes)  # per-process memory made it through the gpuops_ extras


def test_a_dead_agent_is_a_stale_node_in_prometheus(fleet) -> None:
    demo_nodes = {gpu.node for gpu in _through(f"scrape:{fleet['demo_url']}").gpus}
    with open_source(f"prometheus:{fleet['base']}") as source:
        before = source.poll()
        assert before.stale_nodes == frozenset()
        stop(fleet["demo"])
        _wait_for(fleet["base"], f'up{{instance="{fleet["targets"][0]}"}}', 0, 30)
        after = source.poll()
    assert after.stale_nodes == frozenset(demo_nodes)
    assert any("Prometheus reports this target down" in error for error in after.errors)
    assert [g.uuid for g in after.gpus] == [g.uuid for g in before.gpus]
    for i, gpu in enumerate(after.gpus):
        if gpu.node in demo_nodes:
            assert after.gpu_state(i).label == "unknown" and math.isnan(after.metrics["temp_c"][i])
        else:  # the NVML agent's GPUs go on as they were
            assert after.gpu_state(i) == before.gpu_state(i)
            assert after.metrics["temp_c"][i] == before.metrics["temp_c"][i] or math.isnan(before.metrics["temp_c"][i])


def _gpu_count(url: str) -> int:
    return len(_through(f"scrape:{url}"))

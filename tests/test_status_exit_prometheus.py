"""Exit status through a real Prometheus (issue 18 item 1): a `prometheus:` selector that matches
nothing is "no GPU found", exit 1, for `status`, `export` and `collect --once`; the same server
without the selector answers with the GPU of the dcgm-exporter capture it scrapes, exit 0.

Prometheus scrapes a real dcgm-exporter capture (tests/fixtures/dcgm-exporter, PROVENANCE.md)
served on 127.0.0.1. Needs the Debian package `prometheus` (scripts/dev.sh installs it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.local_http import Answer, LocalServer, static_routes
from tests.servers import free_port, stop, wait_until
from tests.tools import require_tool

pytestmark = pytest.mark.slow

CAPTURE = Path(__file__).parent / "fixtures" / "dcgm-exporter" / "k8s-ai-conformance_rafay_tesla-t4.prom"
STARTUP_LIMIT_S = 60.0


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory) -> Iterator[str]:
    binary = require_tool("/usr/bin/prometheus", "prometheus", install="apt-get install -y prometheus; scripts/dev.sh does it")
    exporter = LocalServer(static_routes({"/metrics": Answer(CAPTURE.read_bytes())}))
    work = tmp_path_factory.mktemp("prometheus")
    target = urllib.parse.urlsplit(exporter.base).netloc
    (work / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        f"scrape_configs:\n  - job_name: dcgm\n    static_configs:\n      - targets: [\"{target}\"]\n"
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    query = urllib.parse.urlencode({"query": "DCGM_FI_DEV_GPU_TEMP"})

    def scraped() -> bool:
        with urllib.request.urlopen(f"{base}/api/v1/query?{query}", timeout=2) as response:
            return bool(json.load(response)["data"]["result"])

    try:
        wait_until("Prometheus to hold the capture's series", scraped, STARTUP_LIMIT_S, interval_s=0.2)
        yield base
    finally:
        stop(server)
        exporter.stop()


def gpuops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gpuops", *args], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))


def test_a_selector_that_matches_nothing_exits_1_everywhere(prometheus, tmp_path) -> None:
    nothing = f'prometheus:{prometheus}?selector=job="no-such-job"'
    status = gpuops("status", "--source", nothing, "--json")
    assert status.returncode == 1
    assert json.loads(status.stdout)["gpus"] == []
    assert status.stderr.splitlines()[-1].startswith("gpuops: no GPU found")
    out = tmp_path / "fleet.json"
    export = gpuops("export", "--format", "json", "--source", nothing, "--db", str(tmp_path / "h.sqlite"), "-o", str(out))
    assert export.returncode == 1 and "no GPU found" in export.stderr and not out.exists()
    collect = gpuops("collect", "--once", "--source", nothing, "--db", str(tmp_path / "c.sqlite"))
    assert collect.returncode == 1 and collect.stderr.splitlines()[-1].startswith("gpuops: no GPU found")


def test_the_same_server_without_the_selector_exits_0(prometheus) -> None:
    status = gpuops("status", "--source", f"prometheus:{prometheus}", "--json")
    assert status.returncode == 0, status.stderr
    [gpu] = json.loads(status.stdout)["gpus"]
    assert (gpu["node"], gpu["name"], gpu["uuid"]) == ("ip-10-200-3-41", "Tesla T4", "GPU-d7cbb0cd-d4bd-c2f7-dfaf-221df5e958ea")
    matching = gpuops("status", "--source", f'prometheus:{prometheus}?selector=job="dcgm"')
    assert matching.returncode == 0 and matching.stdout.splitlines()[1].split()[:3] == ["ip-10-200-3-41", "0", "Tesla"]

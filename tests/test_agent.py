"""`gpuops agent`: dcgm-exporter names, units and labels; gpuops extras; a /metrics-only server."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import ssl
import subprocess
import threading
from contextlib import ExitStack
from pathlib import Path

import pytest

from gpuops.core import dcgm_schema as dcgm
from gpuops.core.agent.basic_auth import BasicAuth, BasicAuthFileError
from gpuops.core.agent.server import DEFAULT_LISTEN, ListenAddress, ListenAddressError, server_tls_context
from gpuops.core.agent.service import Agent
from gpuops.core.sources.base import SourceError
from gpuops.core.telemetry import GpuState, ProcessInfo
from tests.agent_helpers import Exposition, PlaybackSource, fetch, self_signed_certificate, serving
from tests.samples import make_sample

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def run_agent():
    with ExitStack() as stack:
        yield lambda source, **kwargs: stack.enter_context(serving(source, **kwargs))


def scrape(agent: Agent, **kwargs) -> Exposition:
    status, headers, body = fetch(agent.url, **kwargs)
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return Exposition.parse(body.decode())


def test_dcgm_names_units_and_labels(run_agent) -> None:
    sample = make_sample(2, values={"fan_pct": {0: 35.0}, "energy_j": {1: 2.5e6}})
    agent = run_agent(PlaybackSource([sample]))
    served = scrape(agent)
    gpu = sample.gpus[1]
    labels = served.samples["DCGM_FI_DEV_GPU_TEMP"][1][0]
    assert set(labels) == set(dcgm.GPU_LABELS)
    assert labels == {
        "gpu": "1", "UUID": gpu.uuid, "device": "nvidia1", "modelName": gpu.name, "Hostname": gpu.node,
        "pci_bus_id": gpu.pci_bus_id, "DCGM_FI_DRIVER_VERSION": "",
    }
    uuid = gpu.uuid
    assert served.value("DCGM_FI_DEV_FB_USED", UUID=uuid) == 40 * 1024  # MiB
    assert served.value("DCGM_FI_DEV_FB_FREE", UUID=uuid) == 40 * 1024
    assert served.value("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", UUID=uuid) == 2.5e9  # mJ
    assert served.value("DCGM_FI_DEV_POWER_USAGE", UUID=uuid) == 400.0
    assert served.value("DCGM_FI_DEV_GPU_UTIL", UUID=uuid) == 50.0
    assert served.value("DCGM_FI_DEV_SM_CLOCK", UUID=uuid) == 1980.0
    assert served.value("DCGM_FI_DEV_SLOWDOWN_TEMP", UUID=uuid) == 87.0
    assert served.value("DCGM_FI_DEV_XID_ERRORS", UUID=uuid) == 0.0
    assert served.value("DCGM_FI_DEV_FAN_SPEED", UUID=sample.gpus[0].uuid) == 35.0
    # Counters keep dcgm-exporter's names (no _total) and are typed counter, as there.
    assert served.types["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"] == "counter"
    assert served.types["DCGM_FI_DEV_GPU_TEMP"] == "gauge"
    assert served.value(dcgm.GPUOPS_SOURCE_UP) == 1.0


def test_unsupported_values_are_left_out_never_zero(run_agent) -> None:
    sample = make_sample(3, states={2: GpuState.LOST})  # fan is NaN everywhere in make_sample
    served = scrape(run_agent(PlaybackSource([sample])))
    assert "DCGM_FI_DEV_FAN_SPEED" not in served.samples
    lost = sample.gpus[2].uuid
    assert [got for got, _ in served.samples["DCGM_FI_DEV_GPU_TEMP"] if got["UUID"] == lost] == []
    assert served.value(dcgm.GPUOPS_GPU_STATE, UUID=lost, gpuops_gpu_state="lost") == 1.0
    assert served.value(dcgm.GPUOPS_GPU_STATE, UUID=lost, gpuops_gpu_state="ok") == 0.0
    assert served.value(dcgm.GPUOPS_GPU_STATE, UUID=sample.gpus[0].uuid, gpuops_gpu_state="ok") == 1.0


def test_xid_counter_keeps_every_repeat_across_polls(run_agent) -> None:
    first = make_sample(2, xids=((0, 79), (0, 79), (1, 48)))
    second = make_sample(2, ts=first.ts + 1, xids=((0, 79),))
    quiet = make_sample(2, ts=first.ts + 2)
    source = PlaybackSource([first, second, quiet])
    agent = run_agent(source)
    agent.poller.stop()  # the background thread already did one poll; drive the rest by hand
    agent.poller.poll_once()
    agent.poller.poll_once()
    served = scrape(agent)
    uuid0, uuid1 = first.gpus[0].uuid, first.gpus[1].uuid
    assert served.value(dcgm.GPUOPS_XID_ERRORS_TOTAL, UUID=uuid0, xid="79") == 3.0
    assert served.value(dcgm.GPUOPS_XID_ERRORS_TOTAL, UUID=uuid1, xid="48") == 1.0
    assert served.types[dcgm.GPUOPS_XID_ERRORS] == "counter"
    assert served.value("DCGM_FI_DEV_XID_ERRORS", UUID=uuid0) == 79.0


def test_processes_and_inventory_extras(run_agent) -> None:
    processes = {0: (ProcessInfo(pid=4242, name="python3", used_mem_bytes=3 * 2**30), ProcessInfo(7, None, None))}
    sample = make_sample(1, processes=processes)
    served = scrape(run_agent(PlaybackSource([sample])))
    uuid = sample.gpus[0].uuid
    assert served.value(dcgm.GPUOPS_PROCESS_MEMORY, UUID=uuid, pid="4242", process_name="python3") == 3 * 2**30
    assert math.isnan(served.value(dcgm.GPUOPS_PROCESS_MEMORY, UUID=uuid, pid="7", process_name=""))
    assert served.value(dcgm.GPUOPS_GPU_INFO, UUID=uuid, serial=sample.gpus[0].serial) == 1.0


def test_a_failing_source_drops_gpu_series_and_says_so(run_agent) -> None:
    agent = run_agent(PlaybackSource([SourceError("NVML: driver not loaded")]))
    served = scrape(agent)
    assert served.value(dcgm.GPUOPS_SOURCE_UP) == 0.0
    assert "DCGM_FI_DEV_GPU_TEMP" not in served.samples


def test_a_hung_source_never_blocks_metrics(run_agent) -> None:
    source = PlaybackSource([make_sample(2)])
    agent = run_agent(source)
    source.gate = threading.Event()  # the next poll now hangs, as in a stuck driver call
    try:
        for _ in range(3):
            served = scrape(agent)
            assert len(served.samples["DCGM_FI_DEV_GPU_TEMP"]) == 2
    finally:
        source.gate.set()


def test_only_metrics_is_served(run_agent) -> None:
    agent = run_agent(PlaybackSource([make_sample(1)]))
    base = agent.url.removesuffix("/metrics")
    for path in ("/", "/metrics/", "/favicon.ico", "/api/v1/query", "/../metrics"):
        status, _, _ = fetch(base + path)
        assert status == 404, path
    assert fetch(agent.url + "?format=x")[0] == 200
    status, headers, _ = fetch(agent.url, method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    status, headers, body = fetch(agent.url, method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
    assert "Python" not in fetch(agent.url)[1]["Server"]


def test_listens_on_loopback_unless_told_otherwise() -> None:
    assert ListenAddress.parse(DEFAULT_LISTEN) == ListenAddress("127.0.0.1", 9400)
    assert ListenAddress.parse("0.0.0.0:9400") == ListenAddress("0.0.0.0", 9400)
    assert ListenAddress.parse("[::1]:9401") == ListenAddress("::1", 9401)
    for bad in (":9400", "9400", "example.com:9400", "127.0.0.1:http", "127.0.0.1:70000"):
        with pytest.raises(ListenAddressError, match="bad listen address"):
            ListenAddress.parse(bad)
    from gpuops.commands import agent as agent_command

    assert agent_command._DEFAULT_LISTEN == DEFAULT_LISTEN


def _auth_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "users"
    path.write_text(text)
    return path


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth(run_agent, tmp_path: Path) -> None:
    digest = hashlib.sha256(b"s3cret:with colon").hexdigest()
    auth = BasicAuth.from_file(_auth_file(tmp_path, f"# scrapers\nprometheus:sha256:{digest}\n"))
    agent = run_agent(PlaybackSource([make_sample(1)]), basic_auth=auth)
    status, headers, _ = fetch(agent.url)
    assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="gpuops"'
    assert fetch(agent.url, headers=_basic("prometheus", "wrong"))[0] == 401
    assert fetch(agent.url, headers=_basic("nobody", "s3cret:with colon"))[0] == 401
    assert fetch(agent.url, headers={"Authorization": "Bearer s3cret"})[0] == 401
    assert fetch(agent.url.replace("/metrics", "/x"))[0] == 401  # nothing is told before auth
    assert fetch(agent.url, headers=_basic("prometheus", "s3cret:with colon"))[0] == 200
    assert fetch(agent.url.replace("/metrics", "/x"), headers=_basic("prometheus", "s3cret:with colon"))[0] == 404


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alice:$2b$12$abcdefghijklmnopqrstuv\n", "unsupported hash"),
        ("alice:sha256:abc\n", "64 hex digits"),
        (f"alice:sha256:{'zz' * 32}\n", "not hexadecimal"),
        (f"alice:sha256:{'ab' * 32}\nalice:sha256:{'cd' * 32}\n", "appears twice"),
        ("# nobody\n", "has no user"),
        (f":sha256:{'ab' * 32}\n", "user is empty"),
    ],
)
def test_basic_auth_file_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(BasicAuthFileError, match=message):
        BasicAuth.from_file(_auth_file(tmp_path, text))


def test_tls(run_agent, tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    agent = run_agent(PlaybackSource([make_sample(1)]), tls=server_tls_context(cert, key))
    assert agent.url.startswith("https://127.0.0.1:")
    trusted = ssl.create_default_context(cafile=str(cert))
    status, _, body = fetch(agent.url, context=trusted)
    assert status == 200 and b"DCGM_FI_DEV_GPU_TEMP" in body
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        fetch(agent.url, context=ssl.create_default_context())
    with pytest.raises(ValueError, match="cannot use TLS certificate"):
        server_tls_context(key, cert)


def test_every_metric_of_the_official_grafana_dashboard_is_served(run_agent) -> None:
    dashboard = json.loads((FIXTURES / "grafana" / "dcgm-exporter-dashboard.json").read_text())
    queried = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queried |= set(re.findall(r"\b(DCGM_FI_[A-Z0-9_]+)\b", target["expr"]))
    assert len(queried) >= 5
    served = scrape(run_agent(PlaybackSource([make_sample(2)])))
    # Tensor-pipe activity is a DCGM profiling (DCP) metric: NVML and the gpuops model have no
    # such column, so that one panel stays empty. Everything else must be there.
    not_measurable = {"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"}
    missing = {name for name in queried if not served.samples.get(name)}
    assert missing == not_measurable
    for name in queried - not_measurable:
        assert {tuple(sorted(got)) for got, _ in served.samples[name]} == {tuple(sorted(dcgm.GPU_LABELS))}
    # The dashboard filters on instance and gpu, which Prometheus adds and the agent serves.
    assert all(got["gpu"] in {"0", "1"} for got, _ in served.samples["DCGM_FI_DEV_GPU_TEMP"])


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--listen", ":9400"], 1, "bad listen address"),
        (["--tls-cert", "cert.pem"], 2, "--tls-cert and --tls-key go together"),
        (["--basic-auth-file", "/nonexistent/users"], 1, "cannot read basic-auth file"),
        (["--interval", "0"], 2, "--interval: 0 s is outside 0.05 s"),
        (["--source", "bogus"], 1, "unknown source"),
    ],
)
def test_agent_command_refuses_bad_options_in_one_line(args: list[str], code: int, message: str) -> None:
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "gpuops", "agent", "--source", "demo:1", *args],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == code
    lines = [line for line in result.stderr.splitlines() if line.startswith(("gpuops:", "gpuops agent: error:"))]
    assert len(lines) == 1 and message in lines[0], result.stderr

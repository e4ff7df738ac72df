"""`prometheus:` source against a real Prometheus serving real query answers: the captured
cluster's series (tests/fixtures/prometheus-api) backfilled with promtool, in phases ten minutes
apart (more than Prometheus' 5-minute look-back), so that a poll evaluated at a phase's time
(PrometheusSource.evaluation_time) sees exactly that phase; the live phase is written a few
seconds before the server starts, for polls that ask at now."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpuops.core import dcgm_schema as dcgm
from gpuops.core.sources.base import SourceError
from gpuops.core.sources.factory import open_source
from gpuops.core.sources.prometheus import PrometheusSource, PrometheusSpec
from tests.backfilled_prometheus import at, backfilled_prometheus, logged_queries, series_from_api_answers

ANSWERS = Path(__file__).parent / "fixtures" / "prometheus-api"
MIB = 2**20
# The two exporter pods of the captured cluster, as Prometheus' own `up` series would name them
# (the pod label on GPUs that run no workload is the exporter's own pod).
TARGETS = {"10.0.172.246:9400": "nvidia-dcgm-exporter-wqqqn", "10.0.247.52:9400": "nvidia-dcgm-exporter-g2fjs"}
DOWN = "10.0.247.52:9400"
NOW = time.time()
BASE = NOW - 3000.0  # the cluster; a newcomer GPU shows 20 s later
DOWN_AT = NOW - 2400.0  # the cluster with DOWN's target down
EXTRAS = NOW - 1800.0  # an agent's GPU with MIG, sentinels and gpuops extras; its XID count grows at EXTRAS_LATER
EXTRAS_LATER = NOW - 1200.0
NEWCOMER = {"__name__": "DCGM_FI_DEV_GPU_TEMP", "UUID": "GPU-new", "Hostname": "gpu-node-3", "gpu": "0",
            "modelName": "NVIDIA H200", "instance": "10.0.0.9:9400"}
AGENT = {"UUID": "GPU-1", "Hostname": "h1", "gpu": "0", "modelName": "NVIDIA A100-SXM4-80GB", "instance": "h1:9400"}


def _captured_series(down: str | None = None) -> list:
    series = series_from_api_answers(json.loads(p.read_text()) for p in sorted(ANSWERS.glob("*.json")))
    series = [(labels, v) for labels, v in series if labels.get("instance") != down]
    for instance, pod in TARGETS.items():
        series.append(({
            "__name__": "up", "instance": instance, "job": "nvidia-dcgm-exporter", "namespace": "gpu-operator",
            "pod": pod, "container": "nvidia-dcgm-exporter", "service": "nvidia-dcgm-exporter", "endpoint": "gpu-metrics",
        }, 0.0 if instance == down else 1.0))
    return series


def _agent_series(xid_count: float) -> list:
    labels = AGENT
    return [
        ({"__name__": "up", "instance": "h1:9400"}, 1.0),
        ({**labels, "__name__": "DCGM_FI_DEV_FB_USED", "GPU_I_ID": "1", "GPU_I_PROFILE": "3g.40gb",
          "exported_pod": "train", "exported_namespace": "ml", "pod": "dcgm-exporter-x"}, 30000.0),
        ({**labels, "__name__": "DCGM_FI_DEV_FB_USED", "GPU_I_ID": "2", "GPU_I_PROFILE": "3g.40gb"}, 1000.0),
        ({**labels, "__name__": "DCGM_FI_DEV_POWER_USAGE"}, 9223372036854775792.0),
        ({**labels, "__name__": "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"}, 4.0),
        ({**labels, "__name__": "gpuops_gpu_state", "gpuops_gpu_state": "lost"}, 1.0),
        ({**labels, "__name__": "gpuops_gpu_state", "gpuops_gpu_state": "ok"}, 0.0),
        ({**labels, "__name__": "gpuops_process_memory_used_bytes", "pid": "31", "process_name": "python"}, 2.0 * MIB),
        ({**labels, "__name__": "gpuops_gpu_info", "serial": "1650", "architecture": "ampere", "mig_mode": "true"}, 1.0),
        ({**labels, "__name__": "gpuops_xid_errors_total", "xid": "94"}, xid_count),
    ]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL, query log) of the Prometheus holding every phase."""
    tmp = tmp_path_factory.mktemp("prometheus")
    written = [
        *at(_captured_series(), _live()), *at(_captured_series(), BASE), *at([(NEWCOMER, 33.0)], BASE + 20),
        *at([({"__name__": "up", "instance": "10.0.0.9:9400"}, 1.0)], BASE + 20),
        *at(_captured_series(down=DOWN), DOWN_AT), *at(_agent_series(2.0), EXTRAS), *at(_agent_series(3.0), EXTRAS_LATER),
    ]
    log = tmp / "queries.log"
    with backfilled_prometheus(tmp, written, query_log=log) as base:
        yield base, log


def _live() -> float:
    """When to write the phase that polls at now read: just before the server starts (the suite
    may import this module minutes before it runs it, and Prometheus looks back 5 minutes)."""
    return time.time() - 5.0


def _source_at(base: str, ts: float, options: str = "") -> PrometheusSource:
    source = PrometheusSource.from_spec(f"prometheus:{base}{options}")
    source.evaluation_time = ts
    return source


def _by_uuid(sample) -> dict[str, dict]:
    return {record["uuid"]: record for record in sample.records()}


def test_reads_the_captured_cluster(prometheus) -> None:
    with open_source(f"prometheus:{prometheus[0]}") as source:  # at now: the live phase
        sample = source.poll()
    assert sample.errors == () and sample.stale_nodes == frozenset()
    gpus = _by_uuid(sample)
    assert len(gpus) == 16
    assert {r["node"] for r in gpus.values()} == {"gpu-node-1", "gpu-node-2"}
    busy = gpus["GPU-c4529c8d-69c4-b61d-e0bc-7b2460096005"]
    assert busy["mem_used_bytes"] == 74166 * MIB
    assert (busy["index"], busy["name"], busy["pci_bus_id"]) == (0, "NVIDIA H100 80GB HBM3", "00000000:53:00.0")
    assert busy["driver_version"] == "580.105.08" and busy["util_gpu_pct"] == 0.0
    assert busy["temp_c"] is not None
    # The vLLM pod is a workload; the exporter's own pod (Prometheus' target label) is not.
    assert [(w["namespace"], w["pod"], w["container"]) for w in busy["workloads"]] == [
        ("dynamo-workload", "vllm-agg-0-vllmdecodeworker-s65j5", "main"),
    ]
    idle = gpus["GPU-bc5610b9-79c8-fedd-8899-07539c7f868a"]
    assert idle["workloads"] == [] and idle["mem_used_bytes"] == 0 and idle["temp_c"] == 29.0
    assert idle["power_w"] is None  # not in what Prometheus holds: unknown, never 0


def test_one_query_per_metric_for_the_whole_fleet(prometheus) -> None:
    base, log = prometheus
    source = PrometheusSource.from_spec(f'prometheus:{base}?selector=job%3D%22nvidia-dcgm-exporter%22')
    before = len(logged_queries(log))
    assert len(source.poll()) == 16
    queries = logged_queries(log)[before:]
    source.close()
    assert len(queries) == len(set(queries)) == len(dcgm.FIELDS) + 6  # up, inventory, 4 gpuops extras
    assert all('job="nvidia-dcgm-exporter"' in q for q in queries)
    assert not any("GPU-" in q for q in queries)


def test_a_down_target_makes_its_node_stale(prometheus) -> None:
    source = _source_at(prometheus[0], BASE)
    assert len(source.poll()) == 16
    source.evaluation_time = DOWN_AT  # its target down, its GPUs' series gone
    sample = source.poll()
    source.close()
    gpus = _by_uuid(sample)
    assert len(gpus) == 16
    assert sample.stale_nodes == frozenset({"gpu-node-2"})
    assert sample.errors == ("node gpu-node-2 (10.0.247.52:9400): Prometheus reports this target down (up == 0)",)
    states = {r["node"]: set() for r in gpus.values()}
    for r in gpus.values():
        states[r["node"]].add(r["state"])
    assert states == {"gpu-node-1": {"ok"}, "gpu-node-2": {"unknown"}}


def test_agent_extras_mig_and_sentinels(prometheus) -> None:
    source = _source_at(prometheus[0], EXTRAS)
    gpu = source.poll().records()[0]
    assert gpu["mem_used_bytes"] == 31000 * MIB
    assert gpu["power_w"] is None
    assert gpu["throttle_reasons"] == ["sw_power_cap"]
    assert gpu["state"] == "lost"
    assert gpu["processes"] == [{"pid": 31, "name": "python", "used_mem_bytes": 2 * MIB}]
    assert (gpu["serial"], gpu["architecture"], gpu["mig_mode"]) == ("1650", "ampere", True)
    assert [(w["pod"], w["mig_instance_id"], w["mem_used_bytes"]) for w in gpu["workloads"]] == [
        ("train", 1, 30000 * MIB), (None, 2, 1000 * MIB),
    ]
    source.evaluation_time = EXTRAS_LATER  # its XID 94 counted once more
    assert [(e.code) for e in source.poll().xid_events] == [94]
    source.close()


def test_credentials_come_from_files_or_environment(tmp_path: Path, monkeypatch) -> None:
    from tests.agent_helpers import self_signed_certificate

    token = tmp_path / "token"
    token.write_text("s3cr3t\n")
    # Prometheus' own web config has no bearer tokens: what the source sends is its spec's header.
    spec = PrometheusSpec.parse(f"prometheus:https://prom.example:9090?bearer_token_file={token}", environ={})
    assert spec.http.headers()["Authorization"] == "Bearer s3cr3t" and "s3cr3t" not in repr(spec)
    with warnings.catch_warnings():  # bcrypt for Prometheus' web config: crypt is deprecated, but here until 3.13
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    cert, key = self_signed_certificate(tmp_path)
    web = tmp_path / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"basic_auth_users:\n  ops: {json.dumps(crypt.crypt('pw', crypt.mksalt(crypt.METHOD_BLOWFISH)))}\n"
    )
    password = tmp_path / "password"
    password.write_text("pw")
    with backfilled_prometheus(tmp_path, at(_captured_series(), _live()), web_config=web, scheme="https") as base:
        monkeypatch.setenv("GPUOPS_PROMETHEUS_USERNAME", "ops")
        monkeypatch.setenv("GPUOPS_PROMETHEUS_PASSWORD_FILE", str(password))
        monkeypatch.setenv("GPUOPS_PROMETHEUS_CA_FILE", str(cert))
        with open_source(f"prometheus:{base}") as source:
            assert "pw" not in repr(source.spec)
            assert len(source.poll()) == 16
        password.write_text("guess")
        with pytest.raises(SourceError, match="HTTP 401"):
            open_source(f"prometheus:{base}")
        monkeypatch.delenv("GPUOPS_PROMETHEUS_CA_FILE")
        with pytest.raises(SourceError, match="(?i)certificate"):
            open_source(f"prometheus:{base}")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("prometheus:", "expected prometheus:http"),
        ("prometheus:ftp://host", "expected prometheus:http"),
        ("prometheus:http://h:9090?password=x", "put no password"),
        ("prometheus:http://h:9090?bearer_token=x", "put no bearer_token"),
        ("prometheus:http://h:9090?colour=red", "unknown prometheus option 'colour'"),
        ("prometheus:http://h:9090?selector=dcgm", "bad prometheus selector"),
        ("prometheus:http://h:9090?selector=job%3D%22a%22%7D", "bad prometheus selector"),
        ("prometheus:http://h:9090?timeout=soon", "bad prometheus timeout"),
        ("prometheus:http://h:9090?ca_file=/nonexistent.pem", "does not exist"),
        ("prometheus:http://h:9090?password_file=/nonexistent", "cannot read credentials"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        PrometheusSpec.parse(spec, environ={})


def test_unreachable_or_refusing_prometheus_fails_clearly(prometheus) -> None:
    base = prometheus[0]
    with pytest.raises(SourceError, match="Prometheus at http://127.0.0.1:1: connection refused"):
        open_source("prometheus:http://127.0.0.1:1")
    with pytest.raises(SourceError, match="HTTP 400 Bad Request: .*parse error"):
        open_source(f"prometheus:{base}?selector=job%3D%22a%22%2C%20bad")
    with pytest.raises(SourceError, match="HTTP 404"):
        open_source(f"prometheus:{base}/not-prometheus")


def test_inventory_is_asked_again_only_when_stale_or_a_new_gpu_shows(prometheus) -> None:
    base, log = prometheus
    source = _source_at(base, BASE)
    assert len(source.poll()) == 16
    before = len(logged_queries(log))
    source.evaluation_time = BASE + 10
    assert len(source.poll()) == 16
    assert not any(q.startswith("group by") for q in logged_queries(log)[before:])
    source.evaluation_time = BASE + 25  # a GPU came 20 s after the inventory: asked again at once
    sample = source.poll()
    source.close()
    gpus = _by_uuid(sample)
    assert len(gpus) == 17 and gpus["GPU-new"]["temp_c"] == 33.0 and gpus["GPU-new"]["node"] == "gpu-node-3"

"""Odd exporter values (issue 18, item 7), read from the real captures in tests/fixtures/dcgm-exporter
(see its PROVENANCE.md) served on 127.0.0.1, each altered in one documented way where the oddity
is not in a capture: lowercase `hostname`, impossible readings, DCGM's `<<<NULL>>>` profile,
GDDR boards' `MEMORY_TEMP 0`, and GPUs listed out of order."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from gpuops.core.health import Health, HealthModel
from gpuops.core.sources.prometheus import PrometheusSource, PrometheusSpec
from gpuops.core.sources.scrape import ScrapeSource
from gpuops.core.telemetry import FleetSample
from tests.backfilled_prometheus import at, backfilled_prometheus, series_from_api_answers
from tests.local_http import Answer, LocalServer, static_routes

CAPTURES = Path(__file__).parent / "fixtures" / "dcgm-exporter"
L4 = "k8s-ai-conformance_kops_nvidia-l4.prom"  # GDDR6: MEMORY_TEMP 0 in the capture
T4 = "k8s-ai-conformance_rafay_tesla-t4.prom"  # GDDR6: MEMORY_TEMP 0 in the capture
H100 = "aicr_h100x8_gpu-node-1_pods_sampled.prom"  # 8 GPUs of one node
A30_MIG = "dcgm-exporter-issue-317_a30-mig.prom"
DATADOG = "datadog-integrations-core_dcgm_metrics.txt"  # has DCGM_FI_DEV_POWER_MGMT_LIMIT 70 for a T4


def capture(name: str) -> str:
    return (CAPTURES / name).read_text()


def with_value(text: str, metric: str, value: str) -> str:
    """The capture with every sample of `metric` set to `value`."""
    changed, count = re.subn(rf"^({metric}\{{[^}}]*\}}) \S+$", rf"\g<1> {value}", text, flags=re.M)
    assert count, f"{metric} is not in the capture"
    return changed


def poll(*bodies: str) -> FleetSample:
    answers = {f"/{i}/metrics": Answer(body.encode()) for i, body in enumerate(bodies)}
    server = LocalServer(static_routes(answers))
    source = ScrapeSource([f"{server.base}/{i}/metrics" for i in range(len(bodies))])
    try:
        return source.poll()
    finally:
        source.close()
        server.stop()


def test_lowercase_hostname_label_names_the_node() -> None:
    sample = poll(capture(T4).replace('Hostname="', 'hostname="'))
    assert [gpu.node for gpu in sample.gpus] == ["ip-10-200-3-41"]  # not the target's 127.0.0.1


def test_memory_temp_0_of_gddr_boards_is_null_without_an_error() -> None:
    sample = poll(capture(L4), capture(T4))
    records = sample.records()
    assert {r["name"] for r in records} == {"NVIDIA L4", "Tesla T4"}
    assert [r["mem_temp_c"] for r in records] == [None, None]
    assert all(r["temp_c"] is not None and r["state"] == "ok" for r in records)
    assert sample.errors == ()


def test_a_real_hbm_temperature_is_kept() -> None:
    text = capture(H100)
    assert "DCGM_FI_DEV_MEMORY_TEMP" not in text
    first_temp = next(line for line in text.splitlines() if line.startswith("DCGM_FI_DEV_GPU_TEMP"))
    hbm = first_temp.replace("DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_MEMORY_TEMP").rsplit(" ", 1)[0] + " 41\n"
    [gpu] = [r for r in poll(text + hbm).records() if r["index"] == 0]
    assert gpu["mem_temp_c"] == 41.0


@pytest.mark.parametrize(
    ("name", "metric", "value", "key", "words"),
    [
        (L4, "DCGM_FI_DEV_GPU_TEMP", "4294967295", "temp_c", "temperature 4.29497e+09 °C outside -40…150 °C"),
        (L4, "DCGM_FI_DEV_GPU_TEMP", "-41", "temp_c", "temperature -41 °C outside -40…150 °C"),
        (T4, "DCGM_FI_DEV_GPU_UTIL", "101", "util_gpu_pct", "GPU utilization 101 % outside 0…100 %"),
        (T4, "DCGM_FI_DEV_GPU_UTIL", "-1", "util_gpu_pct", "GPU utilization -1 % outside 0…100 %"),
        (L4, "DCGM_FI_DEV_MEM_COPY_UTIL", "250", "util_mem_pct", "memory utilization 250 % outside 0…100 %"),
    ],
)
def test_impossible_readings_become_null_with_an_error_and_unknown_state(name, metric, value, key, words) -> None:
    sample = poll(with_value(capture(name), metric, value))
    [gpu] = sample.records()
    assert gpu[key] is None
    assert gpu["state"] == "unknown"
    [line] = sample.errors
    assert line.startswith(f"node {gpu['node']} GPU 0 ({gpu['uuid']}): ") and words in line and line.endswith("shown as null")
    health = HealthModel().assess(sample)
    assert health.of(0) != Health.OK and "unknown" in health.reasons[0]  # never graded healthy


def test_the_edges_of_the_ranges_are_readings() -> None:
    text = with_value(with_value(capture(T4), "DCGM_FI_DEV_GPU_TEMP", "150"), "DCGM_FI_DEV_GPU_UTIL", "100")
    sample = poll(text)
    [gpu] = sample.records()
    assert (gpu["temp_c"], gpu["util_gpu_pct"], gpu["state"], sample.errors) == (150.0, 100.0, "ok", ())


def test_power_over_four_times_the_limit_is_null() -> None:
    text = capture(DATADOG)
    limit_line = next(line for line in text.splitlines() if line.startswith("DCGM_FI_DEV_POWER_MGMT_LIMIT{"))
    assert limit_line.endswith(" 70.000000")
    labels = limit_line[len("DCGM_FI_DEV_POWER_MGMT_LIMIT"):].rsplit(" ", 1)[0]
    uuid = re.search(r'UUID="([^"]+)"', labels).group(1)  # type: ignore[union-attr]  # the line names its GPU
    for power, kept in (("280.5", False), ("280", True)):
        sample = poll(text + f"DCGM_FI_DEV_POWER_USAGE{labels} {power}\n")
        gpu = next(r for r in sample.records() if r["uuid"] == uuid)
        assert gpu["power_limit_w"] == 70.0
        if kept:
            assert gpu["power_w"] == 280.0 and gpu["state"] == "ok"
            assert not any(uuid in line for line in sample.errors)
        else:
            assert gpu["power_w"] is None and gpu["state"] == "unknown"
            assert [line for line in sample.errors if uuid in line] == [
                f"node 551bdf382151 GPU 0 ({uuid}): power 280.5 W over 4× the limit; shown as null"
            ]


def test_without_a_reported_limit_power_over_6_kw_is_null() -> None:
    text = capture(L4)
    assert "POWER_MGMT_LIMIT" not in text  # dcgm-exporter's default counters carry no limit
    for power, expected in (("4294967295", None), ("6000", 6000.0)):
        sample = poll(with_value(text, "DCGM_FI_DEV_POWER_USAGE", power))
        [gpu] = sample.records()
        assert gpu["power_w"] == expected
        assert [line.split(": ", 1)[1] for line in sample.errors] == (
            ["power 4.29497e+09 W over 6000 W (no limit reported); shown as null"] if expected is None else []
        )


@pytest.mark.parametrize("profile", ["<<<NULL>>>", ""])
def test_null_and_empty_mig_profiles_are_null(profile) -> None:
    sample = poll(capture(A30_MIG).replace('GPU_I_PROFILE="1g.6gb"', f'GPU_I_PROFILE="{profile}"'))
    workloads = [w for gpu in sample.records() for w in gpu["workloads"]]
    assert len(workloads) == 6  # the capture's six MIG instances on two A30s, kept
    assert all(w["mig_instance_id"] is not None and w["mig_profile"] is None for w in workloads)


def test_gpus_come_out_by_node_then_index_whatever_the_order_in() -> None:
    h100 = capture(H100).splitlines(keepends=True)
    shuffled = "".join(reversed(h100))  # a sample line per GPU and metric; gpu="7" now comes first
    sample = poll(capture(T4), shuffled, capture(L4))  # targets not in node order either
    assert [(gpu.node, gpu.index) for gpu in sample.gpus] == [
        *[("gpu-node-1", i) for i in range(8)], ("i-030791dc5a37cd257", 0), ("ip-10-200-3-41", 0),
    ]


def test_through_prometheus_lowercase_hostname_and_order(tmp_path: Path) -> None:
    answers = Path(__file__).parent / "fixtures" / "prometheus-api"
    series = series_from_api_answers(json.loads(p.read_text()) for p in sorted(answers.glob("*.json")))
    renamed = []
    for labels, value in reversed(series):  # Prometheus promises no order; the last GPU comes first
        labels = dict(labels)
        labels["hostname"] = labels.pop("Hostname")
        renamed.append((labels, value))
    with backfilled_prometheus(tmp_path, at(renamed, time.time() - 5)) as base:
        source = PrometheusSource(PrometheusSpec.parse(f"prometheus:{base}"))
        try:
            sample = source.poll()
        finally:
            source.close()
    assert len(sample) == 16
    nodes = ("gpu-node-1", "gpu-node-2")
    assert [(gpu.node, gpu.index) for gpu in sample.gpus] == [(node, i) for node in nodes for i in range(8)]

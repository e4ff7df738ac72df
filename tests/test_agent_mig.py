"""`gpuops agent` on MIG-enabled GPUs: framebuffer and activity per MIG device under GPU_I_ID /
GPU_I_PROFILE, as dcgm-exporter serves them, and `scrape:` reading that back. NVML is the fake
driver's "mig" fleet through the real pynvml."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpuops.core import dcgm_schema as dcgm
from gpuops.core.agent.collector import snapshot_exposition
from gpuops.core.agent.poller import AgentSnapshot
from gpuops.core.sources.nvml import NvmlSource
from gpuops.core.sources.scrape import ScrapeSource
from gpuops.core.telemetry import FleetSample
from tests.fake_nvml import FakeNvml
from tests.local_http import Answer, LocalServer, static_routes


@pytest.fixture
def mig_sample(fake_nvml: FakeNvml) -> Iterator[FleetSample]:
    fake_nvml.reset("mig")
    with NvmlSource(node="node-m") as source:
        yield source.poll()


def _series(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples if s.name == name]


def test_mig_framebuffer_and_activity_are_served_per_mig_device(mig_sample: FleetSample) -> None:
    text = snapshot_exposition(AgentSnapshot(sample=mig_sample)).decode()
    used = _series(text, dcgm.FB_USED)
    sm_active = _series(text, dcgm.PROF_SM_ACTIVE)
    for i, gpu in enumerate(mig_sample.gpus):
        mine = [(labels, value) for labels, value in used if labels[dcgm.LABEL_UUID] == gpu.uuid]
        devices = mig_sample.mig_devices[i]
        if not devices:  # a GPU without MIG: one GPU-wide series
            assert [dcgm.LABEL_MIG_ID in labels for labels, _ in mine] in ([False], [])
            continue
        assert sorted((labels[dcgm.LABEL_MIG_ID], labels[dcgm.LABEL_MIG_PROFILE], value) for labels, value in mine) == sorted(
            (str(d.gpu_instance_id), d.profile, d.mem_used_bytes / dcgm.MIB) for d in devices
        )
        activity = {labels[dcgm.LABEL_MIG_ID]: value for labels, value in sm_active if labels[dcgm.LABEL_UUID] == gpu.uuid}
        assert activity == pytest.approx({str(d.gpu_instance_id): d.sm_active_pct / 100 for d in devices})


def test_scrape_reads_the_agents_mig_devices_back(mig_sample: FleetSample) -> None:
    answers = {"/metrics": Answer(snapshot_exposition(AgentSnapshot(sample=mig_sample)))}
    server = LocalServer(static_routes(answers))
    try:
        with ScrapeSource([f"{server.base}/metrics"]) as source:
            records = {r["uuid"]: r for r in source.poll().records()}
    finally:
        server.stop()
    for i, gpu in enumerate(mig_sample.gpus):
        devices = mig_sample.mig_devices[i]
        if not devices:
            continue
        record = records[gpu.uuid]
        instances = [(w["mig_instance_id"], w["mig_profile"], w["mem_used_bytes"]) for w in record["workloads"]]
        assert instances == sorted((d.gpu_instance_id, d.profile, d.mem_used_bytes) for d in devices)
        back = [(m["gpu_instance_id"], m["profile"], m["mem_used_bytes"]) for m in record["mig_devices"]]
        assert back == sorted((d.gpu_instance_id, d.profile, d.mem_used_bytes) for d in devices)
        assert record["mem_used_bytes"] == sum(d.mem_used_bytes or 0 for d in devices)
        assert record["mem_total_bytes"] == mig_sample.record(i)["mem_total_bytes"]  # the GPU's, not the slices' sum
        assert record["sm_active_pct"] == pytest.approx(sum(d.sm_active_pct or 0 for d in devices) / len(devices))

"""`scrape:` fills `mig_devices` from an exporter's GPU_I_ID / GPU_I_PROFILE series (the real
dcgm-exporter capture of issue 317: two A30s split into 1g.6gb instances)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gpuops.core import dcgm_schema as dcgm
from gpuops.core.sources.scrape import ScrapeSource
from tests.local_http import Answer, LocalServer, static_routes

CAPTURE = Path(__file__).parent / "fixtures" / "dcgm-exporter" / "dcgm-exporter-issue-317_a30-mig.prom"


def test_mig_devices_are_the_instances_the_exporter_names() -> None:
    instances: dict[str, set[tuple[int, str]]] = {}
    for family in text_string_to_metric_families(CAPTURE.read_text()):
        for s in family.samples:
            if dcgm.LABEL_MIG_ID in s.labels:
                instances.setdefault(s.labels[dcgm.LABEL_UUID], set()).add(
                    (int(s.labels[dcgm.LABEL_MIG_ID]), s.labels[dcgm.LABEL_MIG_PROFILE])
                )
    server = LocalServer(static_routes({"/metrics": Answer(CAPTURE.read_bytes())}))
    try:
        with ScrapeSource([f"{server.base}/metrics"]) as source:
            records = {r["uuid"]: r for r in source.poll().records()}
    finally:
        server.stop()
    assert set(records) == set(instances)
    for uuid, named in instances.items():
        devices = records[uuid]["mig_devices"]
        assert [(d["gpu_instance_id"], d["profile"]) for d in devices] == sorted(named)
        # the capture has no framebuffer series: unknown, not 0; no MIG UUID in exporter labels
        assert all(d["uuid"] is None and d["mem_used_bytes"] is None for d in devices)
        assert [(w["mig_instance_id"], w["mig_profile"]) for w in records[uuid]["workloads"]] == sorted(named)

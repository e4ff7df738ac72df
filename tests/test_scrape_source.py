"""`scrape:` source: real dcgm-exporter captures served from 127.0.0.1, failures per target,
MIG and pods, units, sentinels, XIDs, and a round trip through `gpuops agent`."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gpuops.core.agent.server import ListenAddress
from gpuops.core.agent.service import Agent
from gpuops.core.sources.base import SourceError
from gpuops.core.sources.factory import open_source
from gpuops.core.sources.scrape import ScrapeSource, parse_targets
from gpuops.core.telemetry import SAMPLE_METRICS, GpuState, ProcessInfo, Workload
from tests.agent_helpers import PlaybackSource, self_signed_certificate
from tests.local_http import Answer, LocalServer, static_routes
from tests.samples import make_sample

CAPTURES = Path(__file__).parent / "fixtures" / "dcgm-exporter"
CAPTURE_FILES = sorted(p.name for p in CAPTURES.iterdir() if p.suffix in (".prom", ".txt"))
MIB = 2**20
LABELS = 'gpu="{i}",UUID="GPU-{u}",device="nvidia{i}",modelName="NVIDIA H100 80GB HBM3",Hostname="{node}"'


@pytest.fixture
def server():
    answers: dict[str, Answer] = {}
    local = LocalServer(static_routes(answers))
    local.answers = answers  # type: ignore[attr-defined]  # the tests edit the routes' answers through it
    yield local
    local.stop()


@pytest.fixture
def captures(server):
    for name in CAPTURE_FILES:
        server.answers[f"/{name}/metrics"] = Answer((CAPTURES / name).read_bytes())
    return {name: f"{server.base}/{name}/metrics" for name in CAPTURE_FILES}


def _open(urls: list[str], **kwargs) -> ScrapeSource:
    return ScrapeSource(urls, **kwargs)


def _by_uuid(sample) -> dict[str, dict]:
    return {record["uuid"]: record for record in sample.records()}


def test_every_capture_at_once(captures) -> None:
    source = _open(list(captures.values()))
    try:
        sample = source.poll()
    finally:
        source.close()
    gpus = _by_uuid(sample)
    nodes = {record["node"] for record in gpus.values()}
    assert nodes == {
        "gpu-node-1", "i-030791dc5a37cd257", "ip-10-200-3-41", "424773df46e0", "551bdf382151",
        "yg-data-k8s-gpu-a30-node-test-test0003.mt", "ip-11111",
    }
    assert len(gpus) == 8 + 1 + 1 + 3 + 2  # aicr, kops, rafay, datadog (GPU-abc: a profiling field only), MIG
    assert all(record["state"] == "ok" for record in gpus.values())
    # The malformed capture is one clear error naming the target and the line; nothing else is lost.
    viettel = captures["k8s-ai-conformance_viettel_nvidia-l40s.prom"]
    assert len(sample.errors) == 1
    assert viettel in sample.errors[0] and "line 3" in sample.errors[0] and "not Prometheus text" in sample.errors[0]


def test_aicr_h100_node_with_a_pod(captures) -> None:
    source = _open([captures["aicr_h100x8_gpu-node-1_pods_sampled.prom"]])
    sample = source.poll()
    source.close()
    gpus = _by_uuid(sample)
    assert len(gpus) == 8 and sample.errors == ()
    gpu0 = gpus["GPU-c4529c8d-69c4-b61d-e0bc-7b2460096005"]
    assert (gpu0["index"], gpu0["node"], gpu0["name"]) == (0, "gpu-node-1", "NVIDIA H100 80GB HBM3")
    assert (gpu0["pci_bus_id"], gpu0["driver_version"]) == ("00000000:53:00.0", "580.105.08")
    assert gpu0["temp_c"] == 30.0 and gpu0["power_w"] == 113.611 and gpu0["util_gpu_pct"] == 0.0
    assert gpu0["workloads"] == [{
        "namespace": "dynamo-workload", "pod": "vllm-agg-0-vllmdecodeworker-s65j5", "container": "main",
        "mig_instance_id": None, "mig_profile": None, "mem_used_bytes": None,
    }]
    assert gpu0["mem_used_bytes"] is None  # not in this capture: unknown, not 0
    assert gpus["GPU-bc5610b9-79c8-fedd-8899-07539c7f868a"]["workloads"] == []
    assert [r["index"] for r in sample.records()] == list(range(8))


def test_units_are_converted(captures) -> None:
    source = _open([captures["k8s-ai-conformance_kops_nvidia-l4.prom"], captures["k8s-ai-conformance_rafay_tesla-t4.prom"]])
    gpus = _by_uuid(source.poll())
    source.close()
    l4 = gpus["GPU-c2f76b33-7953-256e-8f33-1343419b1a1c"]
    assert l4["energy_j"] == pytest.approx(4742.776)  # 4742776 mJ
    assert l4["mem_used_bytes"] == 0
    assert l4["mem_total_bytes"] == (0 + 22563 + 470) * MIB  # used + free + reserved
    assert (l4["sm_clock_mhz"], l4["mem_clock_mhz"], l4["pcie_replay_count"]) == (210, 405, 0)
    t4 = gpus["GPU-d7cbb0cd-d4bd-c2f7-dfaf-221df5e958ea"]
    assert t4["mem_total_bytes"] == (14912 + 447) * MIB
    assert t4["energy_j"] == pytest.approx(48287.135)
    assert t4["pcie_tx_bytes_s"] == 29285.0


def test_datadog_capture_inventory_labels_and_unkeyed_series(captures) -> None:
    source = _open([captures["datadog-integrations-core_dcgm_metrics.txt"]])
    sample = source.poll()
    source.close()
    gpus = _by_uuid(sample)
    # Series without a UUID label cannot be placed; GPU-abc serves only DCGM_FI_PROF_DRAM_ACTIVE and is listed.
    assert set(gpus) == {
        "GPU-20c56d28-0da5-6d26-a36a-e7af1ce2586e", "GPU-9ef1b6d0-3643-5dd7-b823-c0ec20dcf2d5", "GPU-abc",
    }
    t4 = gpus["GPU-9ef1b6d0-3643-5dd7-b823-c0ec20dcf2d5"]
    assert (t4["serial"], t4["vbios_version"], t4["cuda_version"], t4["nvml_version"]) == (
        "1565220008176", "90.04.96.00.02", "12.1", "11.470.182.03",
    )
    assert t4["power_limit_w"] == 70.0 and t4["pstate"] == 8 and t4["slowdown_temp_c"] == 93.0
    assert t4["mem_total_bytes"] == 15109 * MIB  # DCGM_FI_DEV_FB_TOTAL wins over used + free
    assert t4["throttle_reasons"] == ["gpu_idle"]
    assert gpus["GPU-20c56d28-0da5-6d26-a36a-e7af1ce2586e"]["energy_j"] == pytest.approx(128996.013)


def test_mig_instances_stay_under_their_gpu(captures) -> None:
    source = _open([captures["dcgm-exporter-issue-317_a30-mig.prom"]])
    sample = source.poll()
    source.close()
    gpus = _by_uuid(sample)
    assert len(sample) == 2  # two A30s, not six instance rows
    a30 = gpus["GPU-265c9814-6156-355b-e589-ff2064894f16"]
    assert a30["sm_clock_mhz"] == 1440 and a30["mem_temp_c"] == 35.0
    assert a30["mig_mode"] is True
    assert [(w["mig_instance_id"], w["mig_profile"], w["pod"]) for w in a30["workloads"]] == [
        (3, "1g.6gb", None), (4, "1g.6gb", None), (5, "1g.6gb", None), (6, "1g.6gb", None),
    ]
    assert [w["mig_instance_id"] for w in gpus["GPU-2d20791a-b4a6-ba59-97f1-e95b99fe5b49"]["workloads"]] == [3, 4]


def _line(name: str, value: str, i: int = 0, node: str = "n1", uuid: str = "0000", extra: str = "") -> str:
    return f"{name}{{{LABELS.format(i=i, u=uuid, node=node)}{extra}}} {value}\n"


def test_mig_memory_adds_up_and_pods_on_instances(server) -> None:
    body = "".join([
        _line("DCGM_FI_DEV_FB_USED", "1000", extra=',GPU_I_ID="1",GPU_I_PROFILE="3g.40gb",pod="train",namespace="ml"'),
        _line("DCGM_FI_DEV_FB_USED", "250", extra=',GPU_I_ID="2",GPU_I_PROFILE="1g.10gb"'),
        _line("DCGM_FI_DEV_FB_FREE", "39000", extra=',GPU_I_ID="1",GPU_I_PROFILE="3g.40gb"'),
        _line("DCGM_FI_DEV_FB_FREE", "9750", extra=',GPU_I_ID="2",GPU_I_PROFILE="1g.10gb"'),
        _line("DCGM_FI_DEV_GPU_UTIL", "80", extra=',GPU_I_ID="1",GPU_I_PROFILE="3g.40gb"'),
        _line("DCGM_FI_DEV_GPU_UTIL", "20", extra=',GPU_I_ID="2",GPU_I_PROFILE="1g.10gb"'),
        _line("DCGM_FI_DEV_GPU_TEMP", "51"),  # a device-level series
    ]).encode()
    server.answers["/metrics"] = Answer(body)
    source = _open([server.base + "/metrics"])
    sample = source.poll()
    source.close()
    gpu = sample.records()[0]
    assert len(sample) == 1
    assert gpu["mem_used_bytes"] == 1250 * MIB
    assert gpu["mem_total_bytes"] == (1250 + 48750) * MIB
    assert gpu["util_gpu_pct"] == 50.0  # mean of the instances
    assert gpu["temp_c"] == 51.0
    assert gpu["workloads"] == [
        {"namespace": "ml", "pod": "train", "container": None, "mig_instance_id": 1, "mig_profile": "3g.40gb",
         "mem_used_bytes": 1000 * MIB},
        {"namespace": None, "pod": None, "container": None, "mig_instance_id": 2, "mig_profile": "1g.10gb",
         "mem_used_bytes": 250 * MIB},
    ]


def test_dcgm_blank_sentinels_become_none(server) -> None:
    body = "".join([
        _line("DCGM_FI_DEV_POWER_USAGE", "9223372036854775794"),
        _line("DCGM_FI_DEV_MEMORY_TEMP", "140737488355330"),
        _line("DCGM_FI_DEV_FAN_SPEED", "2147483632"),
        _line("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "9.223372036854776e+18"),
        _line("DCGM_FI_DEV_GPU_TEMP", "44"),
    ]).encode()
    server.answers["/metrics"] = Answer(body)
    source = _open([server.base + "/metrics"])
    gpu = source.poll().records()[0]
    source.close()
    assert (gpu["power_w"], gpu["mem_temp_c"], gpu["fan_pct"], gpu["energy_j"]) == (None, None, None, None)
    assert gpu["temp_c"] == 44.0


def test_a_failing_target_marks_only_its_node_stale(server) -> None:
    server.answers["/a"] = Answer(_line("DCGM_FI_DEV_GPU_TEMP", "40", node="alpha", uuid="aaaa").encode())
    server.answers["/b"] = Answer(_line("DCGM_FI_DEV_GPU_TEMP", "50", node="beta", uuid="bbbb").encode())
    source = _open([server.base + "/a", server.base + "/b"], timeout_s=0.5)
    try:
        first = source.poll()
        assert first.stale_nodes == frozenset() and first.errors == ()
        for broken, reason in (
            (Answer(b"oops", status=500), "HTTP 500"),
            (Answer(b"<html>maintenance</html>\n"), "not Prometheus text"),
            (Answer(_line("DCGM_FI_DEV_GPU_TEMP", "50", node="beta", uuid="bbbb").encode(), delay_s=2.0), "timed out"),
            (Answer(b"# HELP go_goroutines x\ngo_goroutines 12\n"), "no GPU series"),
            (Answer(b"\xff\xfe\x00garbage"), "not UTF-8"),
        ):
            server.answers["/b"] = broken
            sample = source.poll()
            gpus = _by_uuid(sample)
            assert sample.stale_nodes == frozenset({"beta"}), reason
            assert len(sample.errors) == 1 and "node beta" in sample.errors[0] and reason in sample.errors[0]
            beta = gpus["GPU-bbbb"]
            assert beta["state"] == "unknown" and beta["node"] == "beta" and beta["temp_c"] is None
            assert gpus["GPU-aaaa"]["state"] == "ok" and gpus["GPU-aaaa"]["temp_c"] == 40.0
        server.answers["/b"] = Answer(_line("DCGM_FI_DEV_GPU_TEMP", "52", node="beta", uuid="bbbb").encode())
        recovered = None
        for _ in range(20):  # the slow answer may still hold the target for a moment
            recovered = source.poll()
            if not recovered.errors:
                break
        assert recovered is not None and recovered.errors == () and recovered.stale_nodes == frozenset()
        assert _by_uuid(recovered)["GPU-bbbb"]["temp_c"] == 52.0
        assert [g.uuid for g in recovered.gpus] == ["GPU-aaaa", "GPU-bbbb"]  # order is stable
    finally:
        source.close()


def test_never_reached_target_is_named_in_stale_nodes(server) -> None:
    server.answers["/a"] = Answer(_line("DCGM_FI_DEV_GPU_TEMP", "40").encode())
    source = _open([server.base + "/a", "http://127.0.0.1:1/metrics"])
    sample = source.poll()
    source.close()
    assert sample.stale_nodes == frozenset({"127.0.0.1:1"})
    assert sample.errors == ("node 127.0.0.1:1 (http://127.0.0.1:1/metrics): connection refused",)
    assert len(sample) == 1


def test_a_gpu_that_disappears_from_a_working_target_is_lost(server) -> None:
    two = _line("DCGM_FI_DEV_GPU_TEMP", "40", uuid="aaaa") + _line("DCGM_FI_DEV_GPU_TEMP", "41", i=1, uuid="bbbb")
    server.answers["/a"] = Answer(two.encode())
    source = _open([server.base + "/a"])
    source.poll()
    server.answers["/a"] = Answer(_line("DCGM_FI_DEV_GPU_TEMP", "40", uuid="aaaa").encode())
    sample = source.poll()
    source.close()
    assert [sample.gpu_state(i) for i in range(2)] == [GpuState.OK, GpuState.LOST]
    assert sample.errors == ("node n1: 1 GPU(s) no longer reported (GPU-bbbb)",)


def test_xids_from_agent_counters_keep_repeats_and_skip_history(server) -> None:
    def body(count: int, last: int) -> bytes:
        return (
            _line("DCGM_FI_DEV_XID_ERRORS", str(last))
            + _line("gpuops_xid_errors_total", str(count), extra=',xid="79"')
        ).encode()

    server.answers["/a"] = Answer(body(5, 79))
    source = _open([server.base + "/a"])
    assert source.poll().xid_events == ()  # five XIDs before we looked: history
    server.answers["/a"] = Answer(body(7, 79))
    events = source.poll().xid_events
    assert [(e.uuid, e.code) for e in events] == [("GPU-0000", 79)] * 2  # a repeat of 79 is not lost
    server.answers["/a"] = Answer(body(1, 79))  # the agent restarted
    assert len(source.poll().xid_events) == 1
    source.close()


def test_xids_from_plain_dcgm_exporter_are_changes_of_the_last_code(server) -> None:
    server.answers["/a"] = Answer(_line("DCGM_FI_DEV_XID_ERRORS", "0").encode())
    source = _open([server.base + "/a"])
    assert source.poll().xid_events == ()
    server.answers["/a"] = Answer(_line("DCGM_FI_DEV_XID_ERRORS", "48").encode())
    assert [e.code for e in source.poll().xid_events] == [48]
    assert source.poll().xid_events == ()
    source.close()


def test_round_trip_through_the_agent_keeps_every_value() -> None:
    processes = {1: (ProcessInfo(pid=99, name="trainer", used_mem_bytes=5 * 2**30),)}
    sample = make_sample(
        4, states={3: GpuState.LOST}, processes=processes,
        values={"fan_pct": {0: 40.0}, "pcie_link_gen": {0: 5.0}, "throttle_reasons_mask": {2: 0x60}},
    )
    agent = Agent(PlaybackSource([sample]), ListenAddress("127.0.0.1", 0), interval_s=0.05)
    agent.start()
    source = open_source(f"scrape:{agent.url}")
    try:
        read = source.poll()
    finally:
        source.close()
        agent.stop()
    assert read.errors == ()
    assert [g.uuid for g in read.gpus] == [g.uuid for g in sample.gpus]
    for i, gpu in enumerate(sample.gpus):
        assert read.gpus[i].node == gpu.node and read.gpus[i].index == gpu.index
        assert read.gpus[i].serial == gpu.serial and read.gpus[i].slowdown_temp_c == gpu.slowdown_temp_c
        assert read.gpu_state(i) == sample.gpu_state(i)
        for name in SAMPLE_METRICS:
            want, got = float(sample.metrics[name][i]), float(read.metrics[name][i])
            if name in ("mem_total_bytes", "power_limit_w") and math.isnan(want):
                continue
            assert (math.isnan(want) and math.isnan(got)) or want == pytest.approx(got), (name, i, want, got)
    assert read.processes[1] == processes[1]
    assert read.record(2)["throttle_reasons"] == ["sw_thermal_slowdown", "hw_thermal_slowdown"]


def test_target_specs(tmp_path: Path) -> None:
    assert parse_targets("node1:9400,https://node2/custom") == ["http://node1:9400/metrics", "https://node2/custom"]
    listing = tmp_path / "targets.txt"
    listing.write_text("# rack 1\nnode1:9400\n\n  node2:9400   # spare\n")
    assert parse_targets(f"@{listing}") == ["http://node1:9400/metrics", "http://node2:9400/metrics"]
    for bad, message in (
        ("", "needs URL"), ("a:1,,b:2", "no empty entry"), ("ftp://x/metrics", "bad scrape target"),
        ("node1:99999999999", "port"), ("n:1,n:1", "listed twice"), (f"@{tmp_path}/missing.txt", "cannot read"),
    ):
        with pytest.raises(SourceError, match=message):
            parse_targets(bad)
    listing.write_text("# nothing yet\n")
    with pytest.raises(SourceError, match="lists no target"):
        parse_targets(f"@{listing}")


def test_factory_and_environment_options(server, monkeypatch) -> None:
    server.answers["/metrics"] = Answer(_line("DCGM_FI_DEV_GPU_TEMP", "40").encode())
    monkeypatch.setenv("GPUOPS_SCRAPE_TIMEOUT_S", "zero")
    with pytest.raises(SourceError, match="GPUOPS_SCRAPE_TIMEOUT_S"):
        open_source(f"scrape:{server.base}")
    monkeypatch.setenv("GPUOPS_SCRAPE_TIMEOUT_S", "1.5")
    monkeypatch.setenv("GPUOPS_SCRAPE_BEARER_TOKEN", "t0ken")
    with open_source(f"scrape:{server.base}") as source:
        assert source.name == f"scrape:{server.base}"
        assert source.poll().records()[0]["temp_c"] == 40.0
        assert "t0ken" not in repr(source._fetcher.options)  # type: ignore[attr-defined]  # a scrape source has a fetcher


def test_workload_model_default_is_empty_for_other_sources() -> None:
    sample = make_sample(2)
    assert sample.workloads == () and sample.record(0)["workloads"] == []
    assert Workload().pod is None


def test_scraping_an_agent_behind_tls_and_basic_auth(tmp_path: Path, monkeypatch) -> None:
    import hashlib

    from gpuops.core.agent.basic_auth import BasicAuth
    from gpuops.core.agent.server import server_tls_context

    cert, key = self_signed_certificate(tmp_path)
    users = tmp_path / "users"
    users.write_text(f"scraper:sha256:{hashlib.sha256(b'pw').hexdigest()}\n")
    password = tmp_path / "password"
    password.write_text("pw\n")
    agent = Agent(
        PlaybackSource([make_sample(2)]), ListenAddress("127.0.0.1", 0), interval_s=0.05,
        tls=server_tls_context(cert, key), basic_auth=BasicAuth.from_file(users),
    )
    agent.start()
    try:
        spec = f"scrape:{agent.url}"
        with open_source(spec) as source:
            assert "TLS certificate not trusted" in source.poll().errors[0]
        monkeypatch.setenv("GPUOPS_SCRAPE_CA_FILE", str(cert))
        with open_source(spec) as source:
            assert "HTTP 401" in source.poll().errors[0]
        monkeypatch.setenv("GPUOPS_SCRAPE_USERNAME", "scraper")
        monkeypatch.setenv("GPUOPS_SCRAPE_PASSWORD_FILE", str(password))
        with open_source(spec) as source:
            sample = source.poll()
            assert sample.errors == () and len(sample) == 2
        monkeypatch.delenv("GPUOPS_SCRAPE_CA_FILE")
        monkeypatch.setenv("GPUOPS_SCRAPE_INSECURE", "1")
        with open_source(spec) as source:
            assert source.poll().errors == ()
    finally:
        agent.stop()

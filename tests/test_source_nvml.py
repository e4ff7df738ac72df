"""The NVML source, through the real pynvml bindings, against the fake NVIDIA driver.

The fake (tests/fake_nvml) is a C library built against NVIDIA's nvml.h; these tests steer it
through its control functions and never replace anything in pynvml.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pynvml
import pytest

from gpuops.core.sources.base import SourceError
from gpuops.core.sources.factory import SIMULATED_NOTICE
from gpuops.core.sources.nvml import LIBRARY_MISSING, NvmlSource
from gpuops.core.telemetry import SAMPLE_METRICS, FleetSample, GpuState
from tests.fake_nvml import (
    DEFAULT_GPU_COUNT,
    ECC_INDEX,
    FOREIGN_PID,
    LOST_INDEX,
    PCIE_INDEX,
    SXM_INDEX,
    FakeNvml,
    subprocess_env,
)

REPO = Path(__file__).resolve().parents[1]
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
NVML_ERROR_UNKNOWN = 999
GIB = 1024**3
# Generous: a loaded 2-core machine must never make these tests flaky.
PATIENCE_S = 20.0


@pytest.fixture
def source(fake_nvml: FakeNvml) -> Iterator[NvmlSource]:
    with NvmlSource(node="node-a") as opened:
        yield opened


def offers_field(field_id: int, index: int = SXM_INDEX) -> bool:
    """Whether this driver answers `field_id` through nvmlDeviceGetFieldValues (asked of the driver)."""
    try:
        values = pynvml.nvmlDeviceGetFieldValues(pynvml.nvmlDeviceGetHandleByIndex(index), [field_id])
    except pynvml.NVMLError_FunctionNotFound:
        return False
    return values[0].nvmlReturn == pynvml.NVML_SUCCESS


def mem_temp_route(fake: FakeNvml, index: int) -> float | None:
    """The HBM temperature the source can read: NVML offers it only as a field value."""
    return fake.value(index, "mem_temp_c") if offers_field(pynvml.NVML_FI_DEV_MEMORY_TEMP, index) else None


def record_of(sample: FleetSample, fake: FakeNvml, index: int) -> dict:
    return sample.records()[sample.index_of(fake.uuid(index))]


def poll_until(source: NvmlSource, condition: Callable[[FleetSample], object], what: str) -> FleetSample:
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        sample = source.poll()
        if condition(sample):
            return sample
        time.sleep(0.05)
    raise AssertionError(f"gave up after {PATIENCE_S:.0f} s waiting for {what}")


# ---------------------------------------------------------------- inventory


def test_inventory_is_keyed_by_uuid_and_read_from_the_driver(fake_nvml: FakeNvml, source: NvmlSource) -> None:
    sample = source.poll()
    assert len(sample) == DEFAULT_GPU_COUNT
    sxm = sample.gpus[SXM_INDEX]
    assert sxm.uuid == fake_nvml.uuid(SXM_INDEX)
    assert (sxm.index, sxm.node, sxm.name) == (SXM_INDEX, "node-a", "NVIDIA H100 80GB HBM3")
    assert sxm.serial == fake_nvml.text(SXM_INDEX, "serial")
    assert sxm.vbios_version == fake_nvml.text(SXM_INDEX, "vbios")
    assert sxm.pci_bus_id == "00000000:18:00.0"
    assert sxm.mem_total_bytes == fake_nvml.value(SXM_INDEX, "mem_total")
    assert sxm.power_limit_w == pytest.approx(700.0)
    assert (sxm.driver_version, sxm.nvml_version, sxm.cuda_version) == ("580.95.05", "13.580.95.05", "13.0")
    assert (sxm.architecture, sxm.mig_mode) == ("Hopper", False)
    assert (sxm.slowdown_temp_c, sxm.shutdown_temp_c, sxm.mem_max_temp_c) == (89, 92, 95)
    pcie = sample.gpus[PCIE_INDEX]
    assert (pcie.name, pcie.architecture) == ("NVIDIA RTX 6000 Ada Generation", "Ada Lovelace")
    assert pcie.mig_mode is None  # MIG not supported on this board
    assert pcie.mem_max_temp_c is None  # GDDR6: no memory temperature threshold


# ---------------------------------------------------------------- metrics


def test_sxm_board_has_no_fan_while_the_pcie_card_reports_its_fan(fake_nvml: FakeNvml, source: NvmlSource) -> None:
    for _ in range(2):  # the second poll answers from the "not supported" memory, same result
        sample = source.poll()
        assert record_of(sample, fake_nvml, SXM_INDEX)["fan_pct"] is None
        assert record_of(sample, fake_nvml, SXM_INDEX)["state"] == "ok"
        assert record_of(sample, fake_nvml, PCIE_INDEX)["fan_pct"] == 41.0


def test_ecc_counts_and_pending_row_remaps(fake_nvml: FakeNvml, source: NvmlSource) -> None:
    record = record_of(source.poll(), fake_nvml, ECC_INDEX)
    assert record["ecc_corrected_volatile"] == 7
    assert record["ecc_uncorrected_volatile"] == 1
    assert record["ecc_corrected_aggregate"] == 1234
    assert record["ecc_uncorrected_aggregate"] == 3
    assert record["remapped_rows_correctable"] == 2
    assert record["remapped_rows_uncorrectable"] == 1
    assert record["remapped_rows_pending"] == 1
    assert record["remapped_rows_failure"] == 0
    assert record["pcie_replay_count"] == 12

    fake_nvml.set_value(ECC_INDEX, "ecc_uncorrected_volatile", 5)
    fake_nvml.set_value(ECC_INDEX, "remapped_rows_failure", 1)
    record = record_of(source.poll(), fake_nvml, ECC_INDEX)
    assert (record["ecc_uncorrected_volatile"], record["remapped_rows_failure"]) == (5, 1)


def test_boards_without_row_remapping_or_memory_sensor_report_none_not_zero(
    fake_nvml: FakeNvml, source: NvmlSource
) -> None:
    record = record_of(source.poll(), fake_nvml, PCIE_INDEX)
    for key in ("remapped_rows_correctable", "remapped_rows_uncorrectable", "remapped_rows_pending",
                "remapped_rows_failure", "mem_temp_c"):
        assert record[key] is None, key
    assert record["ecc_corrected_volatile"] == 0  # supported, and really zero


def test_readings_arrive_in_the_units_their_names_promise(fake_nvml: FakeNvml, source: NvmlSource) -> None:
    fake_nvml.set_value(SXM_INDEX, "power_mw", 523_456)
    fake_nvml.set_value(SXM_INDEX, "temp_c", 67)
    fake_nvml.set_value(SXM_INDEX, "clocks_event_reasons", 0x4 | 0x40)
    record = record_of(source.poll(), fake_nvml, SXM_INDEX)
    assert record["power_w"] == pytest.approx(523.456)
    assert record["power_limit_w"] == pytest.approx(700.0)
    assert record["temp_c"] == 67.0
    assert record["mem_temp_c"] == mem_temp_route(fake_nvml, SXM_INDEX)
    assert (record["util_gpu_pct"], record["util_mem_pct"]) == (87.0, 54.0)
    assert record["mem_used_bytes"] == 42 * GIB
    assert record["mem_total_bytes"] == fake_nvml.value(SXM_INDEX, "mem_total")
    assert (record["sm_clock_mhz"], record["mem_clock_mhz"]) == (1980, 2619)
    assert record["pstate"] == 0
    assert (record["pcie_link_gen"], record["pcie_link_gen_max"]) == (5, 5)
    assert (record["pcie_link_width"], record["pcie_link_width_max"]) == (16, 16)
    assert record["throttle_reasons_mask"] == 0x44
    assert record["throttle_reasons"] == ["sw_power_cap", "hw_thermal_slowdown"]
    pcie = record_of(source.poll(), fake_nvml, PCIE_INDEX)
    assert pcie["pstate"] == 8
    assert (pcie["pcie_link_gen"], pcie["pcie_link_gen_max"]) == (1, 4)  # idle link trained down
    assert pcie["throttle_reasons"] == ["gpu_idle"]


def test_energy_is_cumulative_joules(fake_nvml: FakeNvml, source: NvmlSource) -> None:
    before_mj = fake_nvml.value(SXM_INDEX, "energy_mj")
    first = record_of(source.poll(), fake_nvml, SXM_INDEX)["energy_j"]
    time.sleep(0.1)
    second = record_of(source.poll(), fake_nvml, SXM_INDEX)["energy_j"]
    after_mj = fake_nvml.value(SXM_INDEX, "energy_mj")
    assert before_mj / 1000 <= first < second <= after_mj / 1000


def test_pcie_throughput_comes_from_counter_deltas(fake_nvml: FakeNvml, source: NvmlSource) -> None:
    fake_nvml.set_value(SXM_INDEX, "pcie_tx_bytes_s", 2_000_000_000)
    fake_nvml.set_value(SXM_INDEX, "pcie_rx_bytes_s", 500_000_000)
    source.poll()
    time.sleep(0.05)
    record = record_of(source.poll(), fake_nvml, SXM_INDEX)
    assert record["pcie_tx_bytes_s"] == pytest.approx(2e9, rel=1e-3)
    assert record["pcie_rx_bytes_s"] == pytest.approx(5e8, rel=1e-3)


def test_a_wrapped_pcie_counter_gives_no_rate_rather_than_a_negative_one(
    fake_nvml: FakeNvml, source: NvmlSource
) -> None:
    source.poll()
    fake_nvml.set_value(SXM_INDEX, "pcie_tx_bytes", 0)  # the counter wrapped to zero
    record = record_of(source.poll(), fake_nvml, SXM_INDEX)
    if offers_field(pynvml.NVML_FI_DEV_PCIE_COUNT_TX_BYTES):
        assert record["pcie_tx_bytes_s"] is None
    else:  # nvmlDeviceGetPcieThroughput is a rate of its own: a counter wrap cannot touch it
        assert record["pcie_tx_bytes_s"] == pytest.approx(fake_nvml.value(SXM_INDEX, "pcie_tx_bytes_s"), rel=1e-3)
    assert record["pcie_rx_bytes_s"] > 0


# ---------------------------------------------------------------- processes


@pytest.fixture
def named_test_process() -> Iterator[str]:
    """Give this process a distinctive command name (/proc/<pid>/comm) for the duration of a test."""
    pr_set_name = 15
    libc = ctypes.CDLL(None, use_errno=True)
    original = Path(f"/proc/{os.getpid()}/comm").read_bytes().rstrip(b"\n")
    assert threading.current_thread() is threading.main_thread()  # comm of the process = main thread's
    assert libc.prctl(pr_set_name, b"gpuops-probe", 0, 0, 0) == 0
    yield "gpuops-probe"
    libc.prctl(pr_set_name, original, 0, 0, 0)


def test_processes_are_listed_once_with_names_and_invisible_pids_as_none(
    fake_nvml: FakeNvml, source: NvmlSource, named_test_process: str
) -> None:
    fake_nvml.add_process(PCIE_INDEX, 4_000_001, None)  # memory use not available (as under WDDM)
    sample = source.poll()
    sxm = record_of(sample, fake_nvml, SXM_INDEX)["processes"]
    # This process is in both the compute and the graphics list: it appears once.
    assert sxm == [
        {"pid": os.getpid(), "name": named_test_process, "used_mem_bytes": 2 * GIB},
        {"pid": FOREIGN_PID, "name": None, "used_mem_bytes": 30 * GIB},
    ]
    assert record_of(sample, fake_nvml, PCIE_INDEX)["processes"] == [
        {"pid": 4_000_001, "name": None, "used_mem_bytes": None}
    ]
    assert record_of(sample, fake_nvml, ECC_INDEX)["processes"] == []


# ---------------------------------------------------------------- lost and failing GPUs


def test_a_lost_gpu_is_marked_lost_while_the_others_report(fake_nvml: FakeNvml, source: NvmlSource) -> None:
    sample = source.poll()
    states = [sample.gpu_state(i) for i in range(len(sample))]
    assert states == [GpuState.OK, GpuState.OK, GpuState.LOST, GpuState.OK]
    lost = sample.records()[LOST_INDEX]
    assert all(lost[name] is None for name in SAMPLE_METRICS)
    assert lost["processes"] == []
    for index in (SXM_INDEX, ECC_INDEX, PCIE_INDEX):
        assert sample.records()[index]["temp_c"] is not None


def test_a_gpu_lost_at_open_keeps_the_identity_its_driver_still_answers(fake_nvml: FakeNvml, source: NvmlSource) -> None:
    sample = source.poll()
    lost = sample.gpus[LOST_INDEX]
    assert sample.gpu_state(LOST_INDEX) is GpuState.LOST
    assert (lost.uuid, lost.name, lost.pci_bus_id) == (fake_nvml.uuid(LOST_INDEX), "NVIDIA H100 80GB HBM3", "00000000:38:00.0")
    assert lost.serial == fake_nvml.text(LOST_INDEX, "serial")
    fake_nvml.set_lost(LOST_INDEX, False)
    assert source.poll().gpu_state(LOST_INDEX) is GpuState.OK


def test_a_gpu_lost_at_open_is_identified_when_it_comes_back(fake_nvml: FakeNvml) -> None:
    fake_nvml.set_lost(LOST_INDEX)  # not even its UUID answers
    with NvmlSource(node="node-a") as source:
        placeholder = source.poll().gpus[LOST_INDEX]
        assert placeholder.uuid == f"unidentified-node-a-{LOST_INDEX}"
        fake_nvml.set_lost(LOST_INDEX, False)
        sample = source.poll()
        assert sample.gpus[LOST_INDEX].uuid == fake_nvml.uuid(LOST_INDEX)
        assert sample.gpu_state(LOST_INDEX) is GpuState.OK
        assert sample.records()[LOST_INDEX]["temp_c"] == 41.0


def test_a_gpu_lost_mid_run_keeps_its_identity_and_recovers(fake_nvml: FakeNvml, source: NvmlSource) -> None:
    uuid = fake_nvml.uuid(ECC_INDEX)
    source.poll()
    fake_nvml.set_lost(ECC_INDEX)
    sample = source.poll()
    assert sample.gpu_state(sample.index_of(uuid)) is GpuState.LOST
    assert sample.records()[sample.index_of(uuid)]["ecc_corrected_aggregate"] is None
    assert sample.gpu_state(SXM_INDEX) is GpuState.OK
    fake_nvml.set_lost(ECC_INDEX, False)
    sample = source.poll()
    assert sample.gpu_state(sample.index_of(uuid)) is GpuState.OK
    assert sample.records()[sample.index_of(uuid)]["ecc_corrected_aggregate"] == 1234


def test_an_unexpected_error_marks_that_gpu_unknown_and_is_logged_once(
    fake_nvml: FakeNvml, source: NvmlSource, caplog: pytest.LogCaptureFixture
) -> None:
    uuid = fake_nvml.uuid(PCIE_INDEX)
    fake_nvml.set_device_error(PCIE_INDEX, NVML_ERROR_UNKNOWN)
    with caplog.at_level(logging.WARNING, logger="gpuops.nvml"):
        for _ in range(3):
            sample = source.poll()
            assert sample.gpu_state(PCIE_INDEX) is GpuState.UNKNOWN
            assert sample.records()[PCIE_INDEX]["temp_c"] is None
            assert sample.gpu_state(SXM_INDEX) is GpuState.OK
    about_gpu = [r for r in caplog.records if uuid in r.getMessage()]
    assert len(about_gpu) == 1, [r.getMessage() for r in about_gpu]
    assert "Unknown Error" in about_gpu[0].getMessage()


def test_a_reading_without_permission_is_none_and_the_gpu_still_ok(
    fake_nvml: FakeNvml, source: NvmlSource, caplog: pytest.LogCaptureFixture
) -> None:
    # Board-level denial: every per-device query of this GPU answers NO_PERMISSION.
    fake_nvml.set_device_error(PCIE_INDEX, NVML_ERROR_NO_PERMISSION)
    with caplog.at_level(logging.WARNING, logger="gpuops.nvml"):
        sample = source.poll()
    assert sample.gpu_state(PCIE_INDEX) is GpuState.OK
    assert sample.records()[PCIE_INDEX]["fan_pct"] is None
    assert any("no permission to read fan_pct" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- XID events


def test_an_xid_is_captured_with_its_gpu_and_code(fake_nvml: FakeNvml, source: NvmlSource) -> None:
    source.poll()
    assert fake_nvml.inject_xid(SXM_INDEX, 79) == 1  # the source registered for XIDs on this GPU
    sample = poll_until(source, lambda s: s.xid_events, "the XID to arrive")
    assert [(e.uuid, e.code) for e in sample.xid_events] == [(fake_nvml.uuid(SXM_INDEX), 79)]
    assert abs(sample.xid_events[0].ts - time.time()) < 3600
    assert [e["code"] for e in record_of(sample, fake_nvml, SXM_INDEX)["xid_events"]] == [79]
    assert record_of(sample, fake_nvml, ECC_INDEX)["xid_events"] == []
    assert source.poll().xid_events == ()  # drained: reported once


def test_xids_of_a_gpu_lost_at_open_are_watched_once_it_answers(fake_nvml: FakeNvml, source: NvmlSource) -> None:
    assert fake_nvml.inject_xid(LOST_INDEX, 48) == 0  # nobody could register for it yet
    fake_nvml.set_lost(LOST_INDEX, False)
    source.poll()
    assert fake_nvml.inject_xid(LOST_INDEX, 48) == 1
    sample = poll_until(source, lambda s: s.xid_events, "the XID to arrive")
    assert [(e.uuid, e.code) for e in sample.xid_events] == [(fake_nvml.uuid(LOST_INDEX), 48)]


# ---------------------------------------------------------------- opening, slowness, closing


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (NVML_ERROR_DRIVER_NOT_LOADED, "NVIDIA driver not loaded"),
        (NVML_ERROR_NO_PERMISSION, "no permission to use the NVIDIA driver"),
        (NVML_ERROR_LIB_RM_VERSION_MISMATCH, "reboot or reload the nvidia kernel module"),
        (NVML_ERROR_UNKNOWN, "NVML could not start: Unknown Error"),
    ],
)
def test_open_failures_are_one_clear_line(fake_nvml: FakeNvml, code: int, expected: str) -> None:
    fake_nvml.set_init_error(code)
    with pytest.raises(SourceError) as raised:
        NvmlSource()
    message = str(raised.value)
    assert expected in message
    assert "\n" not in message
    assert fake_nvml.init_count() == 0


def test_close_shuts_nvml_down_once_and_stops_the_xid_thread(fake_nvml: FakeNvml) -> None:
    source = NvmlSource()
    assert fake_nvml.init_count() == 1
    source.poll()
    source.close()
    source.close()
    assert fake_nvml.init_count() == 0
    assert not [t for t in threading.enumerate() if t.name == "gpuops-nvml-xid"]
    with pytest.raises(RuntimeError):
        source.poll()


def test_a_slow_driver_still_polls_correctly_and_closes(fake_nvml: FakeNvml) -> None:
    fake_nvml.set_latency_ms(15)
    source = NvmlSource()
    try:
        sample = source.poll()
        assert [sample.gpu_state(i) for i in range(len(sample))] == [
            GpuState.OK, GpuState.OK, GpuState.LOST, GpuState.OK
        ]
        assert record_of(sample, fake_nvml, ECC_INDEX)["ecc_corrected_aggregate"] == 1234
        fake_nvml.inject_xid(ECC_INDEX, 13)
        sample = poll_until(source, lambda s: s.xid_events, "the XID to arrive")
        assert [e.code for e in sample.xid_events] == [13]
    finally:
        closer = threading.Thread(target=source.close)
        closer.start()
        closer.join(PATIENCE_S)
    assert not closer.is_alive(), "close() did not return"
    assert fake_nvml.init_count() == 0


# ---------------------------------------------------------------- the command line, in subprocesses


def run_gpuops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpuops", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def env_without_nvml() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD")}


def test_status_json_over_the_fake_driver(fake_nvml_library: Path) -> None:
    result = run_gpuops(subprocess_env(fake_nvml_library), "status", "--source", "nvml", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"source", "simulated", "notice", "collected_at", "errors", "gpus"}
    assert (document["source"], document["simulated"], document["notice"]) == ("nvml", False, None)
    assert [gpu["state"] for gpu in document["gpus"]] == ["ok", "ok", "lost", "ok"]
    documented = {
        "uuid", "index", "node", "name", "serial", "pci_bus_id", "vbios_version", "driver_version",
        "nvml_version", "cuda_version", "architecture", "mig_mode", "site", "rack", "state",
        "slowdown_temp_c", "throttle_reasons", "processes", "xid_events", *SAMPLE_METRICS,
    }
    for gpu in document["gpus"]:
        assert documented <= set(gpu)
    sxm = document["gpus"][SXM_INDEX]
    assert sxm["uuid"].startswith("GPU-")
    assert sxm["fan_pct"] is None
    assert {"pid": FOREIGN_PID, "name": None, "used_mem_bytes": 30 * GIB} in sxm["processes"]
    assert document["gpus"][ECC_INDEX]["remapped_rows_pending"] == 1


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("driver-not-loaded", "gpuops: NVIDIA driver not loaded"),
        ("no-permission", "gpuops: no permission to use the NVIDIA driver"),
    ],
)
def test_status_names_the_driver_problem_in_one_line(fake_nvml_library: Path, scenario: str, expected: str) -> None:
    result = run_gpuops(subprocess_env(fake_nvml_library, scenario), "status", "--source", "nvml")
    assert result.returncode == 1
    assert result.stdout == ""
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("gpuops:")]
    assert len(error_lines) == 1 and error_lines[0].startswith(expected), result.stderr


needs_no_real_driver = pytest.mark.skipif(
    ctypes.util.find_library("nvidia-ml") is not None, reason="a real NVIDIA driver library is installed here"
)


@needs_no_real_driver
def test_status_without_any_driver_library_says_so() -> None:
    result = run_gpuops(env_without_nvml(), "status", "--source", "nvml")
    assert result.returncode == 1
    assert f"gpuops: {LIBRARY_MISSING}" in result.stderr.splitlines()


@needs_no_real_driver
def test_auto_falls_back_to_the_simulated_fleet_without_a_driver() -> None:
    result = run_gpuops(env_without_nvml(), "status", "--source", "auto", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["simulated"], document["notice"]) == (True, SIMULATED_NOTICE)
    assert document["source"].startswith("demo")


def test_auto_picks_nvml_when_the_driver_loads(fake_nvml_library: Path) -> None:
    result = run_gpuops(subprocess_env(fake_nvml_library), "status", "--source", "auto", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["source"], document["simulated"], document["notice"]) == ("nvml", False, None)


# An older driver: no clocks-event API, no field ids from 185 up (power, PCIe bytes, GPU temp).
_LEGACY_PROBE = textwrap.dedent(
    """
    import json, logging, sys
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    from gpuops.core.sources.nvml import NvmlSource
    with NvmlSource() as source:
        for _ in range(3):
            sample = source.poll()
    json.dump(sample.records(), sys.stdout)
    """
)


def test_an_older_driver_falls_back_to_older_calls(legacy_fake_nvml_library: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _LEGACY_PROBE], cwd=REPO, env=subprocess_env(legacy_fake_nvml_library),
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    ecc = records[ECC_INDEX]
    assert ecc["state"] == "ok"
    assert ecc["temp_c"] == 41.0  # nvmlDeviceGetTemperature
    assert ecc["power_w"] == pytest.approx(412.345)  # nvmlDeviceGetPowerUsage
    assert ecc["power_limit_w"] == pytest.approx(700.0)  # nvmlDeviceGetEnforcedPowerLimit
    assert ecc["throttle_reasons_mask"] == 0x24  # nvmlDeviceGetCurrentClocksThrottleReasons
    assert ecc["pcie_tx_bytes_s"] == 1464843 * 1024  # no byte-counter fields: nvmlDeviceGetPcieThroughput
    assert ecc["ecc_corrected_aggregate"] == 1234
    assert result.stderr.count("lacks nvmlDeviceGetCurrentClocksEventReasons") == 1, result.stderr


# ---------------------------------------------------------------- GPM activity


def test_gpm_activity_is_measured_between_consecutive_polls(fake_nvml: FakeNvml, source: NvmlSource) -> None:
    if not fake_nvml.has("nvmlGpmSampleGet"):  # a driver before GPM (R520): no activity, never 0
        assert all(record["sm_active_pct"] is None for record in source.poll().records())
        return
    first = record_of(source.poll(), fake_nvml, SXM_INDEX)  # against the samples taken at open
    assert first["sm_active_pct"] == pytest.approx(fake_nvml.value(SXM_INDEX, "gpm_sm_util") / 100)
    fake_nvml.set_value(SXM_INDEX, "gpm_sm_util", 2500)  # the job settles to 25 % of the SMs busy
    source.poll()  # this interval mixes the old and the new activity
    time.sleep(0.11)
    record = record_of(source.poll(), fake_nvml, SXM_INDEX)
    assert record["sm_active_pct"] == pytest.approx(25.0)
    assert record["tensor_active_pct"] == pytest.approx(fake_nvml.value(SXM_INDEX, "gpm_tensor_util") / 100)
    assert record_of(source.poll(), fake_nvml, PCIE_INDEX)["sm_active_pct"] is None  # Ada: no GPM


def test_a_gpu_back_from_lost_shows_gpm_activity_from_its_second_poll(fake_nvml: FakeNvml, source: NvmlSource) -> None:
    fake_nvml.set_lost(LOST_INDEX, False)
    assert record_of(source.poll(), fake_nvml, LOST_INDEX)["sm_active_pct"] is None  # first sample: nothing to compare
    time.sleep(0.11)
    busy = fake_nvml.value(LOST_INDEX, "gpm_sm_util") / 100
    expected = pytest.approx(busy) if fake_nvml.has("nvmlGpmSampleGet") else None
    assert record_of(source.poll(), fake_nvml, LOST_INDEX)["sm_active_pct"] == expected


def test_a_function_this_driver_lacks_is_logged_once_however_many_polls(
    fake_nvml: FakeNvml, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gpuops.nvml"), NvmlSource(node="node-a") as source:
        for _ in range(4):
            sample = source.poll()
    lacks = [r.getMessage() for r in caplog.records if "this NVIDIA driver lacks" in r.getMessage()]
    assert len(lacks) == len(set(lacks)), lacks
    missing = {m.split("lacks ", 1)[1].split(":", 1)[0] for m in lacks}
    assert all(not fake_nvml.has(symbol) for symbol in missing)
    assert ("nvmlDeviceGetFieldValues" in missing) == (not fake_nvml.has("nvmlDeviceGetFieldValues"))
    assert [sample.gpu_state(i) for i in range(len(sample))] == [GpuState.OK, GpuState.OK, GpuState.LOST, GpuState.OK]

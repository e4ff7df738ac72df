"""`gpuops status --json` on every driver family of the fake driver, through the real pynvml.

Each profile is its own library (a family lacks symbols, not just values), and a process can load
only one libnvidia-ml.so.1, so each profile runs once in a child process: it loads the fake by
LD_LIBRARY_PATH the production way, runs `gpuops status --json` in-process, then dumps what the
driver itself holds (through the fake's control functions and pynvml). Every key of the README's
status contract is then compared with the driver's own value, never with a copy of our output.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pynvml
import pytest

from tests.fake_nvml import DEFAULT_BUILD_DIR, PROFILES, build_fake_nvml, subprocess_env
from tests.fake_nvml.fixtures import PROFILE_VARIABLE

REPO = Path(__file__).resolve().parents[1]

# The child: status first (the fake boots its profile's scenario from the environment), then the
# driver's own state. Every scenario gets one more board, a Blackwell whose thresholds come only as
# T.Limit fields; one without a lost GPU gets another, lost but still answering its identity from
# the driver's cache, so every profile shows how a lost GPU is keyed.
_PROBE = textwrap.dedent(
    """
    import contextlib, io, json, os, socket, sys
    from pathlib import Path
    import pynvml
    from tests.fake_nvml import load_fake_nvml

    KEYS = sys.argv[2].split(",")
    GPM = [k for k in KEYS if k.startswith("gpm_")]
    fake = load_fake_nvml(Path(sys.argv[1]))
    pynvml.nvmlInit()
    count = pynvml.nvmlDeviceGetCount()
    system = {
        "driver_version": pynvml.nvmlSystemGetDriverVersion(),
        "nvml_version": pynvml.nvmlSystemGetNVMLVersion(),
        "cuda": pynvml.nvmlSystemGetCudaDriverVersion(),
        "node": socket.gethostname(),
        "symbols": {s: fake.has(s) for s in sys.argv[3].split(",")},
        "first_unknown_field": fake.first_unknown_field(),
    }
    pynvml.nvmlShutdown()
    fake.set_device_count(count + 1)
    count += 1
    if not any(fake.device_error(i) == pynvml.NVML_ERROR_GPU_IS_LOST for i in range(count)):
        fake.set_device_count(count + 1)
        fake.set_lost(count, identity_answers=True)
        count += 1
    energy_before = [fake.value(i, "energy_mj") for i in range(count)]
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # status may write text or bytes
    with contextlib.redirect_stdout(out):
        from gpuops.cli import main
        rc = main(["status", "--source", "nvml", "--json"])
    out.flush()
    def comm(pid):
        try:
            return Path(f"/proc/{pid}/comm").read_text().rstrip("\\n")
        except OSError:
            return None
    driver = []
    for i in range(count):
        procs = fake.processes(i) + fake.processes(i, graphics=True)
        driver.append({
            "values": {k: fake.value(i, k) for k in KEYS},
            "text": {k: fake.text(i, k) for k in ("name", "uuid", "serial", "vbios", "pci_bus_id")},
            "error": fake.device_error(i),
            "energy_mj_before": energy_before[i],
            "processes": [[pid, used, instance, comm(pid)] for pid, used, instance in procs],
            "migs": [
                {"values": {k: fake.mig_value(i, slot, k)
                            for k in ("mem_total", "mem_used", "gpu_instance_id", "compute_instance_id", *GPM)},
                 "text": {k: fake.mig_text(i, slot, k) for k in ("name", "uuid", "profile")}}
                for slot in range(fake.mig_count(i))
            ],
        })
    status = out.buffer.getvalue().decode()
    json.dump({"rc": rc, "status": status, "driver": driver, "system": system}, sys.stdout)
    """
)
# The driver properties the status document is built from (names of FAKE_KEYS in fake_nvml.c).
_DRIVER_KEYS = (
    "arch", "mem_total", "mem_used", "power_limit_mw", "power_mw", "energy_mj", "temp_c", "mem_temp_c",
    "slowdown_temp_c", "util_gpu", "util_mem", "sm_clock_mhz", "mem_clock_mhz", "fan_pct", "pstate",
    "pcie_link_gen", "pcie_link_gen_max", "pcie_link_width", "pcie_link_width_max", "pcie_tx_bytes",
    "pcie_rx_bytes", "pcie_tx_bytes_s", "pcie_rx_bytes_s", "ecc_corrected_volatile", "ecc_uncorrected_volatile",
    "ecc_corrected_aggregate", "ecc_uncorrected_aggregate", "remapped_rows_correctable",
    "remapped_rows_uncorrectable", "remapped_rows_pending", "remapped_rows_failure", "pcie_replay_count",
    "clocks_event_reasons", "mig_mode", "gpm_graphics_util", "gpm_sm_util", "gpm_sm_occupancy", "gpm_tensor_util",
    "gpm_dram_util", "enc_util", "dec_util", "mem_reserved", "thresholds_by_tlimit", "gpu_max_temp_c",
)
_SYMBOLS = (
    "nvmlDeviceGetFieldValues", "nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetTemperatureThreshold",
    "nvmlGpmSampleGet", "nvmlDeviceGetMarginTemperature",
)
# Activity keys and the fake's GPM activity (hundredths of a percent) each comes from.
_GPM = {
    "graphics_active_pct": "gpm_graphics_util", "sm_active_pct": "gpm_sm_util",
    "sm_occupancy_pct": "gpm_sm_occupancy", "tensor_active_pct": "gpm_tensor_util", "dram_active_pct": "gpm_dram_util",
}
# Status keys read straight from the driver property of the same unit.
_SAME = {
    "temp_c": "temp_c", "sm_clock_mhz": "sm_clock_mhz",
    "mem_clock_mhz": "mem_clock_mhz", "fan_pct": "fan_pct", "pstate": "pstate", "pcie_link_gen": "pcie_link_gen",
    "pcie_link_gen_max": "pcie_link_gen_max", "pcie_link_width": "pcie_link_width",
    "pcie_link_width_max": "pcie_link_width_max", "mem_used_bytes": "mem_used", "mem_total_bytes": "mem_total",
    "throttle_reasons_mask": "clocks_event_reasons", "enc_util_pct": "enc_util", "dec_util_pct": "dec_util",
    "mem_reserved_bytes": "mem_reserved",
    **{k: k for k in _DRIVER_KEYS if k.startswith(("ecc_", "remapped_rows_", "pcie_replay"))},
}
_MILLI = {"power_w": "power_mw", "power_limit_w": "power_limit_mw", "energy_j": "energy_mj"}
_ARCHITECTURES = {
    pynvml.NVML_DEVICE_ARCH_HOPPER: "Hopper",
    pynvml.NVML_DEVICE_ARCH_ADA: "Ada Lovelace",
    pynvml.NVML_DEVICE_ARCH_BLACKWELL: "Blackwell",
}
_REASONS = {
    "gpu_idle": pynvml.nvmlClocksEventReasonGpuIdle,
    "applications_clocks_setting": pynvml.nvmlClocksEventReasonApplicationsClocksSetting,
    "sw_power_cap": pynvml.nvmlClocksEventReasonSwPowerCap,
    "hw_slowdown": pynvml.nvmlClocksEventReasonHwSlowdown,
    "sync_boost": pynvml.nvmlClocksEventReasonSyncBoost,
    "sw_thermal_slowdown": pynvml.nvmlClocksEventReasonSwThermalSlowdown,
    "hw_thermal_slowdown": pynvml.nvmlClocksEventReasonHwThermalSlowdown,
    "hw_power_brake_slowdown": pynvml.nvmlClocksEventReasonHwPowerBrakeSlowdown,
    "display_clock_setting": pynvml.nvmlClocksEventReasonDisplayClockSetting,
}
# Rates from whole-byte counters read a few ms apart: equal within this relative tolerance.
_MOVING = {"pcie_tx_bytes_s": 1e-2, "pcie_rx_bytes_s": 1e-2, **{key: 1e-9 for key in _GPM}}


def contract_keys() -> set[str]:
    """Every GPU key the README's `status --json` schema table documents."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## `gpuops status --json` schema", 1)[1].split("\n## ", 1)[0]
    keys: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            keys.update(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return keys


@functools.cache
def probe(profile: str) -> dict[str, Any]:
    library = build_fake_nvml(DEFAULT_BUILD_DIR, profile)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(library), ",".join(_DRIVER_KEYS), ",".join(_SYMBOLS)],
        cwd=REPO, env=subprocess_env(library, PROFILES[profile][1]), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["rc"] == 0, result.stderr
    answer["document"] = json.loads(answer["status"])
    answer["stderr"] = result.stderr
    return answer


def _milli(value: int | None) -> float | None:
    return None if value is None else value / 1000


def threshold_route(values: dict[str, Any], system: dict[str, Any]) -> bool:
    """Whether the driver offers a GPU's thresholds: by nvmlDeviceGetTemperatureThreshold, or on a
    board where that call refuses by the T.Limit fields (the field batch, a driver that knows field
    194, and the margin call, to turn T.Limit degrees into °C)."""
    if not values["thresholds_by_tlimit"]:
        return True
    symbols = system["symbols"]
    return (
        symbols["nvmlDeviceGetFieldValues"] and symbols["nvmlDeviceGetMarginTemperature"]
        and pynvml.NVML_FI_DEV_TEMPERATURE_SLOWDOWN_TLIMIT < system["first_unknown_field"]
        and values["temp_c"] is not None and values["gpu_max_temp_c"] is not None
    )


def expected_gpu(index: int, driver: dict[str, Any], system: dict[str, Any]) -> dict[str, Any]:
    """The status object of one GPU as the driver's own state dictates it."""
    values, text = driver["values"], driver["text"]
    cuda = system["cuda"]
    gpu: dict[str, Any] = {
        "uuid": text["uuid"], "index": index, "node": system["node"], "name": text["name"],
        "serial": text["serial"] or None, "pci_bus_id": text["pci_bus_id"],
        "driver_version": system["driver_version"], "nvml_version": system["nvml_version"],
        "cuda_version": f"{cuda // 1000}.{cuda % 1000 // 10}", "site": None, "rack": None,
        "xid_events": [], "workloads": [], "mig_devices": [],
    }
    if driver["error"] == pynvml.NVML_ERROR_GPU_IS_LOST:
        # Identity from the driver's cache; nothing else answers.
        return {**gpu, "state": "lost", "processes": [], "throttle_reasons": None}
    gpu["state"] = "ok"
    gpu["vbios_version"] = text["vbios"] or None
    gpu["architecture"] = _ARCHITECTURES[values["arch"]]
    gpu["mig_mode"] = None if values["mig_mode"] is None else values["mig_mode"] == pynvml.NVML_DEVICE_MIG_ENABLE
    for key, source in _SAME.items():
        gpu[key] = values[source]
    for key, source in _MILLI.items():
        gpu[key] = _milli(values[source])
    gpu["slowdown_temp_c"] = values["slowdown_temp_c"] if threshold_route(values, system) else None
    gpu["energy_j_before"] = _milli(driver["energy_mj_before"])
    gpu["mem_temp_c"] = values["mem_temp_c"] if system["symbols"]["nvmlDeviceGetFieldValues"] else None
    refused = values["util_gpu"] is None  # nvmlDeviceGetUtilizationRates refuses as a whole
    gpu["util_gpu_pct"] = None if refused else values["util_gpu"]
    gpu["util_mem_pct"] = None if refused else values["util_mem"]
    for direction in ("tx", "rx"):
        counter = values[f"pcie_{direction}_bytes"]
        gpu[f"pcie_{direction}_bytes_s"] = None if counter is None else values[f"pcie_{direction}_bytes_s"]
    # GPM: Hopper and newer, on a driver that has it (samples a poll apart: status waits for them)
    gpm = system["symbols"]["nvmlGpmSampleGet"] and values["arch"] >= pynvml.NVML_DEVICE_ARCH_HOPPER
    for key, source in _GPM.items():
        gpu[key] = values[source] / 100 if gpm and values[source] is not None else None
    mask = values["clocks_event_reasons"]
    gpu["throttle_reasons"] = [name for name, bit in _REASONS.items() if mask & bit]
    seen: dict[int, tuple[dict[str, Any], int | None]] = {}
    for pid, used, instance, comm in driver["processes"]:
        seen.setdefault(pid, ({"pid": pid, "name": comm, "used_mem_bytes": used}, instance))
    gpu["processes"] = [process for process, _ in seen.values()]
    gpu["mig_devices"] = [
        {
            "uuid": mig["text"]["uuid"], "name": mig["text"]["name"], "profile": mig["text"]["profile"],
            "gpu_instance_id": mig["values"]["gpu_instance_id"],
            "compute_instance_id": mig["values"]["compute_instance_id"],
            "mem_used_bytes": mig["values"]["mem_used"], "mem_total_bytes": mig["values"]["mem_total"],
            "processes": [p for p, instance in seen.values() if instance == mig["values"]["gpu_instance_id"]],
            **{key: mig["values"][source] / 100 if gpm else None for key, source in _GPM.items()},
        }
        for mig in driver["migs"]
    ]
    return gpu


# Status keys gpuops derives from the driver's values rather than reads (tests/test_status_cli.py).
_DERIVED = {"health", "health_reason", "lifecycle"}  # gpuops' own: the grade, and the book's lifecycle state


def assert_gpu_matches(actual: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    for key in contract_keys() - _DERIVED:
        want = expected.get(key)
        if key == "mig_devices":
            assert len(actual[key]) == len(want), f"{where}: {key}"
            for slot, (got_mig, want_mig) in enumerate(zip(actual[key], want, strict=True)):
                assert set(got_mig) == set(want_mig), f"{where}: MIG device {slot} keys"
                assert_gpu_matches_keys(got_mig, want_mig, f"{where} MIG device {slot}")
        elif key == "energy_j" and want is not None:
            # Energy grows while the child runs: read between the driver's values before and after.
            assert expected["energy_j_before"] <= actual[key] <= want, f"{where}: {key}"
        elif key in _MOVING and want is not None and actual[key] is not None:
            assert actual[key] == pytest.approx(want, rel=_MOVING[key]), f"{where}: {key}"
        else:
            assert actual[key] == want, f"{where}: {key} is {actual[key]!r}, the driver says {want!r}"


def assert_gpu_matches_keys(actual: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    """A MIG device's entry: activity within float rounding, everything else exactly."""
    for key, want in expected.items():
        if key in _GPM and want is not None and actual[key] is not None:
            assert actual[key] == pytest.approx(want, rel=_MOVING[key]), f"{where}: {key}"
        else:
            assert actual[key] == want, f"{where}: {key} is {actual[key]!r}, the driver says {want!r}"


@pytest.mark.parametrize("profile", [p for p, (_, scenario) in PROFILES.items() if scenario == "default" and p != "current"])
def test_every_in_process_nvml_case_passes_on_each_driver_family(profile: str) -> None:
    """tests/test_source_nvml.py and test_alerts_nvml.py run on "current" in the suite itself; here
    their in-process cases run again on every other driver family that boots the same fleet (its
    command-line cases are the status probes above, per profile)."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_source_nvml.py",
         "tests/test_alerts_nvml.py", "-k", "not status and not auto_ and not older_driver"],
        cwd=REPO, env={**os.environ, PROFILE_VARIABLE: profile}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout and " failed" not in result.stdout


def test_every_status_key_equals_the_drivers_value(nvml_profile: tuple[str, Path]) -> None:
    profile, _ = nvml_profile
    answer = probe(profile)
    gpus = answer["document"]["gpus"]
    assert len(gpus) == len(answer["driver"])
    for index, (gpu, driver) in enumerate(zip(gpus, answer["driver"], strict=True)):
        missing = contract_keys() - set(gpu)
        assert not missing, f"{profile} GPU {index}: README schema keys missing: {missing}"
        assert_gpu_matches(gpu, expected_gpu(index, driver, answer["system"]), f"{profile} GPU {index}")


def test_a_missing_call_never_makes_a_gpu_unknown(nvml_profile: tuple[str, Path]) -> None:
    profile, _ = nvml_profile
    answer = probe(profile)
    states = [gpu["state"] for gpu in answer["document"]["gpus"]]
    assert "unknown" not in states, (profile, states)
    assert "GPU_IS_LOST" not in answer["stderr"] and "state unknown" not in answer["stderr"], answer["stderr"]


def test_a_lost_gpu_is_keyed_by_its_uuid_with_name_and_bus_id(nvml_profile: tuple[str, Path]) -> None:
    profile, _ = nvml_profile
    answer = probe(profile)
    lost = [(gpu, driver) for gpu, driver in zip(answer["document"]["gpus"], answer["driver"], strict=True)
            if gpu["state"] == "lost"]
    assert len(lost) == 1, profile
    gpu, driver = lost[0]
    assert gpu["uuid"] == driver["text"]["uuid"] and gpu["uuid"].startswith("GPU-")
    assert (gpu["name"], gpu["pci_bus_id"]) == (driver["text"]["name"], driver["text"]["pci_bus_id"])
    assert gpu["temp_c"] is None and gpu["processes"] == []


def test_a_driver_without_field_values_reports_what_one_with_them_does() -> None:
    """Same GPUs, same values; only what NVML offers as field values alone has no route: the HBM
    temperature, and the thresholds of a board that refuses nvmlDeviceGetTemperatureThreshold."""
    current, older = probe("current"), probe("no-field-values")
    with_fields, without = current["document"]["gpus"], older["document"]["gpus"]
    assert len(with_fields) == len(without)
    for index, (a, b) in enumerate(zip(with_fields, without, strict=True)):
        only_fields = {"mem_temp_c"}
        if current["driver"][index]["values"]["thresholds_by_tlimit"]:
            only_fields |= {"slowdown_temp_c", "health", "health_reason"}  # the grade reads the threshold
            assert a["slowdown_temp_c"] is not None and b["slowdown_temp_c"] is None
        for key in contract_keys() - only_fields:  # health too: same values, same grade
            if key == "energy_j":
                assert (a[key] is None) == (b[key] is None), index  # counters move between the runs
            elif key in _MOVING and a[key] is not None and b[key] is not None:
                assert b[key] == pytest.approx(a[key], rel=_MOVING[key]), (index, key)
            elif key != "processes":
                assert b[key] == a[key], (index, key, a[key], b[key])
        # Each profile ran in its own child, so the probe's own PID differs; the rest must not.
        assert [(p["name"], p["used_mem_bytes"]) for p in b["processes"]] == [
            (p["name"], p["used_mem_bytes"]) for p in a["processes"]
        ]
        assert b["mem_temp_c"] is None


def test_vgpu_guest_refusals_are_null_never_zero() -> None:
    answer = probe("vgpu")
    guests = [(gpu, driver) for gpu, driver in zip(answer["document"]["gpus"], answer["driver"], strict=True)
              if driver["text"]["name"].endswith("-40C")]  # named for their vGPU profile
    assert len(guests) == 2
    for gpu, driver in guests:
        assert gpu["state"] == "ok"
        for key in ("temp_c", "power_w", "power_limit_w", "energy_j", "fan_pct", "pcie_link_gen",
                    "pcie_tx_bytes_s", "remapped_rows_pending", "pcie_replay_count", "slowdown_temp_c", "serial"):
            assert gpu[key] is None, key
        assert gpu["mem_used_bytes"] == driver["values"]["mem_used"]  # what a guest may read, it reads
        assert gpu["ecc_uncorrected_volatile"] == driver["values"]["ecc_uncorrected_volatile"]


def test_thresholds_by_whichever_route_the_driver_offers(nvml_profile: tuple[str, Path]) -> None:
    """nvmlDeviceGetTemperatureThreshold where it answers; on the Blackwell board, which refuses it
    (superseded on Ada and later), the T.Limit fields give the same °C; a driver with neither route
    (no field values, or too old to know fields 193-196) leaves that board's threshold null."""
    profile, _ = nvml_profile
    answer = probe(profile)
    by_field = 0
    for gpu, driver in zip(answer["document"]["gpus"], answer["driver"], strict=True):
        if gpu["state"] != "ok":
            continue
        values = driver["values"]
        if threshold_route(values, answer["system"]):
            assert gpu["slowdown_temp_c"] == values["slowdown_temp_c"], gpu["name"]
            by_field += bool(values["thresholds_by_tlimit"])
        else:
            assert gpu["slowdown_temp_c"] is None, gpu["name"]
    assert by_field == (1 if profile in ("current", "vgpu", "mig") else 0)


def test_mig_devices_come_back_exactly_and_the_parent_refuses_utilization() -> None:
    answer = probe("mig")
    gpus = answer["document"]["gpus"]
    with_mig = [(gpu, driver) for gpu, driver in zip(gpus, answer["driver"], strict=True) if driver["migs"]]
    assert len(with_mig) == 2
    for gpu, driver in with_mig:
        assert gpu["mig_mode"] is True and gpu["state"] == "ok"
        assert gpu["util_gpu_pct"] is None and gpu["util_mem_pct"] is None  # refused, never 0
        assert [m["uuid"] for m in gpu["mig_devices"]] == [m["text"]["uuid"] for m in driver["migs"]]
        assert all(m["uuid"].startswith("MIG-") for m in gpu["mig_devices"])
    split = with_mig[0][0]["mig_devices"]
    assert [(m["profile"], m["gpu_instance_id"]) for m in split] == [("3g.40gb", 1), ("2g.20gb", 5), ("1g.10gb", 13)]
    assert [len(m["processes"]) for m in split] == [1, 1, 0]  # each process in its own GPU instance
    # each GPU instance its own activity (nvmlGpmMigSampleGet), not the GPU's
    assert split[0]["sm_active_pct"] > split[1]["sm_active_pct"] > split[2]["sm_active_pct"] == 0.0
    without = [gpu for gpu, driver in zip(gpus, answer["driver"], strict=True) if not driver["migs"]]
    assert all(gpu["mig_devices"] == [] for gpu in without)


def test_gpm_activity_is_real_and_differs_from_utilization() -> None:
    """One-shot status shows GPM activity (two samples 100 ms apart); the SMs busy share is not
    the "a kernel ran" utilization; boards before Hopper and drivers without GPM say null."""
    gpus = probe("current")["document"]["gpus"]
    hopper = [gpu for gpu in gpus if gpu["architecture"] == "Hopper" and gpu["state"] == "ok"]
    assert hopper and all(gpu["sm_active_pct"] is not None for gpu in hopper)
    assert all(gpu["sm_active_pct"] < gpu["util_gpu_pct"] for gpu in hopper)
    ada = [gpu for gpu in gpus if gpu["architecture"] == "Ada Lovelace"]
    assert ada and all(gpu[key] is None for gpu in ada for key in _GPM)
    legacy = probe("legacy")["document"]["gpus"]
    assert all(gpu[key] is None for gpu in legacy for key in _GPM)

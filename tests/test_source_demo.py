"""The simulated fleet (`demo[:N]`): deterministic, laid out like a real GPU cloud, with readings
that match real nvidia-smi captures and the failures operators need to see."""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuops.core.sources.base import SourceError
from gpuops.core.sources.demo import DemoSource
from gpuops.core.sources.demo_workloads import fan_speed_pct
from gpuops.core.sources.factory import open_source
from gpuops.core.telemetry import COUNTER_METRICS, SAMPLE_METRICS, THROTTLE_REASON_BITS, FleetSample, GpuState

CAPTURES_DIR = Path(__file__).parent / "fixtures" / "nvidia-smi-csv"
CAPTURES = {
    "NVIDIA H100 80GB HBM3": "nvidia-h100-80gb-hbm3__590.48.01",
    "NVIDIA H200": "nvidia-h200__590.48.01",
    "NVIDIA L40S": "nvidia-l40s__595.80",
}
SXM_BOARDS = ("NVIDIA H100 80GB HBM3", "NVIDIA H200", "NVIDIA B200", "NVIDIA A100-SXM4-80GB")
T0 = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC
MIB = 1024 * 1024
HW_THERMAL = THROTTLE_REASON_BITS["hw_thermal_slowdown"]


# --- real captures ---------------------------------------------------------------------------


def _capture(name: str, state: str) -> dict[str, str]:
    path = CAPTURES_DIR / f"linux-x86_64__{CAPTURES[name]}__{state}__query-gpu.csv"
    with path.open(newline="") as handle:
        header, row = list(csv.reader(handle, skipinitialspace=True))
    return dict(zip(header, row, strict=True))


def _number(text: str) -> float:
    """'631.95 W' -> 631.95, '81559 MiB' -> 81559.0, 'P8' -> 8.0"""
    return float(text.split()[0].lstrip("P"))


def _readings(name: str) -> list[dict[str, str]]:
    return [_capture(name, state) for state in ("idle", "load")]


# --- helpers -----------------------------------------------------------------------------------


def _run(source: DemoSource, start: float, count: int, step_s: float) -> list[FleetSample]:
    return [source.sample_at(start + k * step_s) for k in range(count)]


def _assert_same_samples(a: FleetSample, b: FleetSample) -> None:
    assert a.ts == b.ts
    assert a.gpus == b.gpus
    for name in SAMPLE_METRICS:
        np.testing.assert_array_equal(a.metrics[name], b.metrics[name], err_msg=name)
    np.testing.assert_array_equal(a.state, b.state)
    assert a.processes == b.processes
    assert a.xid_events == b.xid_events


@pytest.fixture(scope="module")
def day_of_fleet() -> list[FleetSample]:
    """A 1,024-GPU fleet sampled every 5 minutes for a day."""
    return _run(DemoSource(1024, seed=7, start_ts=T0), T0, 288, 300.0)


def _hot_gpus(samples: list[FleetSample]) -> set[int]:
    """GPUs that went into hardware thermal slowdown at any point: failing, not typical."""
    hot: set[int] = set()
    for sample in samples:
        mask = np.nan_to_num(sample.metrics["throttle_reasons_mask"]).astype(np.int64)
        hot.update(np.flatnonzero(mask & HW_THERMAL).tolist())
    return hot


def _settled(samples: list[FleetSample], name: str, busy: bool) -> list[tuple[FleetSample, int]]:
    """(sample, gpu) of model `name`, answering, and busy (util >= 90) or idle (no processes)
    both in this sample and the one before, so temperatures have settled."""
    hot = _hot_gpus(samples)
    found = []
    for before, sample in itertools.pairwise(samples):
        for i, gpu in enumerate(sample.gpus):
            if gpu.name != name or i in hot or sample.state[i] != GpuState.OK or before.state[i] != GpuState.OK:
                continue
            if busy and min(before.metrics["util_gpu_pct"][i], sample.metrics["util_gpu_pct"][i]) >= 90:
                found.append((sample, i))
            if not busy and not before.processes[i] and not sample.processes[i]:
                found.append((sample, i))
    return found


# --- determinism -------------------------------------------------------------------------------


@pytest.mark.parametrize("start_ts", [T0, None])
def test_same_seed_and_timestamps_give_identical_samples(start_ts: float | None) -> None:
    steps = np.cumsum(np.random.default_rng(1).uniform(1, 120, size=300))
    first = DemoSource(64, seed=11, start_ts=start_ts)
    second = DemoSource(64, seed=11, start_ts=start_ts)
    events = 0
    for step in steps:
        a, b = first.sample_at(T0 + step), second.sample_at(T0 + step)
        _assert_same_samples(a, b)
        events += len(a.xid_events)
    assert events > 0, "the compared span should include XID events"


def test_different_seeds_give_different_fleets() -> None:
    a = DemoSource(64, seed=1, start_ts=T0).sample_at(T0 + 3600)
    b = DemoSource(64, seed=2, start_ts=T0).sample_at(T0 + 3600)
    assert not set(a.uuids) & set(b.uuids)
    assert not np.array_equal(a.metrics["power_w"], b.metrics["power_w"])


def test_negative_seeds_are_seeds_too() -> None:
    a = DemoSource(16, seed=-1, start_ts=T0).sample_at(T0)
    b = DemoSource(16, seed=1, start_ts=T0).sample_at(T0)
    assert a.uuids != b.uuids


def test_sample_at_does_not_depend_on_wall_clock_or_earlier_samples() -> None:
    fresh = DemoSource(128, seed=3, start_ts=T0)
    used = DemoSource(128, seed=3, start_ts=T0)
    used.poll()
    _run(used, T0 + 86400, 5, 3600.0)
    a, b = fresh.sample_at(T0 + 7200), used.sample_at(T0 + 7200)
    for name in SAMPLE_METRICS:
        np.testing.assert_array_equal(a.metrics[name], b.metrics[name], err_msg=name)
    assert a.processes == b.processes


def test_poll_samples_the_present() -> None:
    source = DemoSource(16, seed=0)
    sample = source.poll()
    assert sample.ts == pytest.approx(source.start_ts)
    later = source.poll()
    assert later.ts >= sample.ts
    assert source.name == "demo:16" and source.simulated


# --- layout ------------------------------------------------------------------------------------


def test_layout_of_64_gpus() -> None:
    sample = DemoSource(64, seed=0, start_ts=T0).sample_at(T0)
    nodes = Counter(g.node for g in sample.gpus)
    assert len(nodes) == 8 and set(nodes.values()) == {8}
    for gpu in sample.gpus:
        assert re.fullmatch(r"[a-z]{3}\d-r\d\d-n\d\d", gpu.node)
        assert gpu.node.startswith(f"{gpu.rack}-") and gpu.rack.startswith(f"{gpu.site}-")
        assert re.fullmatch(r"GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", gpu.uuid)
        assert re.fullmatch(r"00000000:[0-9A-F]{2}:00\.0", gpu.pci_bus_id)
        assert re.fullmatch(r"\d{13}", gpu.serial)
        assert gpu.driver_version == "590.48.01" and gpu.cuda_version
    for node in nodes:
        members = [g for g in sample.gpus if g.node == node]
        assert sorted(g.index for g in members) == list(range(8))
        assert len({g.name for g in members}) == 1, "a node has one GPU model"
        assert len({g.pci_bus_id for g in members}) == 8
    assert len({g.rack for g in sample.gpus}) == 2
    assert len({g.site for g in sample.gpus}) >= 2
    assert {g.name for g in sample.gpus} == set(SXM_BOARDS) | {"NVIDIA L40S"}
    assert len(set(sample.uuids)) == 64 and len({g.serial for g in sample.gpus}) == 64


def test_large_fleet_has_realistic_racks_sites_and_model_shares() -> None:
    sample = DemoSource(1000, seed=0, start_ts=T0).sample_at(T0)
    models = Counter(g.name for g in sample.gpus)
    assert models.most_common(1)[0][0] == "NVIDIA H100 80GB HBM3"
    assert len({g.site for g in sample.gpus}) == 3
    per_rack = Counter(g.rack for g in sample.gpus)
    assert max(per_rack.values()) == 32, "four 8-GPU nodes per rack"


def test_last_node_holds_the_remainder() -> None:
    sample = DemoSource(61, seed=0, start_ts=T0).sample_at(T0)
    nodes = Counter(g.node for g in sample.gpus)
    assert len(sample) == 61 and len(nodes) == 8
    last = sample.gpus[-1].node
    assert nodes[last] == 5 and [g.index for g in sample.gpus if g.node == last] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("n_gpus", [0, -3])
def test_empty_fleet_is_refused(n_gpus: int) -> None:
    with pytest.raises(SourceError, match="at least 1 GPU"):
        DemoSource(n_gpus)


def test_factory_opens_demo_fleet() -> None:
    with open_source("demo:16", seed=4) as source:
        assert isinstance(source, DemoSource)
        assert len(source.poll()) == 16


# --- realism against real captures ------------------------------------------------------------


@pytest.mark.parametrize("name", list(CAPTURES))
def test_inventory_matches_real_capture(name: str, day_of_fleet: list[FleetSample]) -> None:
    capture = _capture(name, "load")
    sample = day_of_fleet[0]
    gpus = [i for i, g in enumerate(sample.gpus) if g.name == name and sample.state[i] == GpuState.OK]
    assert gpus
    for i in gpus:
        gpu = sample.gpus[i]
        assert gpu.mem_total_bytes == _number(capture["memory.total [MiB]"]) * MIB
        assert gpu.power_limit_w == _number(capture["power.limit [W]"])
        assert gpu.vbios_version == capture["vbios_version"]
        assert sample.metrics["pcie_link_gen_max"][i] == _number(capture["pcie.link.gen.max"])
        assert sample.metrics["pcie_link_width_max"][i] == _number(capture["pcie.link.width.max"])


@pytest.mark.parametrize("name", ["NVIDIA H100 80GB HBM3", "NVIDIA H200"])
def test_idle_readings_match_real_idle_capture(name: str, day_of_fleet: list[FleetSample]) -> None:
    idle = _capture(name, "idle")
    assert _number(idle["utilization.gpu [%]"]) == 0, "the idle capture is really idle"
    found = _settled(day_of_fleet, name, busy=False)
    assert found
    for sample, i in found:
        m = {key: sample.metrics[key][i] for key in SAMPLE_METRICS}
        assert m["power_w"] == pytest.approx(_number(idle["power.draw [W]"]), rel=0.2)
        assert abs(m["temp_c"] - _number(idle["temperature.gpu"])) <= 10
        assert abs(m["mem_temp_c"] - _number(idle["temperature.memory"])) <= 10
        assert m["sm_clock_mhz"] == _number(idle["clocks.current.sm [MHz]"])
        assert m["mem_clock_mhz"] == _number(idle["clocks.current.memory [MHz]"])
        assert m["pstate"] == _number(idle["pstate"])
        assert m["util_gpu_pct"] == 0 and m["mem_used_bytes"] == _number(idle["memory.used [MiB]"]) * MIB


@pytest.mark.parametrize("name", ["NVIDIA H100 80GB HBM3", "NVIDIA H200"])
def test_busy_readings_match_real_load_capture(name: str, day_of_fleet: list[FleetSample]) -> None:
    idle, load = _capture(name, "idle"), _capture(name, "load")
    load_power, load_temp = _number(load["power.draw [W]"]), _number(load["temperature.gpu"])
    found = _settled(day_of_fleet, name, busy=True)
    assert found
    near_capture = 0
    for sample, i in found:
        power = sample.metrics["power_w"][i]
        assert _number(idle["power.draw [W]"]) < power <= _number(load["power.limit [W]"]) * 1.02
        max_sm = _number(load["clocks.max.sm [MHz]"])
        assert max_sm - 150 <= sample.metrics["sm_clock_mhz"][i] <= max_sm
        assert sample.metrics["mem_clock_mhz"][i] == _number(load["clocks.max.memory [MHz]"])
        assert sample.metrics["pstate"][i] == _number(load["pstate"])
        if abs(power - load_power) <= 0.1 * load_power:
            near_capture += 1
            assert abs(sample.metrics["temp_c"][i] - load_temp) <= 8
            assert abs(sample.metrics["mem_temp_c"][i] - _number(load["temperature.memory"])) <= 10
    assert near_capture > 0, "the fleet reaches the captured load power"


def test_l40s_readings_stay_inside_real_envelope(day_of_fleet: list[FleetSample]) -> None:
    """Both L40S captures were taken busy (the "idle" one at 100 % util), so they bound busy
    temperatures from both sides and idle power from above."""
    name = "NVIDIA L40S"
    readings = _readings(name)
    temps = [_number(r["temperature.gpu"]) for r in readings]
    lowest_power = min(_number(r["power.draw [W]"]) for r in readings)
    busy = [
        (s, i)
        for s in day_of_fleet
        for i, g in enumerate(s.gpus)
        if g.name == name and s.state[i] == GpuState.OK and s.metrics["util_gpu_pct"][i] >= 50
    ]
    idle = _settled(day_of_fleet, name, busy=False)
    assert busy and idle
    for sample, i in busy:
        assert min(temps) - 10 <= sample.metrics["temp_c"][i] <= max(temps) + 15
        assert sample.metrics["sm_clock_mhz"][i] == _number(readings[1]["clocks.max.sm [MHz]"])
        assert sample.metrics["mem_clock_mhz"][i] == _number(readings[1]["clocks.max.memory [MHz]"])
    for sample, i in idle:
        assert sample.metrics["power_w"][i] < lowest_power
        assert sample.metrics["sm_clock_mhz"][i] < _number(readings[1]["clocks.max.sm [MHz]"])


@pytest.mark.parametrize("name", list(CAPTURES))
def test_unsupported_readings_are_none_like_the_capture(name: str, day_of_fleet: list[FleetSample]) -> None:
    capture = _capture(name, "load")
    sample = day_of_fleet[100]
    records = [r for r in sample.records() if r["name"] == name and r["state"] == "ok"]
    assert records
    for record in records:
        if capture["fan.speed [%]"] == "[N/A]":
            assert record["fan_pct"] is None
        if capture["temperature.memory"] == "N/A":
            assert record["mem_temp_c"] is None
        else:
            assert isinstance(record["mem_temp_c"], float)


def test_sxm_boards_report_no_fan(day_of_fleet: list[FleetSample]) -> None:
    records = day_of_fleet[0].records()
    sxm = [r for r in records if r["name"] in SXM_BOARDS]
    assert {r["name"] for r in sxm} == set(SXM_BOARDS)
    assert all(r["fan_pct"] is None for r in sxm)


def test_fan_curve_of_boards_with_a_fan() -> None:
    temps = np.array([20.0, 40.0, 60.0, 85.0, 95.0])
    duty = fan_speed_pct(temps, np.full(5, 40.0), np.full(5, 85.0))
    assert duty[0] == duty[1] == 30.0 and duty[3] == duty[4] == 100.0
    assert np.all(np.diff(duty) >= 0)


def test_inference_follows_local_time_of_day() -> None:
    source = DemoSource(1000, seed=2, start_ts=T0)
    midnight_utc = 1_780_012_800.0  # 2026-05-29 00:00 UTC
    ams = [i for i, g in enumerate(source.sample_at(midnight_utc).gpus) if g.site == "ams1"]

    def mean_util(local_hour: float) -> float:
        utc = midnight_utc + (local_hour - 1) * 3600  # ams1 is UTC+1 in the demo
        sample = source.sample_at(utc)
        inference = [i for i in ams if any(p.name in ("vllm", "tritonserver") for p in sample.processes[i])]
        assert inference
        return float(np.mean(sample.metrics["util_gpu_pct"][inference]))

    assert mean_util(15) > mean_util(3) + 20


# --- energy and counters -------------------------------------------------------------------------


def test_energy_counts_from_start_and_integrates_power() -> None:
    source = DemoSource(256, seed=5, start_ts=T0)
    samples = _run(source, T0, 361, 10.0)
    energy = np.array([s.metrics["energy_j"] for s in samples])
    power = np.array([s.metrics["power_w"] for s in samples])
    answering = ~np.isnan(energy).any(axis=0)
    assert answering.sum() > 200
    assert np.all(energy[0][answering] == 0)
    assert np.all(np.diff(energy[:, answering], axis=0) >= 0)
    integrated = np.trapezoid(power[:, answering], dx=10.0, axis=0)
    np.testing.assert_allclose(energy[-1][answering], integrated, rtol=0.03)


def test_counters_never_decrease() -> None:
    samples = _run(DemoSource(256, seed=9, start_ts=T0), T0, 200, 97.0)
    for name in sorted(COUNTER_METRICS):
        values = np.array([s.metrics[name] for s in samples])
        for gpu in range(values.shape[1]):
            readable = values[:, gpu][~np.isnan(values[:, gpu])]
            assert np.all(np.diff(readable) >= 0), (name, gpu)


# --- failing GPUs ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_every_failure_kind_shows_in_64_gpus(seed: int) -> None:
    source = DemoSource(64, seed=seed, start_ts=T0)
    samples = _run(source, T0, 8 * 60, 60.0)

    assert all((s.state == GpuState.LOST).any() for s in samples), "a lost GPU at every poll"
    lost = samples[-1].records()
    for record in (r for r in lost if r["state"] == "lost"):
        assert all(record[name] is None for name in SAMPLE_METRICS if name not in ("mem_total_bytes", "power_limit_w"))
        assert record["processes"] == []

    hot = [s.record(i) for s in samples for i in _hot_gpus([s])]
    assert hot and any(r["temp_c"] > r["slowdown_temp_c"] for r in hot), "climbs past the slowdown temperature"
    assert all({"hw_slowdown", "hw_thermal_slowdown"} <= set(r["throttle_reasons"]) for r in hot)
    assert any("sw_thermal_slowdown" in r["throttle_reasons"] for r in hot)

    first, last = samples[0].metrics, samples[-1].metrics
    uncorrectable_before, uncorrectable_after = (np.nan_to_num(m["ecc_uncorrected_volatile"]) for m in (first, last))
    new_uncorrectable = np.flatnonzero(uncorrectable_after > uncorrectable_before)
    assert new_uncorrectable.size
    for i in new_uncorrectable:
        assert last["remapped_rows_pending"][i] >= 1
        assert last["ecc_uncorrected_aggregate"][i] >= last["ecc_uncorrected_volatile"][i]
        assert last["remapped_rows_uncorrectable"][i] >= last["ecc_uncorrected_volatile"][i]

    codes = Counter(e.code for s in samples for e in s.xid_events)
    assert codes[79] >= 1, "fell off the bus"
    assert codes[48] >= 1 and codes[94] + codes[95] == codes[48] and codes[63] == codes[48]
    assert codes[13] + codes[31] + codes[43] >= 1


def test_xid_events_arrive_once_in_the_poll_they_happen_in() -> None:
    source = DemoSource(200, seed=4, start_ts=T0)
    seen = []
    previous = T0
    for sample in _run(source, T0 + 30.0, 400, 30.0):
        uuids = set(sample.uuids)
        for event in sample.xid_events:
            assert previous < event.ts <= sample.ts
            assert event.uuid in uuids
            seen.append(event)
        previous = sample.ts
    assert seen and len(seen) == len(set(seen))
    lost_events = [e for e in seen if e.code == 79]
    for event in lost_events:
        after = source.sample_at(event.ts + 1)
        assert after.gpu_state(after.index_of(event.uuid)) == GpuState.LOST


def test_failing_gpus_are_a_small_fraction() -> None:
    samples = _run(DemoSource(1000, seed=6, start_ts=T0), T0, 96, 300.0)
    failing = _hot_gpus(samples)
    for sample in samples:
        failing.update(np.flatnonzero(sample.state == GpuState.LOST).tolist())
        failing.update(np.flatnonzero(np.nan_to_num(sample.metrics["ecc_uncorrected_aggregate"]) > 0).tolist())
        failing.update(sample.index_of(e.uuid) for e in sample.xid_events)
    assert 0.005 * 1000 <= len(failing) <= 0.05 * 1000


# --- processes ----------------------------------------------------------------------------------


def test_processes_agree_with_memory_and_work(day_of_fleet: list[FleetSample]) -> None:
    names = Counter()
    for sample in day_of_fleet[::12]:
        for i, processes in enumerate(sample.processes):
            used = sample.metrics["mem_used_bytes"][i]
            if sample.state[i] != GpuState.OK:
                assert processes == ()
                continue
            assert bool(processes) == (used > 0)
            if processes:
                assert 1 <= len(processes) <= 2
                assert sum(p.used_mem_bytes for p in processes) == used
                assert used <= sample.metrics["mem_total_bytes"][i]
                assert all(0 < p.pid <= 4_194_304 and p.used_mem_bytes > 0 for p in processes)
                names.update(p.name for p in processes)
            else:
                assert sample.metrics["util_gpu_pct"][i] == 0
    assert {"python3", "vllm", "tritonserver"} <= set(names)


def test_processes_follow_job_changes() -> None:
    incremental = DemoSource(256, seed=8, start_ts=T0)
    samples = _run(incremental, T0, 96, 900.0)
    pids = [{tuple(p.pid for p in procs) for procs in s.processes} for s in samples]
    assert any(a != b for a, b in itertools.pairwise(pids)), "jobs start and end during a day"
    fresh = DemoSource(256, seed=8, start_ts=T0).sample_at(samples[-1].ts)
    assert fresh.processes == samples[-1].processes


# --- records and physical bounds ----------------------------------------------------------------


def test_records_are_json_with_none_for_unsupported(day_of_fleet: list[FleetSample]) -> None:
    sample = day_of_fleet[50]
    records = json.loads(json.dumps(sample.records(), allow_nan=False))
    assert len(records) == len(sample)
    l40s = [r for r in records if r["name"] == "NVIDIA L40S" and r["state"] == "ok"]
    assert l40s and all(r["mem_temp_c"] is None and r["fan_pct"] is None for r in l40s)
    lost = [r for r in records if r["state"] == "lost"]
    assert lost and all(r["power_w"] is None and r["temp_c"] is None and r["util_gpu_pct"] is None for r in lost)
    answering = [r for r in records if r["state"] == "ok"]
    assert all(isinstance(r["pstate"], int) and isinstance(r["power_w"], float) for r in answering)


def _assert_physical(sample: FleetSample, n_gpus: int) -> None:
    assert len(sample.gpus) == len(sample.processes) == sample.state.shape[0] == n_gpus
    m = sample.metrics
    ok = sample.state == GpuState.OK
    for name in SAMPLE_METRICS:
        assert m[name].shape == (n_gpus,)
        assert np.all(np.isnan(m[name][~ok])), name
    for name in ("util_gpu_pct", "util_mem_pct"):
        assert np.all((m[name][ok] >= 0) & (m[name][ok] <= 100)), name
    assert np.all(np.isnan(m["fan_pct"][ok]) | ((m["fan_pct"][ok] >= 0) & (m["fan_pct"][ok] <= 100)))
    assert np.all((m["power_w"][ok] > 0) & (m["power_w"][ok] <= m["power_limit_w"][ok] * 1.1))
    assert np.all((m["mem_used_bytes"][ok] >= 0) & (m["mem_used_bytes"][ok] <= m["mem_total_bytes"][ok]))
    shutdown = np.array([g.shutdown_temp_c for g in sample.gpus])
    assert np.all((m["temp_c"][ok] >= 10) & (m["temp_c"][ok] < shutdown[ok]))
    mem_max = np.array([math.nan if g.mem_max_temp_c is None else g.mem_max_temp_c for g in sample.gpus])
    assert not np.any(m["mem_temp_c"][ok] >= mem_max[ok])
    assert np.all((m["sm_clock_mhz"][ok] > 0) & (m["mem_clock_mhz"][ok] > 0))
    assert np.all(np.isin(m["pstate"][ok], np.arange(16)))
    assert np.all(m["pcie_link_gen"][ok] <= m["pcie_link_gen_max"][ok])
    assert np.all(m["pcie_link_width"][ok] <= m["pcie_link_width_max"][ok])
    assert np.all((m["pcie_tx_bytes_s"][ok] >= 0) & (m["pcie_rx_bytes_s"][ok] >= 0))
    for name in sorted(COUNTER_METRICS):
        assert np.all(m[name][ok] >= 0), name
    for name in sorted(COUNTER_METRICS - {"energy_j"}):  # events and rows are whole; joules are not
        assert np.all(m[name][ok] == np.floor(m[name][ok])), name
    for processes, used in zip(sample.processes, m["mem_used_bytes"], strict=True):
        assert not processes or sum(p.used_mem_bytes for p in processes) == used


@settings(max_examples=40, deadline=None)
@given(
    n_gpus=st.integers(min_value=1, max_value=300),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    offset_s=st.floats(min_value=0, max_value=60 * 86400),
    step_s=st.floats(min_value=0.5, max_value=7200),
)
def test_any_fleet_stays_within_physical_bounds(n_gpus: int, seed: int, offset_s: float, step_s: float) -> None:
    source = DemoSource(n_gpus, seed=seed, start_ts=T0)
    for ts in (T0 + offset_s, T0 + offset_s + step_s):
        _assert_physical(source.sample_at(ts), n_gpus)

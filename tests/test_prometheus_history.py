"""History from a real Prometheus (issue 15 items 1, 2, 5): `gpuops export --since ... --source
prometheus:URL`, `gpuops usage --history prometheus:URL`, one GPU's series and the fleet at a past
instant, against a Prometheus whose data the test backfilled with promtool, so every value and
timestamp compared is one written here."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gpuops.core import dcgm_schema as dcgm
from gpuops.core.sources.base import SourceError
from gpuops.core.sources.prometheus_history import PrometheusHistory
from gpuops.core.telemetry import GpuState
from gpuops.core.timefmt import iso_utc
from tests.allocations_support import make_history, open_repo
from tests.backfilled_prometheus import Written, backfilled_prometheus
from tests.samples import make_inventory

STEP_S = 15.0
# Two hours and a quarter of data ending ten minutes before the minute the module is loaded.
END = math.floor(__import__("time").time() / 3600) * 3600 - 3600.0
START = END - 2 * 3600.0
BEFORE = START - 15 * 60.0  # samples from here: the energy counter's baseline before START
A, B, C = (f"GPU-{i:08x}-0000-4000-8000-{i:012x}" for i in range(3))
GAP = (START + 3600.0, START + 3600.0 + 600.0)  # B has no sample in [GAP)
BLANK_AT = START + 1800.0  # B's temperature is DCGM's "not supported" there
LOST = (START + 4800.0, START + 5400.0)  # B lost, by gpuops_gpu_state
HOT = (START + 300.0, START + 420.0)  # A at its slowdown temperature
XID_A = START + 3000.0  # dcgm-exporter's last-XID gauge of A turns to 79 (critical)
XID_B = START + 600.0  # gpuops_xid_errors_total of B: one more XID 48 (critical); XID 13 (not) at XID_B + 600


def stamps() -> np.ndarray:
    return np.arange(BEFORE, END + 600.0, STEP_S)


def util_of(gpu: int, ts: float) -> float:
    k = int((ts - BEFORE) // STEP_S)
    return float((k * (7 + gpu)) % 101)


def temp_of(gpu: int, ts: float) -> float:
    if gpu == 0 and HOT[0] <= ts < HOT[1]:
        return 90.0
    return 40.0 + int((ts - BEFORE) // STEP_S) % 30 + 0.5 * gpu


def energy_mj(gpu: int, ts: float) -> float:
    return 1e9 + (ts - BEFORE) * (300_000.0 + 1000 * gpu)  # 300 W (+1 W per GPU index)


def power_of(gpu: int, ts: float) -> float:
    return 100.0 + int((ts - BEFORE) // STEP_S) % 50 + 0.25


def throttle_of(ts: float) -> float:
    return float(0x4 if int((ts - BEFORE) // STEP_S) % 2 else 0x40)


def present(gpu: int, ts: float) -> bool:
    return not (gpu == 1 and GAP[0] <= ts < GAP[1])


def gpu_series() -> Iterator[Written]:
    for gpu, uuid in enumerate((A, B)):
        labels = {"UUID": uuid, "gpu": str(gpu), "Hostname": f"node-{'ab'[gpu]}", "modelName": "NVIDIA H100 80GB HBM3",
                  "instance": f"node-{'ab'[gpu]}:9400", "job": "dcgm"}
        ts = [t for t in stamps() if present(gpu, t)]
        yield Written("DCGM_FI_DEV_GPU_UTIL", labels, [(t, util_of(gpu, t)) for t in ts])
        yield Written("DCGM_FI_DEV_POWER_USAGE", labels, [(t, power_of(gpu, t)) for t in ts])
        yield Written("DCGM_FI_DEV_FB_USED", labels, [(t, 1000.0 + int(t - BEFORE) // 60) for t in ts])
        yield Written("DCGM_FI_DEV_GPU_TEMP", labels, [
            (t, float(dcgm.DCGM_INT32_BLANK + 2) if (gpu == 1 and t == BLANK_AT) else temp_of(gpu, t)) for t in ts
        ])
        yield Written("DCGM_FI_DEV_SLOWDOWN_TEMP", labels, [(t, 87.0) for t in ts])
        yield Written("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", labels, [(t, energy_mj(gpu, t)) for t in ts], "counter")
        yield Written("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", labels, [(t, throttle_of(t)) for t in ts])
        if gpu == 0:
            yield Written(dcgm.XID_ERRORS, labels, [(t, 79.0 if t >= XID_A else 0.0) for t in ts])
        else:
            for code, when in (("48", XID_B), ("13", XID_B + 600)):
                counts = [(t, 2.0 if t >= when else 1.0) for t in ts]
                yield Written(dcgm.GPUOPS_XID_ERRORS_TOTAL, {**labels, "xid": code}, counts, "counter")
        states = [(t, 1.0 if gpu == 1 and LOST[0] <= t < LOST[1] else 0.0) for t in ts]
        yield Written(dcgm.GPUOPS_GPU_STATE, {**labels, dcgm.GPUOPS_GPU_STATE: "lost"}, states, "gauge")
    # C: a MIG GPU, two instances: memory adds up, utilization averages.
    mig = {"UUID": C, "gpu": "0", "Hostname": "node-c", "modelName": "NVIDIA A100-SXM4-80GB", "instance": "node-c:9400"}
    for instance, used, util in (("1", 100.0, 20.0), ("2", 200.0, 40.0)):
        labels = {**mig, "GPU_I_ID": instance, "GPU_I_PROFILE": "3g.40gb"}
        yield Written("DCGM_FI_DEV_FB_USED", labels, [(t, used) for t in stamps()])
        yield Written("DCGM_FI_DEV_GPU_UTIL", labels, [(t, util) for t in stamps()])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with backfilled_prometheus(tmp_path_factory.mktemp("prometheus"), gpu_series()) as base:
        yield base


def gpuops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gpuops", *args], capture_output=True, text=True, timeout=120)


def export(prometheus: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return gpuops("export", "--since", iso_utc(START), "--until", iso_utc(END), "--source", f"prometheus:{prometheus}",
                  "-o", str(out), *extra)


def test_raw_csv_export_is_the_samples_written_with_gaps_and_blanks_empty(prometheus: str, tmp_path: Path) -> None:
    out = tmp_path / "history.csv"
    result = export(prometheus, out, "--format", "csv", "--metric", "util_gpu_pct", "--metric", "temp_c",
                    "--metric", "mem_used_bytes", "--metric", "energy_j")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open(newline="")))
    assert list(rows[0]) == ["ts", "uuid", "node", "util_gpu_pct", "temp_c", "mem_used_bytes", "energy_j"]
    by_gpu: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_gpu.setdefault(row["uuid"], []).append(row)
    assert list(by_gpu) == [A, B, C]  # by node, then index
    written = [t for t in stamps() if START <= t < END]
    assert [r["ts"] for r in by_gpu[A]] == [iso_utc(t) for t in written]
    for row, t in zip(by_gpu[A], written, strict=True):
        assert row["node"] == "node-a"
        assert float(row["util_gpu_pct"]) == util_of(0, t)
        assert float(row["temp_c"]) == temp_of(0, t)
        assert int(row["mem_used_bytes"]) == (1000 + int(t - BEFORE) // 60) * 2**20
        assert float(row["energy_j"]) == pytest.approx(energy_mj(0, t) / 1000)
    # B's gap stays a gap: no rows there, none made up around it; its blank temperature is an empty cell.
    assert [r["ts"] for r in by_gpu[B]] == [iso_utc(t) for t in written if present(1, t)]
    blank = next(r for r in by_gpu[B] if r["ts"] == iso_utc(BLANK_AT))
    assert blank["temp_c"] == "" and float(blank["util_gpu_pct"]) == util_of(1, BLANK_AT)
    # C's MIG instances fold as in the live source; what C does not export is empty.
    assert {(r["mem_used_bytes"], r["util_gpu_pct"], r["temp_c"]) for r in by_gpu[C]} == {(str(300 * 2**20), "30", "")}


def test_minute_rollups_in_json_are_min_avg_max_of_each_minute_and_or_of_the_mask(prometheus: str, tmp_path: Path) -> None:
    out = tmp_path / "history.json"
    result = export(prometheus, out, "--format", "json", "--resolution", "1m", "--gpu", A, "--metric", "util_gpu_pct",
                    "--metric", "energy_j", "--metric", "throttle_reasons_mask")
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    assert document["format"] == "gpuops-history" and document["resolution"] == "1m"
    assert document["columns"] == ["ts", "uuid", "node", "util_gpu_pct_min", "util_gpu_pct_avg", "util_gpu_pct_max",
                                   "energy_j_last", "throttle_reasons_mask_or"]
    minutes = np.arange(START, END, 60.0)
    assert [r["ts"] for r in document["rows"]] == [iso_utc(m) for m in minutes]
    for row, minute in zip(document["rows"], minutes, strict=True):
        values = [util_of(0, t) for t in stamps() if minute <= t < minute + 60]
        assert (row["util_gpu_pct_min"], row["util_gpu_pct_max"]) == (min(values), max(values))
        assert row["util_gpu_pct_avg"] == round(sum(values) / len(values))  # whole percent, as the local export
        assert row["energy_j_last"] == pytest.approx(energy_mj(0, minute + 45) / 1000, abs=1)
        assert row["throttle_reasons_mask_or"] == 0x44


def test_one_gpu_series_is_bucketed_to_max_points_and_keeps_the_gap(prometheus: str) -> None:
    with PrometheusHistory.from_spec(f"prometheus:{prometheus}") as history:
        series = history.series(B, "util_gpu_pct", START, END, max_points=60)
        assert len(series) <= 60
        step = float(series.ts[1] - series.ts[0])
        assert step == 120.0
        gap_buckets = [t for t in series.ts if GAP[0] <= t and t + step <= GAP[1]]
        assert gap_buckets == []
        for t, low, mean, high in zip(series.ts, series.min, series.avg, series.max, strict=True):
            values = [util_of(1, s) for s in stamps() if t <= s < t + step and present(1, s)]
            assert (low, high) == (min(values), max(values))
            assert mean == pytest.approx(sum(values) / len(values))
        with pytest.raises(ValueError, match="max_points"):
            history.series(B, "util_gpu_pct", START, END, max_points=5000)


def test_the_fleet_at_a_past_instant_is_what_was_written_then(prometheus: str) -> None:
    at = START + 1234.0
    with PrometheusHistory.from_spec(f"prometheus:{prometheus}") as history:
        sample = history.fleet_at(at)
        assert sample.ts == at
        uuids = [g.uuid for g in sample.gpus]
        assert set(uuids) == {A, B, C}
        last = max(t for t in stamps() if t <= at)
        a = uuids.index(A)
        assert sample.metrics["util_gpu_pct"][a] == util_of(0, last)
        assert sample.metrics["power_w"][a] == power_of(0, last)
        assert sample.gpus[a].node == "node-a"
        # dcgm-exporter's last-XID gauge turning to 79 is an XID event of A, at that minute.
        assert [(e.ts, e.kind, e.code) for e in history.events(START, END, gpu_uuid=A)] == [(XID_A, "xid", 79)]
        # In B's lost spell its state says so; in its gap Prometheus has nothing for it.
        lost = history.fleet_at(LOST[0] + 60)
        assert lost.state[[g.uuid for g in lost.gpus].index(B)] == GpuState.LOST
        gap = history.fleet_at(GAP[0] + 400)
        b = [g.uuid for g in gap.gpus].index(B) if B in [g.uuid for g in gap.gpus] else None
        assert b is None or math.isnan(gap.metrics["util_gpu_pct"][b])


def test_usage_from_prometheus_counts_the_minutes_written(prometheus: str, tmp_path: Path) -> None:
    inventory = tuple(replace(g, uuid=u) for g, u in zip(make_inventory(3), (A, B, C), strict=True))
    db = make_history(tmp_path / "history.db", inventory)
    start_ms = round(START * 1000)
    repo = open_repo(db)
    try:
        customer = repo.add_customer("acme")
        contract = repo.add_contract(customer.id, "c1", "reserved", "H100", 2, start_ms, None, 2.0)
        repo.allocate(contract.id, [A, B], start_ms, confirm=True)
    finally:
        repo.close()
    result = gpuops("usage", "--db", str(db), "--since", iso_utc(START), "--until", iso_utc(END),
                    "--history", f"prometheus:{prometheus}", "--format", "json")
    assert result.returncode == 0, result.stderr
    [acme] = json.loads(result.stdout)
    minutes = np.arange(START, END, 60.0)
    used_h = 0.0
    for gpu in (0, 1):
        for m in minutes:
            values = [util_of(gpu, t) for t in stamps() if m <= t < m + 60 and present(gpu, t)]
            used_h += (sum(values) / len(values) / 100 / 60) if values else 0.0
    assert acme["allocated_gpu_hours"] == pytest.approx(4.0)
    assert acme["used_gpu_hours"] == pytest.approx(used_h, abs=1e-4)
    # Energy from the counter: A over the whole period; B's gap minutes have no bucket, so the first
    # minute after it has the whole gap's delta.
    energy_kwh = sum((energy_mj(g, END - STEP_S) - energy_mj(g, START - STEP_S)) / 1000 / 3.6e6 for g in (0, 1))
    assert acme["energy_kwh"] == pytest.approx(energy_kwh, rel=1e-4)
    # Unavailable: A's hot minutes (temperature at its DCGM slowdown threshold) and the hour after
    # its critical XID by the last-XID gauge; B's lost spell and the hour after its critical XID by
    # the agent's counter (its XID 13 is not critical).
    unavailable_h = ((HOT[1] - HOT[0]) + 3600 + (LOST[1] - LOST[0]) + 3600) / 3600
    assert acme["unavailable_gpu_hours"] == pytest.approx(unavailable_h, abs=1e-6)
    # The same book without --history reads the local history, which has none of these readings.
    local = gpuops("usage", "--db", str(db), "--since", iso_utc(START), "--until", iso_utc(END), "--format", "json")
    assert json.loads(local.stdout)[0]["used_gpu_hours"] == 0.0


def test_an_unreachable_prometheus_or_a_bad_spec_fails_with_a_clear_line(tmp_path: Path) -> None:
    from tests.servers import free_port

    down = f"prometheus:http://127.0.0.1:{free_port()}"
    result = export(down.removeprefix("prometheus:"), tmp_path / "out.csv", "--format", "csv")
    assert result.returncode == 1
    assert "Prometheus at http://127.0.0.1" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out.csv").exists()
    bad = gpuops("usage", "--since", "1h", "--history", "http://nowhere", "--format", "json")
    assert bad.returncode == 2 and "prometheus:" in bad.stderr
    with pytest.raises(SourceError, match="password"):
        PrometheusHistory.from_spec("prometheus:http://127.0.0.1:9090?password=x")


def test_tls_and_basic_auth_as_for_the_prometheus_source(tmp_path: Path) -> None:
    import warnings

    from tests.agent_helpers import self_signed_certificate

    with warnings.catch_warnings():  # bcrypt for Prometheus' web config: crypt is deprecated, but here until 3.13
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

    cert, key = self_signed_certificate(tmp_path)
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    web = tmp_path / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"basic_auth_users:\n  alice: {json.dumps(crypt.crypt('s3cret', crypt.mksalt(crypt.METHOD_BLOWFISH)))}\n"
    )
    labels = {"UUID": A, "gpu": "0", "Hostname": "node-a", "instance": "node-a:9400"}
    written = [Written("DCGM_FI_DEV_GPU_UTIL", labels, [(START + 15 * k, float(k)) for k in range(8)])]
    with backfilled_prometheus(tmp_path, written, web_config=web, scheme="https") as base:
        out = tmp_path / "out.csv"
        ok = export(f"{base}?ca_file={cert}&username=alice&password_file={password}", out, "--format", "csv",
                    "--metric", "util_gpu_pct")
        assert ok.returncode == 0, ok.stderr
        assert [row["util_gpu_pct"] for row in csv.DictReader(out.open(newline=""))] == [str(k) for k in range(8)]
        untrusted = export(f"{base}?username=alice&password_file={password}", tmp_path / "x.csv", "--format", "csv")
        assert untrusted.returncode == 1 and "certificate" in untrusted.stderr.lower()
        wrong = tmp_path / "wrong"
        wrong.write_text("guess")
        refused = export(f"{base}?ca_file={cert}&username=alice&password_file={wrong}", tmp_path / "y.csv", "--format", "csv")
        assert refused.returncode == 1 and "401" in refused.stderr
        assert not (tmp_path / "x.csv").exists() and not (tmp_path / "y.csv").exists()


# ------------------------------------------------------------------ the console's history loader on Prometheus

LOADED_MS = 30_000


def loader_answer(qtbot, loader, resource: str, query) -> tuple[str, object]:
    """Request `query` for `resource` and wait for the loader's signal: ("loaded" | "failed", payload)."""
    answers: list[tuple[str, object]] = []
    loader.loaded.connect(lambda r, payload: answers.append(("loaded", payload)) if r == resource else None)
    loader.failed.connect(lambda r, message: answers.append(("failed", message)) if r == resource else None)
    loader.request(resource, query)
    qtbot.waitUntil(lambda: bool(answers), timeout=LOADED_MS)
    return answers[0]


def test_gpu_plots_trends_and_replay_span_read_prometheus_through_the_loader(qtbot, prometheus: str, tmp_path: Path) -> None:
    from gpuops.core.sources.prometheus import PrometheusSpec
    from gpuops.gui.gpu.history_queries import fleet_trends, gpu_history
    from gpuops.gui.workers.history_loader import HistoryLoader

    loader = HistoryLoader(tmp_path / "no-history.db", prometheus=PrometheusSpec.parse(f"prometheus:{prometheus}"))
    try:
        kind, detail = loader_answer(qtbot, loader, "detail", lambda reader: gpu_history(reader, B, START, END, 120))
        assert kind == "loaded", detail
        util = detail.values["util_gpu_pct"]
        ts = detail.ts["util_gpu_pct"]
        assert 0 < len(ts) <= 120 and float(ts[1] - ts[0]) == 60.0
        assert not [t for t in ts if GAP[0] <= t < GAP[1]]  # the gap is no points, not a line across it
        for t, mean in zip(ts, util, strict=True):
            values = [util_of(1, s) for s in stamps() if t <= s < t + 60 and present(1, s)]
            assert mean == pytest.approx(sum(values) / len(values))
        memory = detail.values["mem_used_gib"]
        assert memory[0] == pytest.approx((1000 + int(ts[0] - BEFORE) // 60) / 1024)
        assert detail.resolution == "Prometheus, 60s buckets"
        # XIDs by the agent's counter (critical or not) and the lost spell by gpuops_gpu_state, to the minute.
        assert [(e.ts, e.kind, e.code) for e in detail.events] == [
            (XID_B, "xid", 48), (XID_B + 600, "xid", 13), (LOST[0], "gpu_lost", None), (LOST[1], "gpu_recovered", None),
        ]

        kind, trends = loader_answer(qtbot, loader, "trends", lambda reader: fleet_trends(reader, START, END, 120))
        assert kind == "loaded", trends
        at = list(trends.ts).index(LOST[0] + 60)
        assert trends.values["n_lost"][at] == 1 and trends.values["n_ok"][at] == 2
        minute = [s for s in stamps() if LOST[0] + 60 <= s < LOST[0] + 120]
        means = [sum(util_of(g, s) for s in minute) / len(minute) for g in (0, 1)] + [30.0]
        assert trends.values["util_gpu_mean_pct"][at] == pytest.approx(sum(means) / 3)

        kind, span = loader_answer(qtbot, loader, "span", lambda reader: reader.time_range())
        assert kind == "loaded", span
        first, last = span
        assert BEFORE - 3600 <= first <= BEFORE + 3600 and last >= END
    finally:
        loader.stop()


def test_a_failing_prometheus_answers_the_plot_with_why(qtbot, tmp_path: Path) -> None:
    from gpuops.core.sources.prometheus import PrometheusSpec
    from gpuops.gui.gpu.history_queries import gpu_history
    from gpuops.gui.workers.history_loader import HistoryLoader
    from tests.servers import free_port

    spec = PrometheusSpec.parse(f"prometheus:http://127.0.0.1:{free_port()}?timeout=2")
    loader = HistoryLoader(tmp_path / "no-history.db", prometheus=spec)
    try:
        kind, message = loader_answer(qtbot, loader, "detail", lambda reader: gpu_history(reader, A, START, END))
        assert kind == "failed"
        assert str(message).startswith("Prometheus at http://127.0.0.1:") and "refused" in str(message).lower()
    finally:
        loader.stop()


def test_the_gpu_detail_plots_show_prometheus_history_or_say_why_they_are_empty(qtbot, prometheus: str, tmp_path: Path) -> None:
    from gpuops.core.sources.prometheus import PrometheusSpec
    from gpuops.gui.gpu.detail_panel import DetailPanel
    from gpuops.gui.gpu.time_range import TimeRange
    from gpuops.gui.workers.history_loader import HistoryLoader
    from tests.servers import free_port

    with PrometheusHistory.from_spec(f"prometheus:{prometheus}") as history:
        sample = history.fleet_at(START + 600)
    assert sample is not None
    position = [g.uuid for g in sample.gpus].index(B)
    for spec, works in ((f"prometheus:{prometheus}", True), (f"prometheus:http://127.0.0.1:{free_port()}?timeout=2", False)):
        panel = DetailPanel(100)
        qtbot.addWidget(panel)
        loader = HistoryLoader(tmp_path / "no-history.db", prometheus=PrometheusSpec.parse(spec))
        try:
            panel.set_loader(loader)
            panel.show_gpu(sample, position, np.empty(0), {})
            panel.set_range(TimeRange("Custom", start=START, end=END))
            if works:
                qtbot.waitUntil(lambda shown=panel: shown.history is not None, timeout=LOADED_MS)
                ts, _ = panel.plots.curves["util_gpu_pct"].getData()
                assert len(ts) == len(panel.history.ts["util_gpu_pct"]) > 100
                assert not [t for t in ts if GAP[0] <= t < GAP[1]]
                assert "(Prometheus, 60s buckets)" in panel.history_status.text()
            else:
                qtbot.waitUntil(lambda shown=panel: "History unavailable" in shown.history_status.text(), timeout=LOADED_MS)
                assert "Prometheus at http://127.0.0.1:" in panel.history_status.text()
                assert panel.history is None
        finally:
            loader.stop()


def test_a_console_on_a_prometheus_source_reads_its_history_there(qtbot, tmp_path: Path) -> None:
    from gpuops.gui.window.main_window import MainWindow

    def no_source():
        raise SourceError("not opened in this test")

    spec = "prometheus:https://prom.example:9090/prom?selector=job%3D%22dcgm%22"
    window = MainWindow(no_source, 1.0, history_prometheus=spec, read_only=True)  # no local history at all
    qtbot.addWidget(window)
    loader = window.ops.loader
    assert loader is not None and loader.prometheus is not None
    assert (loader.prometheus.base_url, loader.prometheus.selector) == ("https://prom.example:9090/prom", 'job="dcgm"')
    local = MainWindow(no_source, 1.0, history_db=tmp_path / "history.db", read_only=True)
    qtbot.addWidget(local)
    assert local.ops.loader is not None and local.ops.loader.prometheus is None
    loader.stop()
    local.ops.loader.stop()


def test_an_export_since_long_ago_starts_at_the_oldest_data_and_loses_none(prometheus: str, tmp_path: Path) -> None:
    with PrometheusHistory.from_spec(f"prometheus:{prometheus}") as history:
        earliest = history.earliest(END - 300 * 86_400.0, END)
        assert BEFORE - 4 * 3600 <= earliest <= BEFORE  # to the hour, within the blocks Prometheus holds
        empty = (BEFORE - 3 * 86_400.0, BEFORE - 2 * 86_400.0)
        assert history.earliest(*empty) == empty[1]  # nothing there: nothing to walk
    near, far = tmp_path / "near.csv", tmp_path / "far.csv"
    picked = ("--format", "csv", "--gpu", A, "--metric", "util_gpu_pct")
    assert export(prometheus, near, *picked).returncode == 0
    result = gpuops("export", "--since", "300d", "--until", iso_utc(END), "--source", f"prometheus:{prometheus}",
                    "-o", str(far), *picked)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(far.open(newline="")))
    assert rows[0]["ts"] == iso_utc(BEFORE)  # the samples before START too, nothing earlier made up
    assert far.read_text().endswith(near.read_text().split("\n", 1)[1])

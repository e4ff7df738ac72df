"""`gpuops alerts export-rules --format prometheus`: the rules file promtool accepts, on which
Prometheus fires the same rules on the same GPUs as gpuops' own engine, with the same labels
and texts; skipped, custom and disabled rules.

The series are dcgm-exporter's: the label sets and readings of three GPUs of a real capture
(tests/fixtures/dcgm-exporter/aicr_h100x8_gpu-node-1_pods_sampled.prom, one of them with pod
labels). Fields that capture lacks (slowdown temperature, power limit, framebuffer, throttle
reasons, ECC, last XID) get the values the scenarios below give them.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpuops.core.alerts.engine import AlertEngine
from gpuops.core.alerts.model import Alert, AlertState
from gpuops.core.alerts.persistence import AlertStore
from gpuops.core.alerts.promrules import DCGM_EXPORTER_DEFAULT_COUNTERS, WORKLOAD_LABELS, prometheus_rules
from gpuops.core.alerts.rules import Rule, parse_rules, rules_to_text
from gpuops.core.dcgm_schema import DCGM_FP64_BLANK, DCGM_INT32_BLANK, DCGM_INT64_BLANK
from gpuops.core.sources.dcgm_fleet import FleetBook, TargetResult, classify, gather
from gpuops.core.sources.exposition import ExpositionReader
from gpuops.core.sources.factory import open_source
from gpuops.core.store.connection import open_database
from tests.servers import free_port, stop, wait_until
from tests.tools import require_tool

FIXTURES = Path(__file__).parent / "fixtures" / "dcgm-exporter"
CAPTURE = FIXTURES / "aicr_h100x8_gpu-node-1_pods_sampled.prom"
NODE = "gpu-node-1"
MODEL = "NVIDIA H100 80GB HBM3"
T0 = 1_763_798_400.0
MINUTES = 11
RUNBOOKS = "https://runbooks.example.org/gpu"
SLOWDOWN_C = 93.0
HEALTHY, HOT, ECC = "0", "1", "2"


def gpuops(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gpuops", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def history(tmp_path: Path) -> Path:
    path = tmp_path / "history.sqlite"
    conn, _ = open_database(path, create=True)
    AlertStore(conn).rules()  # seeds the built-in rules
    conn.close()
    return path


def stored_rules(path: Path) -> tuple[Rule, ...]:
    conn, _ = open_database(path, create=False)
    try:
        return AlertStore(conn).rules()
    finally:
        conn.close()


def export(history: Path, out: Path) -> subprocess.CompletedProcess[str]:
    result = gpuops("alerts", "--db", str(history), "export-rules", "--format", "prometheus", "-o", str(out),
                    env={"GPUOPS_RUNBOOK_BASE_URL": RUNBOOKS})
    assert result.returncode == 0, result.stderr
    return result


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    tool = require_tool("promtool")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


# ------------------------------------------------------------------ the capture and scenarios


def captured_gpus() -> dict[str, tuple[dict[str, str], dict[str, float]]]:
    """gpu index -> (dcgm-exporter labels, readings by metric) of the capture."""
    gpus: dict[str, tuple[dict[str, str], dict[str, float]]] = {}
    for family in text_string_to_metric_families(CAPTURE.read_text(encoding="utf-8")):
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if v}  # pod_uid="" is no label
            gpus.setdefault(labels["gpu"], (labels, {}))[1][sample.name] = sample.value
    return gpus


Series = dict[tuple[str, str], list[float]]  # (gpu index, metric) -> one value a minute


def scenario(changes: Mapping[tuple[str, str], list[float]], gpus: tuple[str, ...] = (HEALTHY, HOT, ECC)) -> Series:
    """Every captured reading held for MINUTES, the missing fields healthy, then `changes`."""
    captured = captured_gpus()
    series: Series = {}
    for gpu in gpus:
        readings = {**captured[gpu][1], "DCGM_FI_DEV_SLOWDOWN_TEMP": SLOWDOWN_C, "DCGM_FI_DEV_POWER_MGMT_LIMIT": 700.0,
                    "DCGM_FI_DEV_FB_USED": 1024.0, "DCGM_FI_DEV_FB_FREE": 80_000.0, "DCGM_FI_DEV_FB_RESERVED": 535.0,
                    "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS": 1.0, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": 0.0,
                    "DCGM_FI_DEV_XID_ERRORS": 0.0}
        for metric, value in readings.items():
            series[gpu, metric] = [value] * MINUTES
    series.update(changes)
    return series


def selector(metric: str, labels: Mapping[str, str]) -> str:
    return metric + "{" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())) + "}"


def exposition(series: Series, minute: int) -> str:
    labels = {gpu: labels for gpu, (labels, _) in captured_gpus().items()}
    return "".join(f"{selector(metric, labels[gpu])} {values[minute]!r}\n" for (gpu, metric), values in series.items())


def engine_alerts(rules: tuple[Rule, ...], series: Series) -> list[dict[tuple[str, str], Alert]]:
    """What gpuops' engine fires, minute by minute, reading the same series as dcgm-exporter text."""
    return engine_firing(rules, [exposition(series, minute) for minute in range(MINUTES)])


def engine_firing(rules: tuple[Rule, ...], scrapes: list[str]) -> list[dict[tuple[str, str], Alert]]:
    """The engine's firing alerts after each scrape (one a minute), read through the same path
    the scrape source takes: {(rule, gpu index or "node"): alert}."""
    book = FleetBook()
    reader = ExpositionReader(lambda name, labels: classify(name, labels, NODE))
    engine = AlertEngine(rules, poll_interval_s=60.0)
    firing = []
    for minute, text in enumerate(scrapes):
        now = T0 + 60 * minute
        readings = gather(reader.read(text))
        sample = book.build([TargetResult("capture", NODE, readings=readings)], ts=now)
        engine.evaluate(sample, now=now)
        firing.append({(a.rule, a.labels.get("gpu_index", "node")): a for a in engine.active if a.state is AlertState.FIRING})
    return firing


Annotations = Callable[[str, str, int, Alert], dict[str, str]]


def engine_texts(rule: str, gpu: str, minute: int, alert: Alert) -> dict[str, str]:
    """Prometheus must say what gpuops says: its summary and runbook text (no runbook, no description)."""
    texts = {"summary": alert.summary, "runbook_url": f"{RUNBOOKS}/{rule}"}
    return {**texts, "description": alert.runbook} if alert.runbook else texts


def promtool_test(tmp_path: Path, rules_file: Path, series: Series, firing: list[dict[tuple[str, str], Alert]],
                  rule_names: list[str], annotations: Annotations) -> subprocess.CompletedProcess[str]:
    """`promtool test rules` expecting, at every minute and for every exported rule, exactly the
    alerts the engine fires, with the forwarder's labels. Test files are JSON (which is YAML)."""
    labels = {gpu: labels for gpu, (labels, _) in captured_gpus().items()}
    # An alert is about the GPU: the workload on it (pod labels) is not part of its labels.
    alert_labels = {gpu: {k: v for k, v in gpu_labels.items() if k not in WORKLOAD_LABELS} for gpu, gpu_labels in labels.items()}
    alert_labels["node"] = {"Hostname": NODE}  # a node rule's alert: the node's labels only
    severity = {r.name: r.severity.label for r in stored_rules(tmp_path / "history.sqlite")}
    cases = []
    for minute in range(MINUTES):
        for name in rule_names:
            expected = [
                {"exp_labels": {**alert_labels[gpu], "severity": severity[name], "node": NODE},
                 "exp_annotations": annotations(name, gpu, minute, alert)}
                for (rule, gpu), alert in sorted(firing[minute].items()) if rule == name
            ]
            cases.append({"eval_time": f"{minute}m", "alertname": name, "exp_alerts": expected})
    test = {
        "rule_files": [str(rules_file)], "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": selector(metric, labels[gpu]), "values": " ".join(repr(v) for v in values)}
                             for (gpu, metric), values in series.items()],
            "alert_rule_test": cases,
        }],
    }
    test_file = tmp_path / "test.json"
    test_file.write_text(json.dumps(test, indent=1, ensure_ascii=False), encoding="utf-8")
    return promtool("test", "rules", str(test_file), cwd=tmp_path)


def exported_names(rules_file: Path) -> list[str]:
    """Alert names as promtool's parser sees them (`promtool check rules` counts them too)."""
    lines = rules_file.read_text(encoding="utf-8").splitlines()
    return [json.loads(line.split("alert: ", 1)[1]) for line in lines if line.startswith("      - alert: ")]


# ------------------------------------------------------------------ tests


def test_promtool_accepts_the_file_and_skipped_rules_are_listed_with_their_reason(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "gpuops-rules.yml"
    result = export(history, out)
    checked = promtool("check", "rules", str(out), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    names = exported_names(out)
    assert f"SUCCESS: {len(names)} rules found" in checked.stdout
    assert {"gpu_temp_near_slowdown", "gpu_temp_at_slowdown", "ecc_uncorrectable", "row_remap_failure", "xid_critical",
            "hw_throttle", "power_at_limit", "memory_nearly_full", "pcie_gen_degraded"} <= set(names)
    skipped = {"hbm_temp_near_max": "HBM maximum", "gpu_lost": "GPU state", "node_gpus_missing": "most GPUs",
               "node_telemetry_stale": "staleness", "source_down": "telemetry source", "gpu_data_stale": "freshness",
               "allocated_idle": "allocations", "busy_unallocated": "allocations"}
    text = out.read_text(encoding="utf-8")
    header = text.split("\ngroups:", 1)[0]
    for name, why in skipped.items():
        assert name not in names
        [comment] = [line for line in header.splitlines() if line.startswith(f"#   {name}: ")]
        assert why in comment
        [stderr_line] = [line for line in result.stderr.splitlines() if line.startswith(f"  {name}: ")]
        assert why in stderr_line
    assert f"wrote {len(names)} Prometheus rules to {out}" in result.stderr
    # Every enabled rule is exported or skipped, none lost.
    enabled = {r.name for r in stored_rules(history) if r.enabled}
    assert enabled == set(names) | {line.split(":")[0].strip() for line in result.stderr.splitlines()[2:]}
    # The file says which series a rule needs beyond dcgm-exporter's default counters.
    assert "#   gpu_temp_at_slowdown: DCGM_FI_DEV_GPU_TEMP, DCGM_FI_DEV_SLOWDOWN_TEMP*" in header


def test_over_temperature_and_ecc_gpus_fire_the_same_rules_in_prometheus_as_in_gpuops(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "gpuops-rules.yml"
    export(history, out)
    temp = captured_gpus()[HOT][1]["DCGM_FI_DEV_GPU_TEMP"]
    series = scenario({
        (HOT, "DCGM_FI_DEV_GPU_TEMP"): [temp] + [90.0] * (MINUTES - 1),  # within 5 °C of slowdown from minute 1
        (ECC, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"): [0.0, 0.0] + [2.0] * (MINUTES - 2),
        (ECC, "DCGM_FI_DEV_XID_ERRORS"): [0.0] * 4 + [79.0] * (MINUTES - 4),  # fell off the bus: critical
        (HOT, "DCGM_FI_DEV_XID_ERRORS"): [0.0] * 6 + [5000.0] * (MINUTES - 6),  # uncatalogued: warning
    })
    firing = engine_alerts(stored_rules(history), series)
    # gpuops' own verdict first, so that agreement cannot mean "both silent".
    assert set(firing[2]) == {("ecc_uncorrectable", ECC)}
    assert set(firing[3]) == {("ecc_uncorrectable", ECC), ("gpu_temp_near_slowdown", HOT)}  # after for: 2m
    assert set(firing[MINUTES - 1]) == {("ecc_uncorrectable", ECC), ("gpu_temp_near_slowdown", HOT), ("xid_critical", ECC),
                                        ("xid_warning", HOT)}
    assert not any(gpu == HEALTHY for minute in firing for _, gpu in minute)
    hot = firing[3]["gpu_temp_near_slowdown", HOT]
    assert hot.summary == f"{NODE} GPU 1 ({MODEL}): 90 °C, within 5 °C of its slowdown threshold 93 °C"
    xid = firing[MINUTES - 1]["xid_critical", ECC]
    assert xid.summary == f"{NODE} GPU 2 ({MODEL}): XID 79 GPU has fallen off the bus: RESTART_BM"
    assert xid.runbook == "Catalogue action: Restart bare metal, system should be restarted"
    unknown = firing[MINUTES - 1]["xid_warning", HOT]
    assert unknown.summary == f"{NODE} GPU 1 ({MODEL}): XID 5000 not in NVIDIA's XID catalogue: no action given"
    result = promtool_test(tmp_path, out, series, firing, exported_names(out), engine_texts)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_hysteresis_keeps_a_hot_gpu_firing_until_it_is_clear_in_both(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "gpuops-rules.yml"
    export(history, out)
    temps = [30.0, 95.0, 95.0, 92.0, 91.0, 90.0, 90.0, 87.0, 85.0, 85.0, 30.0]
    series = scenario({(HOT, "DCGM_FI_DEV_GPU_TEMP"): temps}, gpus=(HOT,))
    firing = engine_alerts(stored_rules(history), series)
    at = [("gpu_temp_at_slowdown", HOT) in minute for minute in firing]
    near = [("gpu_temp_near_slowdown", HOT) in minute for minute in firing]
    # at: fires at 95 (>= 93), holds at 92 and 91 (clear below 91), ends at 90.
    assert at == [False, True, True, True, True, False, False, False, False, False, False]
    # near: fires after 2 min (>= 88), holds down to 86 (clear below 86), ends at 85.
    assert near == [False, False, False, True, True, True, True, True, False, False, False]

    def texts(rule: str, gpu: str, minute: int, alert: Alert) -> dict[str, str]:
        """Prometheus renders the texts with the current value, gpuops keeps those it fired with."""
        what = ("at or over its slowdown threshold 93 °C" if rule == "gpu_temp_at_slowdown"
                else "within 5 °C of its slowdown threshold 93 °C")
        return {**engine_texts(rule, gpu, minute, alert), "summary": f"{NODE} GPU 1 ({MODEL}): {temps[minute]:.0f} °C, {what}"}

    result = promtool_test(tmp_path, out, series, firing, ["gpu_temp_at_slowdown", "gpu_temp_near_slowdown"], texts)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_custom_rules_are_exported_and_disabled_ones_are_not(history: Path, tmp_path: Path) -> None:
    rules = list(stored_rules(history))
    custom = [
        {"name": "gpu_hot_custom", "severity": "critical", "for_s": 90, "keep_firing_for_s": 300,
         "conditions": [{"signal": "temp_c", "op": ">", "value": 80}], "scope": {"kind": "node", "values": [NODE]},
         "summary": "{node} GPU {gpu_index}: {value:.1f} °C ({value}) over {threshold} °C", "runbook": ""},
        {"name": "site_only_custom", "severity": "warning", "conditions": [{"signal": "temp_c", "op": ">", "value": 80}],
         "scope": {"kind": "site", "values": ["dc1"]}, "summary": "{node}: hot"},
        {"name": "model_scoped_custom", "severity": "warning", "conditions": [{"signal": "temp_c", "op": ">", "value": 80}],
         "scope": {"kind": "model", "values": [MODEL, "NVIDIA A100 (test)"]}, "summary": "{model}: hot"},
        {"name": "other_model_custom", "severity": "warning", "conditions": [{"signal": "temp_c", "op": ">", "value": 80}],
         "scope": {"kind": "model", "values": ["NVIDIA L40S"]}, "summary": "{model}: hot"},
        {"name": "node_by_model_custom", "target": "node", "severity": "info", "summary": "{node}",
         "conditions": [{"signal": "gpu_count", "op": "<", "value": 8}], "scope": {"kind": "model", "values": [MODEL]}},
        {"name": "disabled_custom", "severity": "warning", "enabled": False,
         "conditions": [{"signal": "temp_c", "op": ">", "value": 10}], "summary": "{node}: warm"},
    ]
    document = json.loads(rules_to_text(rules))
    document["rules"] = [r for r in document["rules"] if r["name"] != "ecc_uncorrectable"] + custom
    document["rules"].append({**next(r.to_dict() for r in rules if r.name == "ecc_uncorrectable"), "enabled": False})
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(json.dumps(document), encoding="utf-8")
    imported = gpuops("alerts", "--db", str(history), "rules", "import", str(rules_file))
    assert imported.returncode == 0, imported.stderr

    out = tmp_path / "gpuops-rules.yml"
    result = export(history, out)
    assert promtool("check", "rules", str(out), cwd=tmp_path).returncode == 0
    names = exported_names(out)
    assert "gpu_hot_custom" in names
    assert "disabled_custom" not in names and "ecc_uncorrectable" not in names
    assert "disabled_custom" not in result.stderr and "ecc_uncorrectable" not in result.stderr  # not "skipped": off
    assert "# Not exported, disabled in gpuops: disabled_custom, ecc_uncorrectable" in out.read_text(encoding="utf-8")
    assert any(line.startswith("  site_only_custom: its site scope") for line in result.stderr.splitlines())
    assert any(line.startswith("  node_by_model_custom: a node rule scoped by model") for line in result.stderr.splitlines())

    series = scenario({(HOT, "DCGM_FI_DEV_GPU_TEMP"): [30.0, 85.5, 85.5, 85.5, 85.5, 85.5, 70.0, 70.0, 70.0, 70.0, 70.0],
                       (ECC, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"): [0.0] + [3.0] * (MINUTES - 1)})
    firing = engine_alerts(stored_rules(history), series)
    assert [("model_scoped_custom", HOT) in minute for minute in firing] == [False] + [True] * 5 + [False] * 5
    assert not any(rule == "other_model_custom" for minute in firing for rule, _ in minute)
    custom_firing = [("gpu_hot_custom", HOT) in minute for minute in firing]
    # for 90 s at one-minute polls: firing at minute 3; keep_firing_for 5 min after the last hot minute (5).
    assert custom_firing == [False, False, False, True, True, True, True, True, True, True, False]
    assert not any(rule == "ecc_uncorrectable" for minute in firing for rule, _ in minute)
    # Prometheus counts keep_firing_for from the first evaluation the condition is false (minute
    # 6), gpuops from the last it held (5): Prometheus resolves one evaluation later.
    in_prometheus = [*firing[:-1], {**firing[-1], ("gpu_hot_custom", HOT): firing[-2]["gpu_hot_custom", HOT]}]
    result = promtool_test(tmp_path, out, series, in_prometheus, ["gpu_hot_custom", "model_scoped_custom", "other_model_custom"],
                           engine_texts)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


USED_MIB = 100_000.0


def test_node_rules_relative_thresholds_and_literal_braces_read_the_same(history: Path, tmp_path: Path) -> None:
    custom = [
        {"name": "node_short_of_gpus", "target": "node", "severity": "warning", "for_s": 60,
         "conditions": [{"signal": "gpu_count", "op": "<", "value": 4}],
         "summary": "{node}: {value:.0f} GPUs ({value}) {{literal}} 100%", "runbook": "Count them: `nvidia-smi -L`."},
        {"name": "memory_half_custom", "severity": "info",
         "conditions": [{"signal": "mem_used_bytes", "op": ">=", "ref": "mem_total_bytes", "scale": 0.5}],
         "summary": "{gpu} ({model}): {value:.0f} B used of {limit:.0f} B, over {threshold:.0f} B",
         "runbook": "{customer} {site}"},
    ]
    document = json.loads(rules_to_text(stored_rules(history)))
    document["rules"] += custom
    (tmp_path / "rules.json").write_text(json.dumps(document), encoding="utf-8")
    assert gpuops("alerts", "--db", str(history), "rules", "import", str(tmp_path / "rules.json")).returncode == 0
    out = tmp_path / "gpuops-rules.yml"
    export(history, out)
    series = scenario({(HOT, "DCGM_FI_DEV_FB_USED"): [1024.0] * 3 + [USED_MIB] * (MINUTES - 3)})
    firing = engine_alerts(stored_rules(history), series)
    assert [("node_short_of_gpus", "node") in minute for minute in firing] == [False] + [True] * (MINUTES - 1)
    assert [("memory_half_custom", HOT) in minute for minute in firing] == [False] * 3 + [True] * (MINUTES - 3)
    total = int(USED_MIB + 80_000 + 535) * 2**20  # used + free + reserved, as the sources derive it
    uuid = captured_gpus()[HOT][0]["UUID"]
    half = firing[3]["memory_half_custom", HOT]
    assert half.summary == f"{uuid} ({MODEL}): {int(USED_MIB) * 2**20} B used of {total} B, over {total // 2} B"
    assert half.runbook == "(no customer) ?"  # no customers, no topology: what the engine says without them
    assert firing[1]["node_short_of_gpus", "node"].summary == f"{NODE}: 3 GPUs (3.0) {{literal}} 100%"
    result = promtool_test(tmp_path, out, series, firing, ["node_short_of_gpus", "memory_half_custom"], engine_texts)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_mig_instances_and_pods_fold_into_their_gpu_as_in_gpuops(tmp_path: Path) -> None:
    """A real MIG capture (two A30s, four and two instances): one alert per GPU, not per instance."""
    [rule] = parse_rules([{"name": "sm_clock_custom", "severity": "info", "summary": "{node} GPU {gpu_index}: {value:.0f} MHz",
                           "conditions": [{"signal": "sm_clock_mhz", "op": ">=", "value": 1400}]}])
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(prometheus_rules([rule]).to_yaml(), encoding="utf-8")
    text = (FIXTURES / "dcgm-exporter-issue-317_a30-mig.prom").read_text(encoding="utf-8")
    firing = engine_firing((rule,), [text, text])
    assert sorted(gpu for _, gpu in firing[1]) == ["0", "1"]
    samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
    assert len({tuple(sorted(s.labels.items())) for s in samples if s.name == "DCGM_FI_DEV_SM_CLOCK"}) == 6
    expected = []
    for (_, gpu), alert in sorted(firing[1].items()):
        [labels] = {tuple((k, v) for k, v in sorted(s.labels.items()) if k not in WORKLOAD_LABELS)
                    for s in samples if s.labels["gpu"] == gpu}
        expected.append({"exp_labels": {**dict(labels), "severity": "info", "node": alert.labels["node"]},
                         "exp_annotations": {"summary": alert.summary}})
    test = {"rule_files": [str(rules_file)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": selector(s.name, s.labels), "values": f"{s.value!r}x2"} for s in samples],
        "alert_rule_test": [{"eval_time": "1m", "alertname": "sm_clock_custom", "exp_alerts": expected}],
    }]}
    (tmp_path / "test.json").write_text(json.dumps(test), encoding="utf-8")
    result = promtool("test", "rules", str(tmp_path / "test.json"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_dcgm_blank_values_fire_nothing_in_either(history: Path, tmp_path: Path) -> None:
    """DCGM's not-supported sentinels (a GPU without ECC, no throttle reasons, no slowdown
    temperature) are no readings: neither gpuops nor Prometheus may compare them."""
    out = tmp_path / "gpuops-rules.yml"
    export(history, out)
    series = scenario({
        (ECC, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"): [float(DCGM_INT64_BLANK + 2)] * MINUTES,  # not supported
        (ECC, "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"): [float(DCGM_INT32_BLANK + 3)] * MINUTES,  # not permissioned
        (ECC, "DCGM_FI_DEV_SLOWDOWN_TEMP"): [DCGM_FP64_BLANK] * MINUTES,  # blank
        (HOT, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"): [0.0] * 5 + [1.0] * (MINUTES - 5),  # a real one, for contrast
    })
    firing = engine_alerts(stored_rules(history), series)
    assert set(firing[MINUTES - 1]) == {("ecc_uncorrectable", HOT)}
    result = promtool_test(tmp_path, out, series, firing, exported_names(out), engine_texts)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_runbook_base_url_must_be_http_and_format_is_required(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "rules.yml"
    bad = gpuops("alerts", "--db", str(history), "export-rules", "--format", "prometheus", "-o", str(out),
                 env={"GPUOPS_RUNBOOK_BASE_URL": "ftp://runbooks"})
    assert bad.returncode == 1 and "GPUOPS_RUNBOOK_BASE_URL" in bad.stderr and not out.exists()
    missing = gpuops("alerts", "--db", str(history), "export-rules", "-o", str(out))
    assert missing.returncode == 2 and "--format" in missing.stderr
    to_stdout = gpuops("alerts", "--db", str(history), "export-rules", "--format", "prometheus", "-o", "-")
    assert to_stdout.returncode == 0 and "\ngroups:\n" in to_stdout.stdout
    assert "runbook_url" not in to_stdout.stdout  # no base URL, no link
    export(history, out)
    again = gpuops("alerts", "--db", str(history), "export-rules", "--format", "prometheus", "-o", str(out))
    assert again.returncode != 0 and "--force" in again.stderr


def test_no_enabled_rule_gives_an_empty_group_promtool_accepts(tmp_path: Path) -> None:
    out = tmp_path / "empty.yml"
    out.write_text(prometheus_rules(()).to_yaml(), encoding="utf-8")
    checked = promtool("check", "rules", str(out), cwd=tmp_path)
    assert checked.returncode == 0 and "SUCCESS: 0 rules found" in checked.stdout


def test_default_counters_are_dcgm_exporters_own_list() -> None:
    listed = {line.split(",")[0].strip() for line in (FIXTURES / "default-counters.csv").read_text().splitlines()
              if line.strip() and not line.startswith("#") and line.split(",")[1].strip() != "label"}
    assert DCGM_EXPORTER_DEFAULT_COUNTERS == listed


# ------------------------------------------------------------------ a real Prometheus on the agent

PROMETHEUS = "/usr/bin/prometheus"
STARTUP_LIMIT_S = 60.0
DEMO = "demo:64"  # seed 0 has a GPU with a pending row remap, and hot or busy GPUs that come and go


def _api(base: str, path: str) -> dict:
    with urllib.request.urlopen(f"{base}/api/v1/{path}", timeout=5) as response:
        return json.load(response)["data"]


def _start_agent() -> tuple[subprocess.Popen[str], str]:
    """`gpuops agent` on the simulated fleet, polling once and then holding still (interval 1 h),
    so that Prometheus and the engine read exactly the same values."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gpuops", "agent", "--source", DEMO, "--listen", "127.0.0.1:0", "--interval", "3600"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], STARTUP_LIMIT_S)
    line = process.stdout.readline().strip() if ready else ""
    if not line.startswith("gpuops agent: serving http://127.0.0.1:"):
        stop(process)
        pytest.fail(f"agent did not start: {line!r} {process.stderr.read() if process.stderr else ''}")
    return process, line.split()[3]


def test_a_real_prometheus_scraping_the_agent_fires_what_the_engine_fires(history: Path, tmp_path: Path) -> None:
    prometheus = require_tool(PROMETHEUS, "prometheus", install="apt-get install -y prometheus; scripts/dev.sh does it")
    rules_file = tmp_path / "gpuops-rules.yml"
    export(history, rules_file)
    exported = exported_names(rules_file)
    rules = tuple(r for r in stored_rules(history) if r.name in exported)
    processes: list[subprocess.Popen[str]] = []
    try:
        agent, url = _start_agent()
        processes.append(agent)
        # gpuops' verdict on the same values, read through the scrape source as a console would.
        with open_source(f"scrape:{url}") as source:
            sample = source.poll()
        engine = AlertEngine(rules, poll_interval_s=1.0)
        engine.evaluate(sample, now=sample.ts)
        firing = {(a.rule, a.labels["gpu"]): a for a in engine.active if a.state is AlertState.FIRING}
        engine.evaluate(sample, now=sample.ts + 3600)  # every `for` over
        active = {(a.rule, a.labels["gpu"]) for a in engine.active}
        # The simulated fleet moves with the clock; its failing GPU's pending row remap is always there.
        assert "row_remap_pending" in {rule for rule, _ in firing}

        (tmp_path / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            f"rule_files: [{json.dumps(str(rules_file))}]\n"
            "scrape_configs:\n  - job_name: gpuops\n    static_configs:\n"
            f"      - targets: [{json.dumps(urllib.parse.urlsplit(url).netloc)}]\n"
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        processes.append(subprocess.Popen(
            [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))

        def evaluated() -> list[dict]:
            loaded = [rule for group in _api(base, "rules")["groups"] for rule in group["rules"]]
            return loaded if loaded and all(rule["lastEvaluation"] > "2000" for rule in loaded) else []

        loaded = wait_until("Prometheus to evaluate the exported rules", evaluated, STARTUP_LIMIT_S)
        assert sorted(rule["name"] for rule in loaded) == sorted(exported)
        assert {rule["health"] for rule in loaded} == {"ok"}, [r.get("lastError") for r in loaded]

        def alerts(states: set[str]) -> dict[tuple[str, str], dict]:
            return {(a["labels"]["alertname"], a["labels"]["UUID"]): a for a in _api(base, "alerts")["alerts"]
                    if a["state"] in states}

        # A group is evaluated rule after rule: wait for one whole evaluation on the scraped data.
        wait_until("Prometheus to have the engine's alerts, pending or firing",
                   lambda: set(alerts({"pending", "firing"})) == active, 30.0)
        assert set(alerts({"firing"})) == set(firing)
        for key, alert in alerts({"firing"}).items():
            assert alert["annotations"]["summary"] == firing[key].summary
            assert alert["labels"]["severity"] == firing[key].severity.label
            assert alert["labels"]["node"] == alert["labels"]["Hostname"] == firing[key].labels["node"]
            assert alert["labels"]["gpu"] == firing[key].labels["gpu_index"]
    finally:
        for process in reversed(processes):
            stop(process)

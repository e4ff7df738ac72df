"""`gpuops alerts`: active alerts (or all with --all) from the history database, table or JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gpuops.core.alerts.builtin_rules import builtin_rules
from gpuops.core.alerts.service import AlertService
from gpuops.core.store.connection import open_database
from tests.samples import make_inventory, make_sample

T0 = 1_763_798_400.0
N = 16
JSON_KEYS = {"id", "rule", "severity", "state", "gpu_uuid", "node", "started_at", "summary", "acknowledged_by"}


def gpuops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpuops", *args], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )


def _history_with_alerts(path: Path) -> None:
    conn, _ = open_database(path, create=True)
    service = AlertService(conn, poll_interval_s=5.0)
    service.process(make_sample(N, ts=T0, values={"ecc_uncorrected_volatile": {3: 1, 9: 1}}), T0)
    service.process(make_sample(N, ts=T0 + 5, values={"ecc_uncorrected_volatile": {9: 1}}), T0 + 5)  # GPU 3 resolves
    [active] = service.store.active_alerts()
    service.store.acknowledge(active.id, T0 + 6, note="RMA opened", user="dave")
    conn.close()


def test_json_lists_active_alerts_and_all_with_history(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    _history_with_alerts(path)
    result = gpuops("alerts", "--db", str(path), "--json")
    assert result.returncode == 0, result.stderr
    [alert] = json.loads(result.stdout)
    assert JSON_KEYS <= alert.keys()
    assert (alert["rule"], alert["severity"], alert["state"]) == ("ecc_uncorrectable", "critical", "firing")
    assert (alert["gpu_uuid"], alert["node"]) == (make_inventory(N)[9].uuid, "node01")
    assert (alert["started_at"], alert["acknowledged_by"]) == (T0, "dave")
    assert "uncorrectable ECC" in alert["summary"]

    everything = json.loads(gpuops("alerts", "--db", str(path), "--json", "--all").stdout)
    assert [(a["gpu_uuid"], a["state"]) for a in everything] == [
        (make_inventory(N)[9].uuid, "firing"), (make_inventory(N)[3].uuid, "resolved")
    ]


def test_table_output(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    _history_with_alerts(path)
    result = gpuops("alerts", "--db", str(path))
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split()[:6] == ["ID", "SEVERITY", "STATE", "SINCE", "RULE", "ACK"]
    assert "critical" in row and "firing" in row and "dave" in row and "node01 GPU 1" in row


def test_no_history_is_one_clear_line(tmp_path: Path) -> None:
    result = gpuops("alerts", "--db", str(tmp_path / "missing.sqlite"))
    assert result.returncode == 1
    assert result.stderr.startswith("gpuops: no history at ")
    assert not (tmp_path / "missing.sqlite").exists()


def test_rules_export_edit_import_and_a_bad_file_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    _history_with_alerts(path)
    exported = tmp_path / "rules.json"
    result = gpuops("alerts", "--db", str(path), "rules", "export", "-o", str(exported))
    assert result.returncode == 0, result.stderr
    document = json.loads(exported.read_text())
    assert document["format"] == "gpuops-alert-rules" and len(document["rules"]) == len(builtin_rules())
    document["rules"] = [r for r in document["rules"] if r["name"] != "power_at_limit"]
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(document))
    result = gpuops("alerts", "rules", "import", str(edited), "--db", str(path))
    assert (result.returncode, result.stdout.strip()) == (0, f"imported {len(builtin_rules()) - 1} rules from {edited}")

    document["rules"][0]["op"] = "bigger"
    document["rules"][1]["for_s"] = -5
    document["rules"][1]["conditions"][0]["op"] = "=>"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    result = gpuops("alerts", "--db", str(path), "rules", "import", str(bad))
    assert result.returncode == 1  # a bad input file: the work failed
    assert "rules not imported, nothing changed" in result.stderr
    assert "rule 1 'gpu_temp_near_slowdown': unknown rule key(s) op" in result.stderr
    assert "rule 2 'gpu_temp_at_slowdown': for_s must be >= 0" in result.stderr
    assert "rule 2 'gpu_temp_at_slowdown': conditions[0]: op '=>' is not one of" in result.stderr
    again = tmp_path / "again.json"
    gpuops("alerts", "rules", "export", "--db", str(path), "-o", str(again))
    assert json.loads(again.read_text())["rules"] == json.loads(edited.read_text())["rules"]

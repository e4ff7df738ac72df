"""`gpuops collect` evaluates the alert rules on every poll it records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gpuops.core.alerts.persistence import AlertStore
from gpuops.core.sources.base import TelemetrySource
from gpuops.core.store.connection import open_database
from gpuops.core.telemetry import FleetSample
from tests.alerts_support import collect_with_alerts
from tests.samples import make_inventory, make_sample

N = 16
PATIENCE_S = 60.0


class FaultySource(TelemetrySource):
    """A fixed fleet whose GPU 3 reports an uncorrectable ECC error."""

    name = "faulty"

    def __init__(self) -> None:
        self.gpus = make_inventory(N)

    def poll(self) -> FleetSample:
        return make_sample(gpus=self.gpus, ts=time.time(), values={"ecc_uncorrected_volatile": {3: 1}})

    def close(self) -> None:
        pass


def test_the_collect_loop_records_alerts_with_the_samples(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    collect_with_alerts(path, FaultySource(), 3)
    conn, _ = open_database(path, create=False)
    [alert] = AlertStore(conn).active_alerts()
    assert (alert.rule, alert.gpu_uuid, alert.state.value) == ("ecc_uncorrectable", make_inventory(N)[3].uuid, "firing")
    conn.close()


def test_gpuops_collect_evaluates_rules(tmp_path: Path) -> None:
    """The real command: rules are seeded into the database it records into."""
    path = tmp_path / "history.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-m", "gpuops", "collect", "--source", "demo:16", "--db", str(path), "--interval", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + PATIENCE_S
        rules: list = []
        while time.monotonic() < deadline and not rules:
            if process.poll() is not None:
                raise AssertionError(f"collect exited with {process.returncode}: {process.stderr.read()}")
            if path.exists():
                result = subprocess.run([sys.executable, "-m", "gpuops", "alerts", "--db", str(path), "--json"],
                                        capture_output=True, text=True, timeout=60)
                if result.returncode == 0:
                    json.loads(result.stdout)  # the alert list is readable while collect writes
                    conn, _ = open_database(path, create=False)
                    rules = list(conn.execute("SELECT name FROM alert_rules"))
                    conn.close()
            time.sleep(0.2)
        assert len(rules) >= 20
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert process.returncode == 0, process.stderr.read()

"""End to end: alerts forwarded to a real Prometheus Alertmanager (`POST /api/v2/alerts`), read
back from its API; resolved alerts arrive with their endsAt.

Needs the Debian package `prometheus-alertmanager` (scripts/dev.sh installs it). Without it this
fails in CI (CI=true), where a skip would hide a missing install, and skips elsewhere saying why.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gpuops.core.alerts.alertmanager import AlertmanagerForwarder, BackgroundForwarder, ForwardError
from gpuops.core.alerts.builtin_rules import builtin_rules
from gpuops.core.alerts.engine import AlertEngine
from gpuops.core.alerts.model import ChangeKind
from tests.samples import make_inventory, make_sample
from tests.servers import free_port, stop, wait_until
from tests.tools import require_tool

pytestmark = pytest.mark.slow

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
STARTUP_LIMIT_S = 60.0
PATIENCE_S = 30.0
N = 16
CONFIG = """\
route:
  receiver: blackhole
  group_wait: 1s
receivers:
  - name: blackhole
"""


def _get_alerts(base: str) -> list[dict]:
    with urllib.request.urlopen(
        f"{base}/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true", timeout=5
    ) as response:
        return json.load(response)


@contextmanager
def running_alertmanager(
    tmp_path: Path, *, web_config: str | None = None, headers: dict[str, str] | None = None, ca_file: Path | None = None,
) -> Iterator[str]:
    """A real Alertmanager on loopback (its base URL); `web_config`: its --web.config.file text
    (TLS, basic auth), `headers` what the readiness check sends to pass it, `ca_file` the CA of the
    certificate a TLS web config serves (the base URL is then https)."""
    binary = require_tool(
        ALERTMANAGER, "alertmanager", install="apt-get install -y prometheus-alertmanager; scripts/dev.sh does it"
    )
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG)
    port = free_port()
    log_path = tmp_path / "alertmanager.log"
    log = log_path.open("w")
    command = [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
               f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]
    if web_config is not None:
        (tmp_path / "web.yml").write_text(web_config)
        command.append(f"--web.config.file={tmp_path / 'web.yml'}")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base = f"{'http' if ca_file is None else 'https'}://127.0.0.1:{port}"
    context = None if ca_file is None else ssl.create_default_context(cafile=str(ca_file))
    try:
        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"alertmanager exited with {process.returncode}: {log_path.read_text()}")
            request = urllib.request.Request(f"{base}/-/ready", headers=headers or {})
            with urllib.request.urlopen(request, timeout=2, context=context) as response:
                return response.status == 200

        wait_until("alertmanager to be ready", ready, STARTUP_LIMIT_S)
        yield base
    finally:
        stop(process)
        log.close()


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    with running_alertmanager(tmp_path) as base:
        yield base


def test_firing_then_resolved_alerts_reach_alertmanager(alertmanager: str) -> None:
    now = time.time()
    engine = AlertEngine(builtin_rules(), poll_interval_s=5.0)
    forwarder = AlertmanagerForwarder(alertmanager, resend_interval_s=60.0, generator_url="http://console.example/alerts")
    uuid = make_inventory(N)[3].uuid
    changes = engine.evaluate(make_sample(N, ts=now, values={"ecc_uncorrected_volatile": {3: 2}}), now)
    assert forwarder.sync(engine.active, changes.of_kind(ChangeKind.RESOLVED), now) == 1
    assert forwarder.sync(engine.active, (), now + 1) == 0  # not due again before the resend interval

    def arrived() -> dict | None:
        return next((a for a in _get_alerts(alertmanager) if a["labels"].get("UUID") == uuid), None)

    alert = wait_until("the firing alert in Alertmanager", arrived, PATIENCE_S)
    assert alert["labels"]["alertname"] == "ecc_uncorrectable"
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["node"] == alert["labels"]["Hostname"] == "node00"
    assert alert["labels"]["gpu"] == "3"  # the index, as dcgm-exporter's `gpu`
    assert "2 uncorrectable ECC error(s)" in alert["annotations"]["summary"]
    assert alert["annotations"]["description"].startswith("Drain the GPU")
    assert alert["status"]["state"] == "active"
    assert alert["generatorURL"] == "http://console.example/alerts"

    # Alertmanager keeps the later of two endsAt unless the new one is already past: a resolved
    # alert is sent after it ended, on the wall clock, as in production.
    later = time.time()
    changes = engine.evaluate(make_sample(N, ts=later), later)
    [resolved] = changes.of_kind(ChangeKind.RESOLVED)
    assert forwarder.sync(engine.active, [resolved], later) == 1
    # endsAt in the past: Alertmanager no longer lists it as active.
    wait_until("the alert to be resolved", lambda: arrived() is None, PATIENCE_S)


def test_firing_alerts_are_resent_after_the_resend_interval(alertmanager: str) -> None:
    now = time.time()
    engine = AlertEngine(builtin_rules(), poll_interval_s=5.0)
    forwarder = AlertmanagerForwarder(alertmanager, resend_interval_s=30.0)
    engine.evaluate(make_sample(N, ts=now, states={5: 1}), now)
    assert forwarder.sync(engine.active, (), now) == 1
    assert forwarder.sync(engine.active, (), now + 29) == 0
    assert forwarder.sync(engine.active, (), now + 30) == 1
    alert = wait_until(
        "the lost-GPU alert", lambda: [a for a in _get_alerts(alertmanager) if a["labels"]["alertname"] == "gpu_lost"], PATIENCE_S
    )
    assert len(alert) == 1


def test_an_unreachable_alertmanager_is_one_clear_error_and_alerts_stay_due() -> None:
    port = free_port()  # nothing listens there
    forwarder = AlertmanagerForwarder(f"http://127.0.0.1:{port}", timeout_s=2.0)
    engine = AlertEngine(builtin_rules(), poll_interval_s=5.0)
    engine.evaluate(make_sample(N, states={5: 1}), 1_763_798_400.0)
    with pytest.raises(ForwardError, match=f"cannot reach Alertmanager http://127.0.0.1:{port}/api/v2/alerts"):
        forwarder.sync(engine.active, (), 1_763_798_400.0)
    assert len(forwarder.due(engine.active, (), 1_763_798_401.0)) == 1
    background = BackgroundForwarder(forwarder)
    try:
        background.submit(engine.active, (), 1_763_798_402.0)  # returns at once
        wait_until("the background error", lambda: background.last_error, PATIENCE_S)
        assert "cannot reach Alertmanager" in background.last_error
    finally:
        background.close()


def test_the_alert_service_forwards_in_the_background(alertmanager: str, tmp_path: Path) -> None:
    from gpuops.core.alerts.service import AlertService
    from gpuops.core.store.connection import open_database

    conn, _ = open_database(tmp_path / "history.sqlite", create=True)
    service = AlertService(conn, poll_interval_s=5.0, forwarder=BackgroundForwarder(AlertmanagerForwarder(alertmanager)))
    try:
        service.process(make_sample(N, ts=time.time(), values={"remapped_rows_failure": {7: 1}}))
        found = wait_until(
            "the forwarded alert",
            lambda: [a for a in _get_alerts(alertmanager) if a["labels"]["alertname"] == "row_remap_failure"],
            PATIENCE_S,
        )
        assert found[0]["labels"]["UUID"] == make_inventory(N)[7].uuid
    finally:
        service.close()
        conn.close()

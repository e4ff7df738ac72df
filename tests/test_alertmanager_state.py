"""Alertmanager as the shared alert state, against a real Alertmanager: alerts posted to it as
Prometheus posts them are listed by the client and `gpuops alerts --alertmanager`; a silence made
through the CLI makes Alertmanager report them suppressed, and expiring it un-mutes them; a dead
port gives one line saying so.

Needs the Debian package `prometheus-alertmanager` (see tests/test_alerts_alertmanager.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from gpuops.core.alerts.alertmanager_api import AlertmanagerClient, AlertmanagerError, am_matcher
from gpuops.core.alerts.silences import Matcher
from gpuops.core.allocations.audit import os_user
from gpuops.core.timefmt import iso_utc
from tests.servers import free_port, wait_until
from tests.test_alerts_alertmanager import PATIENCE_S, alertmanager  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

UUID = "GPU-8f1c6c1e-0000-4000-8000-000000000003"


def fire_as_prometheus(base: str, now: float) -> None:
    """Two alerts as Prometheus sends them: one of `alerts export-rules` (dcgm-exporter's labels and
    the rule's `node`), one of a hand-written rule (only dcgm-exporter's `Hostname`)."""
    alerts = [
        {"labels": {"alertname": "ecc_uncorrectable", "severity": "critical", "Hostname": "node07", "node": "node07", "gpu": "3",
                    "UUID": UUID, "instance": "node07:9400", "job": "dcgm"},
         "annotations": {"summary": "2 uncorrectable ECC errors", "description": "Drain the GPU"},
         "startsAt": iso_utc(now - 60), "endsAt": iso_utc(now + 600), "generatorURL": "http://prometheus:9090/graph"},
        {"labels": {"alertname": "gpu_hot", "severity": "warning", "Hostname": "node08", "gpu": "0", "job": "dcgm"},
         "annotations": {"summary": "GPU at 91 C"},
         "startsAt": iso_utc(now - 30), "endsAt": iso_utc(now + 600)},
    ]
    request = urllib.request.Request(f"{base}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def gpuops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gpuops", *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ))


def state_of(client: AlertmanagerClient, rule: str) -> str:
    return next(a.state for a in client.alerts() if a.rule == rule)


def test_client_lists_alerts_prometheus_fired_with_gpuops_names(alertmanager: str) -> None:  # noqa: F811 - the fixture imported above
    now = time.time()
    fire_as_prometheus(alertmanager, now)
    client = AlertmanagerClient(alertmanager)
    alerts = wait_until("both alerts in Alertmanager", lambda: len(client.alerts()) == 2 and client.alerts(), PATIENCE_S)
    ecc = next(a for a in alerts if a.rule == "ecc_uncorrectable")
    assert (ecc.severity, ecc.node, ecc.gpu_index, ecc.gpu_uuid) == ("critical", "node07", "3", UUID)
    assert (ecc.summary, ecc.description) == ("2 uncorrectable ECC errors", "Drain the GPU")
    assert ecc.started_at == pytest.approx(now - 60, abs=0.01)
    assert ecc.state == "active" and not ecc.muted and ecc.silenced_by == ()
    assert ecc.generator_url == "http://prometheus:9090/graph"
    only_hot = client.alerts(filters=['alertname="gpu_hot"'])
    assert [a.node for a in only_hot] == ["node08"]
    client.close()


def test_cli_lists_silences_and_expires_in_alertmanager(alertmanager: str) -> None:  # noqa: F811 - the fixture imported above
    fire_as_prometheus(alertmanager, time.time())
    client = AlertmanagerClient(alertmanager)
    wait_until("both alerts in Alertmanager", lambda: len(client.alerts()) == 2, PATIENCE_S)

    listed = gpuops("alerts", "--alertmanager", alertmanager, "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["rule"]: row for row in json.loads(listed.stdout)}
    assert rows["ecc_uncorrectable"]["gpu_uuid"] == UUID and rows["gpu_hot"]["severity"] == "warning"
    table = gpuops("--alertmanager", alertmanager, "alerts")  # before the command, as every shared option
    assert table.returncode == 0 and "ecc_uncorrectable" in table.stdout and "node08" in table.stdout

    # The same flags as the local silence, the flag after the action this time.
    made = gpuops("alerts", "silence", "--match", "rule=ecc_uncorrectable", "--match", "node=~node0[0-7]",
                  "--for", "2h", "--comment", "RMA 4711", "--alertmanager", alertmanager)
    assert made.returncode == 0, made.stderr
    silence_id = made.stdout.split()[2].rstrip(":")
    wait_until("the ECC alert suppressed", lambda: state_of(client, "ecc_uncorrectable") == "suppressed", PATIENCE_S)
    ecc = next(a for a in client.alerts() if a.rule == "ecc_uncorrectable")
    assert ecc.silenced_by == (silence_id,) and ecc.muted
    assert state_of(client, "gpu_hot") == "active"
    silence = next(s for s in client.silences() if s.id == silence_id)
    assert silence.created_by == os_user() and silence.comment == "RMA 4711"
    assert set(silence.matchers) == {"alertname=ecc_uncorrectable", "Hostname=~node0[0-7]"}
    assert silence.ends_at - silence.starts_at == pytest.approx(7200, abs=1)

    shown = gpuops("alerts", "silences", "--json", "--alertmanager", alertmanager)
    assert [row["id"] for row in json.loads(shown.stdout)] == [silence_id]

    expired = gpuops("alerts", "--alertmanager", alertmanager, "expire-silence", silence_id)
    assert expired.returncode == 0, expired.stderr
    wait_until("the ECC alert active again", lambda: state_of(client, "ecc_uncorrectable") == "active", PATIENCE_S)
    assert client.silences() == []
    assert [s.state for s in client.silences(include_expired=True)] == ["expired"]
    client.close()


def test_alertmanager_refusals_are_one_line_with_its_reason(alertmanager: str) -> None:  # noqa: F811 - the fixture imported above
    client = AlertmanagerClient(alertmanager)
    with pytest.raises(AlertmanagerError) as refused:
        client.expire_silence("00000000-0000-0000-0000-000000000000")
    assert str(refused.value).startswith(f"Alertmanager {alertmanager} refused to expire silence")
    assert str(refused.value).endswith(": silence not found")  # its own words, after its HTTP status
    assert "\n" not in str(refused.value)
    with pytest.raises(AlertmanagerError, match=r"list alerts: HTTP 400 Bad Request: bad matcher format: not a matcher$"):
        client.alerts(filters=["not a matcher"])
    client.close()


def test_dead_alertmanager_gives_one_line(tmp_path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(AlertmanagerError, match=r"^cannot reach Alertmanager .* to list alerts: connection refused$"):
        AlertmanagerClient(dead).alerts()
    result = gpuops("alerts", "silence", "--match", "node=x", "--for", "1h", "--comment", "c", "--alertmanager", dead)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].endswith("to create the silence: connection refused")
    assert gpuops("alerts", "--all", "--alertmanager", dead).returncode == 2
    assert gpuops("alerts", "--read-only", "silence", "--match", "node=x", "--for", "1h", "--comment", "c",
                  "--alertmanager", dead).returncode == 1


def test_matchers_translate_to_alertmanager_labels() -> None:
    expected = {"name": "alertname", "value": "xid_.*", "isRegex": True, "isEqual": False}
    assert am_matcher(Matcher.parse("rule!~xid_.*")) == expected
    assert am_matcher(Matcher.parse("gpu=GPU-1"))["name"] == "UUID"
    assert am_matcher(Matcher.parse("node!=n1")) == {"name": "Hostname", "value": "n1", "isRegex": False, "isEqual": False}


def test_alertmanager_option_goes_anywhere_like_the_shared_options() -> None:
    from gpuops.cli import parse_args

    url = "http://am.example:9093"
    assert parse_args(["--alertmanager", url]).alertmanager == url  # bare gpuops: the console
    assert parse_args(["window", "--alertmanager", url]).alertmanager == url
    assert parse_args(["--alertmanager", url, "alerts", "silences"]).alertmanager == url
    assert parse_args(["alerts", "silences", "--alertmanager", url]).alertmanager == url
    assert parse_args(["collect", "--alertmanager", url]).alertmanager == url
    assert parse_args(["window"]).alertmanager is None
    with pytest.raises(SystemExit) as refused:
        parse_args(["status", "--alertmanager", url])  # status never talks to Alertmanager
    assert refused.value.code == 2
    bad = gpuops("window", "--alertmanager", "ftp://am.example")
    assert bad.returncode == 2 and "must start with http:// or https://" in bad.stderr


def test_alertmanager_credentials_come_from_the_environment(tmp_path) -> None:
    env = {**os.environ, "GPUOPS_ALERTMANAGER_CA_FILE": str(tmp_path / "missing.pem")}
    for args in (("window",), ("alerts",)):
        result = subprocess.run([sys.executable, "-m", "gpuops", *args, "--alertmanager", "https://am.example"],
                                capture_output=True, text=True, timeout=60, env=env)
        assert result.returncode == 2 and f"CA file {tmp_path / 'missing.pem'} does not exist" in result.stderr


#: bcrypt (cost 4, cheap on purpose) of PASSWORD, for Alertmanager's basic_auth_users.
PASSWORD = "s3cret-test"
PASSWORD_BCRYPT = "$2b$04$NEr..PQJ7w4EAgr4qVJtpOKlvXfrBTuxd5A//OOhxGjD2Av5EGQJ."


def test_credentials_from_the_environment_reach_an_alertmanager_behind_basic_auth(tmp_path) -> None:
    import base64

    from gpuops.core.alerts.alertmanager import AlertmanagerForwarder
    from gpuops.core.alerts.builtin_rules import builtin_rules
    from gpuops.core.alerts.engine import AlertEngine
    from tests.samples import make_sample
    from tests.test_alerts_alertmanager import running_alertmanager

    pair = base64.b64encode(f"oncall:{PASSWORD}".encode()).decode()
    web = f"basic_auth_users:\n  oncall: '{PASSWORD_BCRYPT}'\n"
    with running_alertmanager(tmp_path, web_config=web, headers={"Authorization": f"Basic {pair}"}) as base:
        with pytest.raises(AlertmanagerError, match=r"refused to list alerts: HTTP 401 Unauthorized"):
            AlertmanagerClient(base).alerts()
        (tmp_path / "password").write_text(PASSWORD + "\n")
        env = {"GPUOPS_ALERTMANAGER_USERNAME": "oncall", "GPUOPS_ALERTMANAGER_PASSWORD_FILE": str(tmp_path / "password")}
        now = time.time()
        engine = AlertEngine(builtin_rules(), poll_interval_s=5.0)
        engine.evaluate(make_sample(4, ts=now, values={"ecc_uncorrected_volatile": {1: 2}}), now)
        assert AlertmanagerForwarder(base, environ=env).sync(engine.active, (), now) == 1  # collect's forwarder too
        listed = subprocess.run([sys.executable, "-m", "gpuops", "alerts", "--alertmanager", base, "--json"],
                                capture_output=True, text=True, timeout=60, env={**os.environ, **env})
        assert listed.returncode == 0, listed.stderr
        assert [row["rule"] for row in json.loads(listed.stdout)] == ["ecc_uncorrectable"]


def test_alertmanager_over_tls_is_verified_against_the_given_ca(tmp_path) -> None:
    """A real Alertmanager serving TLS (its web config, a throwaway certificate): without the CA the
    client refuses, saying in one line that the certificate is not trusted; with GPUOPS_ALERTMANAGER_CA_FILE the
    forwarder posts and the API client reads the alert back."""
    from gpuops.core.alerts.alertmanager import ENV_PREFIX, AlertmanagerForwarder
    from gpuops.core.alerts.builtin_rules import builtin_rules
    from gpuops.core.alerts.engine import AlertEngine
    from gpuops.core.sources.http_fetch import HttpOptions
    from tests.agent_helpers import self_signed_certificate
    from tests.samples import make_sample
    from tests.test_alerts_alertmanager import running_alertmanager

    cert, key = self_signed_certificate(tmp_path)
    web = f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
    with running_alertmanager(tmp_path, web_config=web, ca_file=cert) as base:
        assert base.startswith("https://")
        with pytest.raises(AlertmanagerError, match=r"to list alerts: TLS certificate not trusted \(self-signed certificate\)"):
            AlertmanagerClient(base, options=HttpOptions()).alerts()
        env = {"GPUOPS_ALERTMANAGER_CA_FILE": str(cert)}
        now = time.time()
        engine = AlertEngine(builtin_rules(), poll_interval_s=5.0)
        engine.evaluate(make_sample(4, ts=now, values={"ecc_uncorrected_volatile": {1: 2}}), now)
        assert AlertmanagerForwarder(base, environ=env).sync(engine.active, (), now) == 1
        client = AlertmanagerClient(base, options=HttpOptions.from_env(ENV_PREFIX, env))
        assert [alert.labels["alertname"] for alert in client.alerts()] == ["ecc_uncorrectable"]

"""A collector restarted on the same history does not send its firing alerts to Alertmanager
again before their resend interval is over (the send times are kept in the history's meta), and
does send them once it is. Counted by a real Alertmanager (its alertmanager_alerts_received_total).

Needs the Debian package `prometheus-alertmanager` (see tests/test_alerts_alertmanager.py).
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest

from gpuops.core.alerts.alertmanager import DEFAULT_RESEND_INTERVAL_S, SENT_AT_KEY
from gpuops.core.alerts.service import AlertService
from gpuops.core.store.connection import open_database, open_read_only
from tests.samples import make_inventory, make_sample
from tests.servers import wait_until
from tests.test_alerts_alertmanager import PATIENCE_S, _get_alerts, alertmanager  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

N = 16
REMAP_GPU, ECC_GPU = 7, 3


def received_firing(base: str) -> int:
    """How many firing alerts Alertmanager has received in all (each alert of each POST)."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
        if line.startswith("alertmanager_alerts_received_total{") and 'status="firing"' in line
    )


def stored_send_times(path: Path) -> dict | None:
    conn, _ = open_read_only(path)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (SENT_AT_KEY,)).fetchone()
    finally:
        conn.close()
    return None if row is None else row[0]


def uuids_in(base: str) -> set[str]:
    return {a["labels"].get("UUID") for a in _get_alerts(base)}


def test_a_restarted_collector_does_not_resend_inside_the_resend_interval(alertmanager: str, tmp_path: Path) -> None:  # noqa: F811 - the fixture imported above
    path = tmp_path / "history.sqlite"
    open_database(path, create=True)[0].close()
    gpus = make_inventory(N)
    t0 = time.time()

    first = AlertService.for_collector(path, poll_interval_s=5.0, alertmanager_url=alertmanager)
    try:
        first.process(make_sample(N, ts=t0, values={"remapped_rows_failure": {REMAP_GPU: 1}}), t0)
        wait_until("the first alert in Alertmanager", lambda: gpus[REMAP_GPU].uuid in uuids_in(alertmanager), PATIENCE_S)
        wait_until("the send time in the history", lambda: stored_send_times(path), PATIENCE_S)
    finally:
        first.close()
    assert received_firing(alertmanager) == 1

    # Restart 10 s later: the old alert is still firing and a new one starts. Only the new one
    # goes out (one POST holds every due alert, so a re-send would count 2 here, not 1).
    second = AlertService.for_collector(path, poll_interval_s=5.0, alertmanager_url=alertmanager)
    try:
        both = {"remapped_rows_failure": {REMAP_GPU: 1}, "ecc_uncorrected_volatile": {ECC_GPU: 1}}
        second.process(make_sample(N, ts=t0 + 10, values=both), t0 + 10)
        wait_until("the new alert in Alertmanager", lambda: gpus[ECC_GPU].uuid in uuids_in(alertmanager), PATIENCE_S)
        assert received_firing(alertmanager) == 2

        # Once the resend interval is over for both, both are sent again.
        later = t0 + 10 + DEFAULT_RESEND_INTERVAL_S + 1
        second.process(make_sample(N, ts=later, values=both), later)
        wait_until("both alerts re-sent", lambda: received_firing(alertmanager) == 4, PATIENCE_S)
    finally:
        second.close()

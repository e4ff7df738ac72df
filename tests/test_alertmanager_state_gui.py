"""The console on `--alertmanager URL`, against a real Alertmanager: the Alerts tab's Alertmanager
view shows its alerts, a silence made in the tab's dialog goes to Alertmanager (and mutes its
alerts there) as well as to the history, Alertmanager's silences show in the Silences view and
expire from there; a dead or hung Alertmanager is answered with a reason, off the GUI thread.

Needs the Debian package `prometheus-alertmanager` (see tests/test_alerts_alertmanager.py).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QDialogButtonBox

from gpuops.core.alerts.alertmanager_api import AlertmanagerClient
from gpuops.gui.alerts.alertmanager_view import AlertmanagerView, AlertmanagerWorker
from gpuops.gui.alerts.tab import AM_SILENCE_PREFIX
from tests.gui_support import ECC_GPUS, OFFSCREEN_PLUGIN_NOTICE, FaultySource, gpu_uuid, open_windows
from tests.servers import free_port
from tests.test_alertmanager_state import fire_as_prometheus
from tests.test_alerts_alertmanager import alertmanager  # noqa: F401 (fixture)
from tests.test_gui_alerts import PATIENCE_MS, N, ecc_alert, wait_for_alerts

pytestmark = [pytest.mark.slow, pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)]


def post_gpu3_alert(base: str) -> None:
    """Prometheus' copy of the console's ECC alert on GPU 3 (same rule, same UUID)."""
    import json
    import urllib.request

    from gpuops.core.timefmt import iso_utc

    now = time.time()
    body = [{"labels": {"alertname": "ecc_uncorrectable", "severity": "critical", "node": "node-000",
                        "UUID": gpu_uuid(ECC_GPUS[0]), "gpu": "3"},
             "annotations": {"summary": "uncorrectable ECC (Prometheus)"},
             "startsAt": iso_utc(now - 10), "endsAt": iso_utc(now + 600)}]
    request = urllib.request.Request(f"{base}/api/v2/alerts", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(request, timeout=5).close()


def am_rows(view: AlertmanagerView) -> list[tuple[str, ...]]:
    tree = view.alerts
    return [tuple(tree.topLevelItem(i).text(c) for c in range(tree.columnCount())) for i in range(tree.topLevelItemCount())]


def test_console_shows_alertmanager_and_its_silences_go_both_ways(qtbot, tmp_path: Path, alertmanager: str) -> None:  # noqa: F811 - the fixture imported above
    fire_as_prometheus(alertmanager, time.time())
    post_gpu3_alert(alertmanager)
    client = AlertmanagerClient(alertmanager)
    with open_windows(qtbot) as make_window:
        window = make_window(FaultySource(N), history_db=tmp_path / "history.sqlite", alertmanager_url=alertmanager,
                             size=(1200, 800))
        tab = window.alerts.tab
        view = tab.am_view
        qtbot.waitUntil(lambda: len(am_rows(view)) == 3, timeout=PATIENCE_MS)
        rows = {row[3] + "/" + row[4]: row for row in am_rows(view)}
        assert rows["gpu_hot/node08"][:2] == ("warning", "active")
        assert rows["ecc_uncorrectable/node07"][5] == "GPU-8f1c6c1e-0000-4000-8000-000000000003"
        assert f"3 alerts in Alertmanager {alertmanager}" in view.status.text()
        assert tab.views.tabText(tab.views.indexOf(view)) == "Alertmanager (3)"
        wait_for_alerts(qtbot, window)  # the console's own two criticals: the tab title counts only those

        assert tab.select_alert(ecc_alert(window, ECC_GPUS[0]).id)
        dialog = tab.open_silence()
        dialog.comment_edit.setText("reseating it")
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        # One silence, two places: the history mutes the console's alert, Alertmanager its copy.
        qtbot.waitUntil(lambda: tab.title.startswith("Alerts (1 critical"), timeout=PATIENCE_MS)
        qtbot.waitUntil(lambda: len(client.silences()) == 1, timeout=PATIENCE_MS)
        silence = client.silences()[0]
        assert set(silence.matchers) == {"alertname=ecc_uncorrectable", f"UUID={gpu_uuid(ECC_GPUS[0])}"}
        assert silence.comment == "reseating it"
        qtbot.waitUntil(lambda: any(r[1] == f"suppressed by {silence.id}" for r in am_rows(view)), timeout=PATIENCE_MS)
        assert tab.views.tabText(tab.views.indexOf(view)) == "Alertmanager (2)"

        items = [tab.silences.topLevelItem(i) for i in range(tab.silences.topLevelItemCount())]
        assert [i.text(0) for i in items] == ["1", AM_SILENCE_PREFIX + silence.id[:8]]
        assert items[1].text(1) == " ".join(silence.matchers) and items[1].text(5) == "reseating it"
        tab.silences.setCurrentItem(items[1])
        assert tab.expire_button.isEnabled()
        tab.expire_button.click()
        qtbot.waitUntil(lambda: tab.silences.topLevelItemCount() == 1, timeout=PATIENCE_MS)
        assert client.silences() == []
        assert f"Alertmanager silence {silence.id} expired" in tab.status.text()

        # From the Alertmanager view, a silence is prefilled from its alert (a hand-written
        # rule's, with only dcgm-exporter's Hostname) and mutes it there.
        tab.views.setCurrentWidget(view)
        hot = next(i for i in range(view.alerts.topLevelItemCount()) if view.alerts.topLevelItem(i).text(3) == "gpu_hot")
        view.alerts.setCurrentItem(view.alerts.topLevelItem(hot))
        dialog = tab.open_silence()
        assert dialog.matchers_edit.toPlainText().splitlines() == ["rule=gpu_hot", "node=node08"]
        dialog.comment_edit.setText("fan swap")
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        qtbot.waitUntil(lambda: any(r[3] == "gpu_hot" and r[1].startswith("suppressed by") for r in am_rows(view)),
                        timeout=PATIENCE_MS)
        assert tab.title.startswith("Alerts (1 critical")  # the console's own alerts are not touched
    client.close()


def test_without_history_silences_go_to_alertmanager_and_read_only_makes_none(
    qtbot, tmp_path: Path, alertmanager: str,  # noqa: F811 - the fixture imported above
) -> None:
    fire_as_prometheus(alertmanager, time.time())
    client = AlertmanagerClient(alertmanager)
    with open_windows(qtbot) as make_window:
        window = make_window(FaultySource(N), history_db=None, alertmanager_url=alertmanager)
        tab = window.alerts.tab
        qtbot.waitUntil(lambda: len(am_rows(tab.am_view)) == 2, timeout=PATIENCE_MS)
        assert "Alertmanager's alerts are in its view" in tab.status.text()
        assert tab.silence_button.isEnabled() and not tab.ack_button.isEnabled()
        dialog = tab.open_silence()
        dialog.matchers_edit.setPlainText("rule=gpu_hot")
        dialog.comment_edit.setText("known")
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        qtbot.waitUntil(lambda: tab.silences.topLevelItemCount() == 1, timeout=PATIENCE_MS)
        assert tab.silences.topLevelItem(0).text(0).startswith(AM_SILENCE_PREFIX)
        assert [s.matchers for s in client.silences()] == [("alertname=gpu_hot",)]

        watching = make_window(FaultySource(N), history_db=None, alertmanager_url=alertmanager, read_only=True)
        qtbot.waitUntil(lambda: watching.alerts.tab.silences.topLevelItemCount() == 1, timeout=PATIENCE_MS)
        watching.alerts.tab.silences.setCurrentItem(watching.alerts.tab.silences.topLevelItem(0))
        assert not watching.alerts.tab.silence_button.isEnabled() and not watching.alerts.tab.expire_button.isEnabled()
        assert watching.alerts.tab.open_silence() is None
    client.close()


def test_dead_alertmanager_says_why_and_the_view_is_empty(qtbot) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    worker = AlertmanagerWorker(dead)
    view = AlertmanagerView()
    qtbot.addWidget(view)
    worker.stateReady.connect(view.show_state)
    with qtbot.waitSignal(worker.stateReady, timeout=PATIENCE_MS) as answer:
        pass
    assert answer.args[0].problem == f"cannot reach Alertmanager {dead} to list alerts: connection refused"
    qtbot.waitUntil(lambda: view.state is not None)
    assert view.status.text() == f"No alerts shown: cannot reach Alertmanager {dead} to list alerts: connection refused"
    assert am_rows(view) == [] and view.title == "Alertmanager (!)"
    with qtbot.waitSignal(worker.actionDone, timeout=PATIENCE_MS) as refused:
        worker.create_silence(["node=node07"], time.time(), time.time() + 60, "c")
    assert not refused.args[0].ok and refused.args[0].message.endswith("to create the silence: connection refused")
    assert worker.stop()


def test_hung_alertmanager_times_out_while_the_gui_runs(qtbot) -> None:
    """A port that takes the connection and never answers: the GUI thread keeps running its
    events meanwhile, the answer is the timeout, and stop() does not wait for it."""
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    url = f"http://127.0.0.1:{hung.getsockname()[1]}"
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    try:
        worker = AlertmanagerWorker(url, timeout_s=0.5)
        with qtbot.waitSignal(worker.stateReady, timeout=PATIENCE_MS) as answer:
            pass
        assert answer.args[0].problem == f"cannot reach Alertmanager {url} to list alerts: timed out after 0.5 s"
        assert len(ticks) >= 5  # the event loop ran while the worker waited
        assert worker.stop()
        stuck = AlertmanagerWorker(url, timeout_s=30.0)  # its first read hangs
        assert stuck.stop()  # the request in progress is aborted
        assert not [t for t in threading.enumerate() if t.name == "gpuops-alertmanager-view"]
    finally:
        timer.stop()
        hung.close()

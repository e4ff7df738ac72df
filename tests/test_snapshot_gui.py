"""File → Export snapshot from a live window: pictures at the window's size (and 2x), the PDF
with alerts read from the history off the GUI thread, cancelling, and confirming replacement;
the console's exports carry the alerts, customers and health its window shows."""

from __future__ import annotations

import csv
import json
import subprocess
import time

import pytest
from PySide6.QtCore import QTimer

from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.store.writer import HistoryWriter
from gpuops.gui.snapshot.export import PROGRESS_AFTER_MS, ConsoleState, SnapshotExporter
from tests.gui_support import (
    ECC_GPUS,
    OFFSCREEN_PLUGIN_NOTICE,
    FakeSource,
    FaultySource,
    close_windows,
    gpu_uuid,
    make_sample,
    window_factory,
)
from tests.snapshot_support import ALERT_SUMMARY, make_snapshot_history
from tests.test_snapshot_export import image_stats
from tests.tools import require_tool

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)


@pytest.fixture
def window(qtbot):
    cleanups: list = []
    source = FakeSource(16)
    made = window_factory(qtbot, cleanups)(source, interval_s=0.05, size=(900, 640))
    qtbot.waitUntil(lambda: made.last_sample is not None, timeout=5000)
    yield made
    close_windows(cleanups)


def export(qtbot, exporter: SnapshotExporter, path, kind: str, **kwargs) -> None:
    with qtbot.waitSignal(exporter.exported, timeout=20000) as done:
        assert exporter.export(path, kind, **kwargs)
    assert done.args == [str(path)]


def test_picture_of_the_window_at_its_size_and_at_2x(qtbot, window, tmp_path):
    exporter = window.window_actions.exporter
    export(qtbot, exporter, tmp_path / "one.png", "png")
    width, height, colours = image_stats(tmp_path / "one.png")
    assert (width, height) == (window.width(), window.height())
    assert colours > 20, "the picture is blank"
    exporter.picture_scale = 2.0
    export(qtbot, exporter, tmp_path / "two.png", "png")
    assert image_stats(tmp_path / "two.png")[:2] == (2 * width, 2 * height)
    exporter.picture_view = "grid"
    exporter.picture_scale = 1.0
    export(qtbot, exporter, tmp_path / "grid.png", "png")
    assert image_stats(tmp_path / "grid.png")[:2] == (window.grid.width(), window.grid.height())


def test_json_from_the_window_has_every_gpu_with_health(qtbot, window, tmp_path):
    export(qtbot, window.window_actions.exporter, tmp_path / "snap.json", "json")
    document = json.loads((tmp_path / "snap.json").read_text())
    assert document["source"] == "fake:16"
    assert [g["uuid"] for g in document["gpus"]] == window.last_sample.uuids
    assert all(g["health"] in ("ok", "warning", "critical") for g in document["gpus"])


def test_pdf_reads_alerts_from_the_history_and_numbers_its_pages(qtbot, window, tmp_path):
    history = make_snapshot_history(tmp_path / "history.sqlite")
    exporter = SnapshotExporter(window, window, history)
    window.select_gpu(window.last_sample.uuids[3])
    qtbot.wait(200)  # a few polls of history for the plot
    export(qtbot, exporter, tmp_path / "report.pdf", "pdf")
    text = subprocess.run(
        [require_tool("pdftotext"), str(tmp_path / "report.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert ALERT_SUMMARY in text
    assert "Page 1 of" in text
    assert window.last_sample.uuids[3] in text, "the GPU on show is plotted"


def test_cancelling_leaves_no_file(qtbot, window, tmp_path):
    exporter = window.window_actions.exporter
    seen: list[int] = []

    def cancel() -> None:
        seen.append(exporter.progress.minimumDuration())
        exporter.progress.cancel()

    QTimer.singleShot(0, cancel)
    with qtbot.waitSignal(exporter.cancelled, timeout=20000):
        assert exporter.export(tmp_path / "report.pdf", "pdf")
    assert seen == [PROGRESS_AFTER_MS]
    assert list(tmp_path.iterdir()) == []
    assert not exporter.busy


def test_existing_file_is_replaced_only_when_confirmed(qtbot, window, tmp_path):
    exporter = window.window_actions.exporter
    target = tmp_path / "snap.csv"
    target.write_text("keep me")
    asked: list = []
    exporter.confirm_overwrite = lambda path: asked.append(path) or False
    assert not exporter.export(target, "csv")
    assert asked == [target] and target.read_text() == "keep me"
    exporter.confirm_overwrite = lambda path: True
    export(qtbot, exporter, target, "csv")
    assert target.read_text().startswith("uuid,index,node")
    assert [p.name for p in tmp_path.iterdir()] == ["snap.csv"]


# --- the console's own history and live state ---------------------------------------------------

N_CONSOLE = 16
ACME_GPUS = (0, 1, 2, 3)
PATIENCE_MS = 20_000


@pytest.fixture
def console(qtbot, tmp_path):
    """A console recording its own history, whose book has Acme holding GPUs 0-3, with
    critical alerts on GPUs 3 and 9, once it shows them all."""
    path = tmp_path / "console.sqlite"
    source = FaultySource(N_CONSOLE)
    with HistoryWriter(path) as writer:
        writer.write(make_sample(source.gpus, ts=time.time() - 60))
    repo = AllocationRepository.open(path, user="tester")
    since = round(time.time() * 1000) - 3_600_000
    acme = repo.add_customer("Acme")
    contract = repo.add_contract(acme.id, "ACME-1", "reserved", "TEST", len(ACME_GPUS), since, None, 2.0)
    repo.allocate(contract.id, [source.gpus[i].uuid for i in ACME_GPUS], since)
    repo.close()
    cleanups: list = []
    made = window_factory(qtbot, cleanups)(source, interval_s=0.05, history_db=path, size=(900, 640))
    qtbot.waitUntil(lambda: set(shown_alerts(made)) >= {gpu_uuid(i) for i in ECC_GPUS}, timeout=PATIENCE_MS)
    qtbot.waitUntil(lambda: len(made.allocations.held.customers) == len(ACME_GPUS), timeout=PATIENCE_MS)
    yield made
    close_windows(cleanups)


def shown_alerts(window) -> dict[str, set[int]]:
    """GPU uuid -> ids of the active alerts the Alerts tab shows about it."""
    found: dict[str, set[int]] = {}
    snapshot = window.alerts.tab.snapshot
    for alert in () if snapshot is None else snapshot.active:
        if alert.gpu_uuid is not None:
            found.setdefault(alert.gpu_uuid, set()).add(alert.id)
    return found


def test_the_windows_json_carries_the_alerts_customers_and_health_it_shows(qtbot, console, tmp_path):
    export(qtbot, console.window_actions.exporter, tmp_path / "snap.json", "json")
    document = json.loads((tmp_path / "snap.json").read_text())
    assert document["allocations_available"] is True and document["alerts_available"] is True
    gpus = {g["uuid"]: g for g in document["gpus"]}
    assert len(gpus) == N_CONSOLE
    on_screen = shown_alerts(console)
    for i in ECC_GPUS:
        assert "ecc_uncorrectable" in {a["rule"] for a in gpus[gpu_uuid(i)]["alerts"]}
    # Every GPU's alerts are the ones the tab showed (the export takes the tab's own snapshot).
    assert all(on_screen.get(uuid, set()) <= {a["id"] for a in row["alerts"]} for uuid, row in gpus.items())
    assert {u: g["customer"] for u, g in gpus.items() if g["customer"]} == console.allocations.held.customers
    assert {gpus[gpu_uuid(i)]["contract"] for i in ACME_GPUS} == {"ACME-1"}
    health = console.ops.assessment.health
    assert [gpus[u]["health"] for u in console.last_sample.uuids] == [health.of(i).label for i in range(N_CONSOLE)]


def test_the_windows_csv_and_pdf_carry_the_alerts_and_customers(qtbot, console, tmp_path):
    exporter = console.window_actions.exporter
    export(qtbot, exporter, tmp_path / "snap.csv", "csv")
    rows = {r["uuid"]: r for r in csv.DictReader((tmp_path / "snap.csv").open(newline=""))}
    for i in ECC_GPUS:
        assert int(rows[gpu_uuid(i)]["alert_count"]) >= 1 and "ecc_uncorrectable" in rows[gpu_uuid(i)]["alerts"]
    assert [rows[gpu_uuid(i)]["customer"] for i in range(6)] == ["Acme"] * 4 + ["", ""]
    assert all(r["alert_count"] != "" for r in rows.values()), "alerts are known for every GPU (0 is not 'not available')"
    export(qtbot, exporter, tmp_path / "snap.pdf", "pdf")
    text = subprocess.run(
        [require_tool("pdftotext"), str(tmp_path / "snap.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "not available" not in text, text
    assert "Acme" in text and "ecc_uncorrectable" in text


def test_before_its_tabs_answer_the_console_reads_its_own_history(qtbot, console, tmp_path):
    exporter = console.window_actions.exporter
    exporter.console_state = ConsoleState  # as at start-up: neither tab has read the history yet
    export(qtbot, exporter, tmp_path / "early.json", "json")
    document = json.loads((tmp_path / "early.json").read_text())
    assert document["allocations_available"] is True and document["alerts_available"] is True
    gpus = {g["uuid"]: g for g in document["gpus"]}
    assert [gpus[gpu_uuid(i)]["customer"] for i in range(6)] == ["Acme"] * 4 + [None, None]
    assert all("ecc_uncorrectable" in {a["rule"] for a in gpus[gpu_uuid(i)]["alerts"]} for i in ECC_GPUS)


def test_without_history_the_export_says_alerts_and_allocations_are_not_available(qtbot, window, tmp_path):
    export(qtbot, window.window_actions.exporter, tmp_path / "none.json", "json")
    document = json.loads((tmp_path / "none.json").read_text())
    assert document["allocations_available"] is False and document["alerts_available"] is False
    assert all(g["alerts"] is None and g["customer"] is None for g in document["gpus"])

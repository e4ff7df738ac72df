"""File → Export snapshot from a live window: pictures at the window's size (and 2x), the PDF
with alerts read from the history off the GUI thread, cancelling, and confirming replacement."""

from __future__ import annotations

import json
import subprocess

import pytest
from PySide6.QtCore import QTimer

from gpuops.gui.snapshot.export import PROGRESS_AFTER_MS, SnapshotExporter
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, close_windows, window_factory
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
    exporter = SnapshotExporter(window, window, lambda: history)
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

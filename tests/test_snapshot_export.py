"""`gpuops export` snapshots: CSV/JSON rows per GPU, PNG pictures, the PDF report (checked with
poppler), headless rendering with no display, and never replacing a file without --force."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

from gpuops.cli import main
from gpuops.core.snapshot import CSV_COLUMNS
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE
from tests.snapshot_support import ALERT_SUMMARY, ALLOCATED, CONTRACT, CUSTOMER, FAILING, GPUS, N_GPUS, make_snapshot_history
from tests.tools import require_tool

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    return make_snapshot_history(tmp_path_factory.mktemp("snapshot") / "history.sqlite")


def export(*args: str) -> int:
    return main(["export", *args])


def image_stats(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct colours on a coarse grid) of an image file."""
    image = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
    assert not image.isNull(), f"{path} is not an image"
    rows = np.frombuffer(image.constBits(), dtype=np.uint8).reshape(image.height(), image.bytesPerLine())
    pixels = rows[:, : image.width() * 3].reshape(image.height(), image.width(), 3)[::4, ::4]
    return image.width(), image.height(), len(np.unique(pixels.reshape(-1, 3), axis=0))


def test_json_has_one_row_per_gpu_with_health_holder_and_alerts(history, tmp_path):
    out = tmp_path / "snap.json"
    assert export("--format", "json", "--db", str(history), "-o", str(out)) == 0
    document = json.loads(out.read_text())
    assert document["source"] == f"history:{history}"
    assert time.time() - document["collected_at"] < 300
    assert document["allocations_available"] and document["alerts_available"]
    gpus = document["gpus"]
    assert [g["uuid"] for g in gpus] == [g.uuid for g in GPUS]
    for key in (
        "node", "name", "serial", "state", "util_gpu_pct", "power_w", "health", "health_reason", "customer", "contract", "alerts",
    ):
        assert all(key in g for g in gpus), key
    failing = gpus[FAILING]
    assert failing["health"] == "critical" and "uncorrectable ECC" in failing["health_reason"]
    assert [a["summary"] for a in failing["alerts"]] == [ALERT_SUMMARY]
    assert failing["alerts"][0]["severity"] == "critical"
    assert {g["uuid"] for g in gpus if g["customer"] == CUSTOMER and g["contract"] == CONTRACT} == {
        GPUS[i].uuid for i in ALLOCATED
    }
    healthy = gpus[5]
    assert (
        healthy["health"] == "ok" and healthy["health_reason"] is None and healthy["alerts"] == [] and healthy["customer"] is None
    )


def test_csv_has_the_documented_header_and_one_row_per_gpu(history, tmp_path):
    out = tmp_path / "snap.csv"
    assert export("--format", "csv", "--db", str(history), "-o", str(out)) == 0
    with out.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames) == CSV_COLUMNS
    assert len(rows) == N_GPUS
    failing = rows[FAILING]
    assert failing["uuid"] == GPUS[FAILING].uuid
    assert failing["health"] == "critical" and "uncorrectable ECC" in failing["health_reason"]
    assert failing["alert_count"] == "1" and ALERT_SUMMARY in failing["alerts"]
    assert failing["customer"] == CUSTOMER
    assert rows[5]["health"] == "ok" and rows[5]["health_reason"] == "" and rows[5]["alert_count"] == "0"


def test_live_source_without_history_says_allocations_and_alerts_are_not_available(tmp_path):
    out = tmp_path / "snap.json"
    assert export("--format", "json", "--source", "demo:8", "--db", str(tmp_path / "none.sqlite"), "-o", str(out)) == 0
    document = json.loads(out.read_text())
    assert document["source"] == "demo:8" and document["simulated"] is True
    assert len(document["gpus"]) == 8
    assert not document["allocations_available"] and not document["alerts_available"]
    assert all(g["alerts"] is None and g["customer"] is None for g in document["gpus"])


def test_png_is_the_window_at_its_size_and_twice_that_with_scale_2(tmp_path):
    one, two = tmp_path / "one.png", tmp_path / "two.png"
    assert export("--format", "png", "--source", "demo:16", "-o", str(one)) == 0
    assert export("--format", "png", "--source", "demo:16", "--scale", "2", "-o", str(two)) == 0
    w1, h1, colours = image_stats(one)
    assert (w1, h1) == (1400, 860)
    assert colours > 20, "the picture is blank"
    w2, h2, _ = image_stats(two)
    assert (w2, h2) == (2 * w1, 2 * h1)


def test_png_of_the_grid_view_is_smaller_than_the_window(tmp_path):
    out = tmp_path / "grid.png"
    assert export("--format", "png", "--source", "demo:16", "--view", "grid", "-o", str(out)) == 0
    width, height, colours = image_stats(out)
    assert 0 < width < 1400 and 0 < height < 860 and colours > 5


def pdf_text(path: Path) -> str:
    return subprocess.run(
        [require_tool("pdftotext"), "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_pdf_report_opens_with_numbered_pages_and_every_section(history, tmp_path):
    out = tmp_path / "report.pdf"
    assert export("--format", "pdf", "--db", str(history), "-o", str(out)) == 0
    info = subprocess.run([require_tool("pdfinfo"), str(out)], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[1] for line in info.splitlines() if line.startswith("Pages:")))
    assert pages >= 3, "header, grid, alerts, customers and 4 GPUs' plots do not fit on 2 pages"
    text = pdf_text(out)
    for k in range(1, pages + 1):
        assert f"Page {k} of {pages}" in text
    assert "UTC" in text and f"history:{history}" in text
    assert ALERT_SUMMARY in text and CUSTOMER in text and CONTRACT in text
    assert GPUS[FAILING].uuid in text, "the failing GPU is plotted"

    prefix = tmp_path / "page"
    subprocess.run([require_tool("pdftoppm"), "-r", "40", "-f", "1", "-l", "1", "-png", str(out), str(prefix)], check=True)
    (page,) = tmp_path.glob("page*.png")
    _, _, colours = image_stats(page)
    assert colours > 20, "the first page renders blank"


def test_pdf_without_history_says_what_is_not_available(tmp_path):
    out = tmp_path / "report.pdf"
    assert export("--format", "pdf", "--source", "demo:8", "--db", str(tmp_path / "none.sqlite"), "-o", str(out)) == 0
    text = pdf_text(out)
    assert "Alerts not available" in text and "Allocations not available" in text


def test_headless_pdf_needs_no_display(tmp_path):
    """What cron runs: no DISPLAY, no WAYLAND_DISPLAY, no QT_QPA_PLATFORM; default file name."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run(
        [sys.executable, "-m", "gpuops", "export", "--format", "pdf", "--source", "demo:8"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    (made,) = tmp_path.glob("gpuops-snapshot-*.pdf")
    assert made.name[len("gpuops-snapshot-"):-len(".pdf")].replace("-", "").isdigit()
    assert made.read_bytes().startswith(b"%PDF")
    assert "propagateSizeHints" not in result.stderr, "the offscreen platform's notices reach the user"


@pytest.mark.parametrize("fmt", ["json", "png"])
def test_existing_file_is_kept_without_force_and_replaced_with_it(tmp_path, capsys, fmt):
    out = tmp_path / f"snap.{fmt}"
    out.write_bytes(b"keep me")
    assert export("--format", fmt, "--source", "demo:8", "-o", str(out)) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert export("--format", fmt, "--source", "demo:8", "-o", str(out), "--force") == 0
    assert out.read_bytes() != b"keep me"
    assert [p.name for p in tmp_path.iterdir()] == [out.name], "a temporary file was left behind"


def test_pictures_are_snapshots_only(tmp_path, capsys):
    assert export("--format", "pdf", "--since", "1h", "-o", str(tmp_path / "x.pdf")) == 2
    assert "snapshot" in capsys.readouterr().err
    assert not (tmp_path / "x.pdf").exists()


def test_bad_source_is_one_clear_line_and_no_file(tmp_path, capsys):
    out = tmp_path / "x.json"
    assert export("--format", "json", "--source", "bogus:1", "-o", str(out)) == 1
    err = capsys.readouterr().err
    assert "unknown source 'bogus:1'" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []

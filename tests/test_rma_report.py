"""`gpuops rma report`: the content a vendor's RMA form asks for, from a history whose every
reading is known, as JSON and as a PDF whose pages are looked at as images."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import unicodedata
from dataclasses import replace

import numpy as np
import pytest

from gpuops.cli import main
from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.lifecycle.book import LifecycleBook
from gpuops.core.lifecycle.rma import rma_report
from gpuops.core.lifecycle.states import State
from gpuops.core.store.connection import open_database
from gpuops.core.store.writer import HistoryWriter
from gpuops.core.telemetry import GpuState
from gpuops.core.timefmt import format_ms
from gpuops.core.xid_catalog import describe_xid
from tests.samples import make_inventory, make_sample

NOW = time.time() // 3600 * 3600  # the last full hour: the command reports as of the wall clock
MINUTES = 180
GPUS = tuple(replace(g, vbios_version="96.00.89.00.01", driver_version="570.124.06") for g in make_inventory(8))
SUSPECT = 3
XID_AT = {40: 48, 100: 79}  # minute -> XID code
ECC_FROM = 40  # uncorrectable ECC errors: 2 from here
REMAP_FROM = 100  # row remap failure from here
LOST = range(101, 106)  # off the bus


def _poll(minute: int):
    ts = NOW - (MINUTES - minute) * 60
    temp = 60.0 + 20.0 * minute / MINUTES  # 60 -> 80 °C
    values = {
        "temp_c": {SUSPECT: temp},
        "power_w": {SUSPECT: 300.0 + minute},
        "ecc_uncorrected_volatile": {SUSPECT: 2.0 if minute >= ECC_FROM else 0.0},
        "remapped_rows_failure": {SUSPECT: 1.0 if minute >= REMAP_FROM else 0.0},
    }
    xids = ((SUSPECT, XID_AT[minute]),) if minute in XID_AT else ()
    states = {SUSPECT: GpuState.LOST} if minute in LOST else {}
    return make_sample(gpus=GPUS, ts=ts, values=values, xids=xids, states=states)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    path = tmp_path_factory.mktemp("rma") / "history.sqlite"
    with HistoryWriter(path) as writer:
        for minute in range(MINUTES + 1):
            writer.write(_poll(minute))
    conn, _ = open_database(path, create=False)
    clock = {"ms": int(NOW * 1000) - 3_600_000}
    repo = AllocationRepository(conn, user="carol@dc1", clock=lambda: clock["ms"] / 1000)
    book = LifecycleBook(repo)
    book.transition("node00", State.REPAIR, "XID 79 and a row remap failure", gpu_uuid=GPUS[SUSPECT].uuid, ticket="INC-1")
    clock["ms"] += 600_000
    book.transition("node00", State.RMA, "vendor replaces the GPU", gpu_uuid=GPUS[SUSPECT].uuid, ticket="NV-778812")
    conn.close()
    return path


def test_the_report_holds_identity_xids_counters_the_last_day_and_the_lifecycle(history):
    report = rma_report(history, GPUS[SUSPECT].uuid, now=NOW + 60)  # a minute after the last poll
    gpu = report["gpu"]
    assert (gpu["serial"], gpu["pci_bus_id"], gpu["vbios_version"], gpu["driver_version"], gpu["node"]) == (
        GPUS[SUSPECT].serial, GPUS[SUSPECT].pci_bus_id, "96.00.89.00.01", "570.124.06", "node00"
    )
    assert gpu["part_number"] is None and "part_number" in report["not_reported"]
    xids = report["xid_history"]
    assert [x["code"] for x in xids] == [48, 79]
    assert xids[1]["description"] == describe_xid(79).description
    assert xids[1]["ts"] == format_ms(int(NOW - (MINUTES - 100) * 60) * 1000)
    assert xids[0]["mnemonic"] == describe_xid(48).mnemonic
    assert [b["event"] for b in report["bus_history"]] == ["gpu_lost", "gpu_recovered"]
    ecc = report["ecc_and_row_remap"]["ecc_uncorrected_volatile"]
    assert ecc["last"] == 2.0 and [c["value"] for c in ecc["changes"]] == [0.0, 2.0]
    remap = report["ecc_and_row_remap"]["remapped_rows_failure"]
    assert remap["last"] == 1.0 and [c["value"] for c in remap["changes"]] == [0.0, 1.0]
    day = report["last_24h"]
    assert day["temp_c"]["max"] == pytest.approx(80.0) and day["temp_c"]["min"] == pytest.approx(60.0)
    assert day["power_w"]["max"] == pytest.approx(300.0 + MINUTES)
    assert 0 < len(day["temp_c"]["points"]) <= 288
    lifecycle = report["lifecycle"]
    assert lifecycle["current"] == "rma" and lifecycle["ticket"] == "NV-778812"
    assert [(t["state"], t["user"]) for t in lifecycle["history"]] == [("repair", "carol@dc1"), ("rma", "carol@dc1")]


def test_a_healthy_gpu_has_empty_histories_and_an_unknown_one_is_one_line(history, capsys):
    report = rma_report(history, GPUS[0].uuid, now=NOW)
    assert report["xid_history"] == [] and report["lifecycle"] == {"current": "production", "ticket": None, "history": []}
    assert report["ecc_and_row_remap"]["ecc_uncorrected_volatile"]["changes"] == [{"ts": report["first_seen"], "value": 0.0}]
    assert main(["rma", "report", "GPU-nope", "--format", "json", "--db", str(history)]) == 1
    assert "no GPU GPU-nope" in capsys.readouterr().err


def test_the_command_writes_json_and_refuses_to_overwrite(history, tmp_path, capsys):
    out = tmp_path / "rma.json"
    assert main(["rma", "report", GPUS[SUSPECT].uuid, "--format", "json", "-o", str(out), "--db", str(history)]) == 0
    assert json.loads(out.read_text())["gpu"]["uuid"] == GPUS[SUSPECT].uuid
    assert main(["rma", "report", GPUS[SUSPECT].uuid, "--format", "json", "-o", str(out), "--db", str(history)]) == 2


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) is not installed")
def test_the_pdf_pages_show_the_report(history, tmp_path):
    out = tmp_path / "rma.pdf"
    assert main(["rma", "report", GPUS[SUSPECT].uuid, "--format", "pdf", "-o", str(out), "--db", str(history)]) == 0
    assert out.read_bytes().startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True).stdout
    text = unicodedata.normalize("NFKC", text)  # the PDF's ligatures (ﬀ, ﬁ) as letters
    for expected in (GPUS[SUSPECT].uuid, GPUS[SUSPECT].serial, "not reported", "96.00.89.00.01", "NV-778812",
                     describe_xid(79).description[:30], "remapped_rows_failure", "Temperature (°C)", "80.0"):
        assert expected in text, expected
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(out), str(tmp_path / "page")], check=True, capture_output=True)
    pages = sorted(tmp_path.glob("page*.png"))
    assert pages
    from PySide6.QtGui import QImage

    image = QImage(str(pages[0]))
    pixels = np.array([[image.pixelColor(x, y).lightness() for x in range(0, image.width(), 4)]
                       for y in range(0, image.height(), 4)])
    assert (pixels < 128).mean() > 0.01  # ink on the page: text and curves, not a blank sheet

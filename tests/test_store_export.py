"""`gpuops export`: CSV and JSON with the same rows, filters, rollup columns, and an existing
output file that is never replaced without --force."""

from __future__ import annotations

import csv
import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from gpuops.cli import main
from gpuops.core.store import HistoryWriter
from gpuops.core.telemetry import SAMPLE_METRICS
from tests.samples import make_inventory
from tests.store_support import varied_sample

NOW = time.time()
START = NOW - 900  # 15 minutes of polls every 30 s, ending just now
TIMES = [START + 30 * k for k in range(30)]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "history.sqlite"
    gpus = make_inventory(3)
    with HistoryWriter(path) as writer:
        for ts in TIMES:
            writer.write(varied_sample(gpus, ts, seed=8))
            writer.maintain(0.01)
    return path


def _export(db: Path, out: Path, *args: str) -> int:
    return main(["export", "--db", str(db), "-o", str(out), *args])


def test_csv_has_one_row_per_gpu_per_poll(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "history.csv"
    assert _export(db, out, "--format", "csv", "--since", "1h") == 0
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["ts", "uuid", "node", *SAMPLE_METRICS]
    gpus = make_inventory(3)
    assert len(rows) == 3 * len(TIMES)
    first = [r for r in rows if r["uuid"] == gpus[1].uuid]
    assert [datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp() for r in first] == pytest.approx(TIMES, abs=0.001)
    sample = varied_sample(gpus, TIMES[4], seed=8)
    assert first[4]["node"] == gpus[1].node and first[4]["ts"].endswith("Z")
    assert float(first[4]["power_w"]) == pytest.approx(sample.metrics["power_w"][1], abs=0.0501)  # half a 0.1 W step
    assert int(first[4]["util_gpu_pct"]) == sample.metrics["util_gpu_pct"][1]
    assert first[4]["mem_temp_c"] == ""  # not reported by this GPU
    assert first[4]["fan_pct"] == ""


def test_json_holds_the_same_rows(db: Path, tmp_path: Path) -> None:
    assert _export(db, tmp_path / "a.csv", "--format", "csv", "--since", "1h", "--metric", "power_w", "--metric", "energy_j") == 0
    assert (
        _export(db, tmp_path / "a.json", "--format", "json", "--since", "1h", "--metric", "power_w", "--metric", "energy_j") == 0
    )
    document = json.loads((tmp_path / "a.json").read_text())
    assert document["format"] == "gpuops-history" and document["resolution"] == "raw"
    assert document["columns"] == ["ts", "uuid", "node", "power_w", "energy_j"]
    with open(tmp_path / "a.csv", newline="") as handle:
        csv_rows = list(csv.DictReader(handle))
    assert len(document["rows"]) == len(csv_rows) == 3 * len(TIMES)
    for from_json, from_csv in zip(document["rows"], csv_rows, strict=True):
        assert {k: "" if v is None else str(v) for k, v in from_json.items()} == from_csv


def test_gpu_filter_and_minute_rollups(db: Path, tmp_path: Path) -> None:
    uuid = make_inventory(3)[2].uuid
    out = tmp_path / "minutes.csv"
    assert _export(db, out, "--format", "csv", "--since", "1h", "--gpu", uuid, "--metric", "util_gpu_pct",
                   "--metric", "energy_j", "--resolution", "1m") == 0
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["ts", "uuid", "node", "util_gpu_pct_min", "util_gpu_pct_avg", "util_gpu_pct_max", "energy_j_last"]
    assert {r["uuid"] for r in rows} == {uuid}
    assert 15 <= len(rows) <= 17 and all(r["ts"].endswith(":00.000Z") for r in rows)
    assert all(float(r["util_gpu_pct_min"]) <= float(r["util_gpu_pct_avg"]) <= float(r["util_gpu_pct_max"]) for r in rows)


def test_an_existing_file_is_kept_unless_forced(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "keep.csv"
    out.write_text("precious\n")
    assert _export(db, out, "--format", "csv", "--since", "1h") == 2
    assert "exists" in capsys.readouterr().err
    assert out.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.csv"]  # no temporary file left
    assert _export(db, out, "--format", "json", "--since", "1h", "--force") == 0
    assert json.loads(out.read_text())["rows"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--since", "yesterday"], "bad time"),
        (["--since", "1h", "--until", "2h"], "before --until"),
        (["--since", "1h", "--metric", "bogus"], "unknown metric"),
        (["--since", "1h", "--gpu", "GPU-nope"], "no GPU GPU-nope"),
    ],
)
def test_bad_requests_explain_themselves(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    out = tmp_path / "x.csv"
    assert _export(db, out, "--format", "csv", *args) != 0
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_export_of_a_missing_history_fails_without_creating_one(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert _export(tmp_path / "none.sqlite", tmp_path / "x.csv", "--format", "csv", "--since", "1h") == 1
    assert "no history" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []

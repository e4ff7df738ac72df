"""Every JSON document gpuops writes is strict JSON: a reading that is not a finite number (an
exporter's +Inf/-Inf, a NaN) is null, never `Infinity`/`NaN`, which other parsers refuse."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from gpuops.core.snapshot import make_snapshot, write_snapshot_json
from gpuops.core.store.export import ExportRequest, write_json
from gpuops.core.store.queries import HistoryReader
from gpuops.core.store.writer import HistoryWriter
from tests.samples import make_sample

NON_FINITE = {"power_w": {0: float("inf"), 1: float("-inf")}, "temp_c": {2: float("nan")}, "util_gpu_pct": {3: float("inf")}}


def strict(text: str):
    def refuse(constant: str):
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_a_snapshot_with_infinities_is_strict_json() -> None:
    sample = make_sample(4, ts=time.time(), values=NON_FINITE)
    out = io.StringIO()
    assert write_snapshot_json(make_snapshot("test", False, sample), out) == 4
    gpus = strict(out.getvalue())["gpus"]
    assert [g["power_w"] for g in gpus] == [None, None, 400.0, 400.0]
    assert gpus[2]["temp_c"] is None and gpus[3]["util_gpu_pct"] is None


def test_a_history_export_with_infinities_is_strict_json(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    t0 = time.time() - 60
    with HistoryWriter(path) as writer:
        for k in range(3):
            writer.write(make_sample(4, ts=t0 + 10 * k, values=NON_FINITE))
    out = io.StringIO()
    with HistoryReader(path, read_only=True) as reader:
        count = write_json(reader, ExportRequest(t0 - 1, t0 + 60, "raw", None, None), out)
    document = strict(out.getvalue())
    assert count == len(document["rows"]) == 12
    # (the store keeps a non-finite reading as "not read"; the export must stay strict either way)
    finite_power = [r["power_w"] for r in document["rows"] if r["power_w"] is not None]
    assert finite_power and all(abs(p) < 1e6 for p in finite_power)


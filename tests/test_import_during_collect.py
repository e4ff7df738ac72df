"""A bulk allocation import does not stop a running collector: while `gpuops allocations import`
stores 20,000 rows in the history `gpuops collect --interval 0.2` writes, the stored polls keep
coming, no gap between two of them longer than one interval plus a margin for a 2-core machine
shared with the import."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from gpuops.core.allocations.model import gpu_model_of
from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.lifecycle.book import out_of_production
from gpuops.core.store.queries import HistoryReader
from gpuops.core.timefmt import format_ms
from tests.servers import wait_until

INTERVAL_S = 0.2
#: Scheduling on 2 busy cores (the import's process and the collector's share them).
MARGIN_S = 0.8
ROWS = 20_000
DAY_MS = 86_400_000
START_MS = 1_767_225_600_000  # 2026-01-01


def gpuops(*args: str) -> list[str]:
    return [sys.executable, "-m", "gpuops", *args]


def write_import(path: Path, gpu_names: dict[str, str]) -> None:
    """ROWS back-to-back one-hour allocations, spread over the GPUs, one contract per GPU model."""
    by_model: dict[str, list[str]] = {}
    for uuid, name in sorted(gpu_names.items()):
        by_model.setdefault(gpu_model_of(name), []).append(uuid)
    per_gpu = -(-ROWS // len(gpu_names))
    lines = ["customer,contract,contract_type,gpu_uuid,start,end,price_per_gpu_hour"]
    for k, (_model, uuids) in enumerate(sorted(by_model.items())):
        for uuid in uuids:
            for s in range(per_gpu):
                if len(lines) > ROWS:
                    break
                start = START_MS + s * 3_600_000
                lines.append(f"Importer,contract-{k},on_demand,{uuid},{format_ms(start)},{format_ms(start + 3_600_000)},1.5")
    path.write_text("\n".join(lines) + "\n")


def stored_allocations(db: Path) -> int:
    repo = AllocationRepository.open(db, read_only=True)
    try:
        return len(repo.allocations())
    finally:
        repo.close()


def poll_times(db: Path) -> np.ndarray:
    with HistoryReader(db, read_only=True) as reader:
        uuid = reader.gpus()[0].uuid
        return reader.table(uuid, 0, time.time() + 60, "raw", ["util_gpu_pct"]).ts


def test_a_20000_row_import_does_not_stop_the_collectors_polls(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    subprocess.run(
        gpuops("collect", "--once", "--source", "demo:8", "--db", str(db)), check=True, capture_output=True, timeout=120
    )
    repo = AllocationRepository.open(db, read_only=True)
    resting = out_of_production(repo.conn)  # the demo book drains a node: only production GPUs take allocations
    names = {uuid: name for uuid, name in repo.gpu_names().items() if uuid not in resting}
    repo.close()
    csv_path = tmp_path / "allocations.csv"
    write_import(csv_path, names)

    log = tmp_path / "collect.log"
    with log.open("w") as log_file:
        collector = subprocess.Popen(
            gpuops("collect", "--interval", str(INTERVAL_S), "--source", "demo:8", "--db", str(db)), stderr=log_file,
        )
    try:
        before = len(poll_times(db))
        wait_until("the collector's first polls", lambda: len(poll_times(db)) >= before + 5, 30)
        held = stored_allocations(db)  # the demo fleet's book, seeded by the first poll
        started = time.time()
        done = subprocess.run(gpuops("allocations", "import", str(csv_path), "--db", str(db)), capture_output=True, text=True,
                              timeout=300)
        ended = time.time()
        assert done.returncode == 0, done.stderr
        time.sleep(1.0)  # polls after the import
    finally:
        collector.terminate()
        collector.wait(10)
    assert collector.returncode == 0, log.read_text()

    assert stored_allocations(db) == held + ROWS
    ts = poll_times(db)
    during = ts[(ts >= started - 1.0) & (ts <= ended + 1.0)]
    gaps = np.diff(during)
    assert len(during) >= (ended - started) / (INTERVAL_S + MARGIN_S), (len(during), ended - started)
    assert gaps.max() <= INTERVAL_S + MARGIN_S, (
        f"longest gap between stored polls {gaps.max():.2f} s during a {ended - started:.1f} s import"
    )

"""The background workers take turns on each poll's work (see gui.poll_lane): while one holds
the lane, the other's per-poll work waits, and then goes ahead."""

from __future__ import annotations

import time
from pathlib import Path

from gpuops.core.store.writer import HistoryWriter
from gpuops.gui.customers.worker import AllocationWorker
from gpuops.gui.workers.poll_lane import PER_POLL_WORK
from tests.gui_support import make_inventory, make_sample

GPUS = make_inventory(8)


def test_the_allocation_workers_poll_waits_for_the_lane_then_goes_ahead(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    with HistoryWriter(path) as writer:
        writer.write(make_sample(GPUS, ts=time.time() - 60))
    worker = AllocationWorker(path)
    held: list = []
    worker.fleetHeld.connect(held.append)
    try:
        with PER_POLL_WORK:
            worker.process(make_sample(GPUS))
            qtbot.wait(300)
            assert held == []
        qtbot.waitUntil(lambda: len(held) == 1, timeout=10_000)
        assert held[0].customers == {}  # nobody holds these GPUs
    finally:
        assert worker.stop()

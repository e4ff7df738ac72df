"""Cost of the operations views, offscreen.

- Regrouping, re-sorting and filtering the grid at 10,000 GPUs: the call plus a repaint.
- Switching the detail view to another GPU with the 24 h range chosen: from the selection to
  the plots drawn from the history database (the query runs on the loader's worker thread). The
  database holds 24 h of a 64-GPU simulated fleet, one poll every 30 s, written by the store
  writer and compacted.
- Responsiveness while polling 10,000 simulated GPUs once a second for ~20 s, recording the
  history on the writer thread and with a GPU selected: the longest run of the window's
  sample-handling slot, and the longest stall of the GUI event loop (the largest gap between
  ticks of a 5 ms timer, minus the 5 ms), which includes every paint.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QElapsedTimer, QTimer
from PySide6.QtWidgets import QApplication

from gpuops.core.sources.demo import DemoSource
from gpuops.core.store import HistoryWriter
from gpuops.gui.app.console_window import ConsoleWindow
from gpuops.gui.app.launch import application
from gpuops.gui.live.poller import PollResult

WINDOW_SIZE_PX = (1400, 860)
GRID_GPUS = 10_000
REGROUP_RUNS = 7
HISTORY_GPUS = 64
HISTORY_SPAN_S = 86_400.0
HISTORY_STEP_S = 30.0
DETAIL_SWITCHES = 7
LIVE_SECONDS = 20.0
TICK_MS = 5


def _window(source_gpus: int, history_db: Path | None) -> ConsoleWindow:
    application()
    window = ConsoleWindow(lambda: DemoSource(source_gpus, seed=0), interval_s=1.0, history_db=history_db)
    window.resize(*WINDOW_SIZE_PX)
    window.show()
    QApplication.processEvents()
    return window


def _close(window: ConsoleWindow) -> None:
    window.close()
    window.deleteLater()
    QApplication.processEvents()


def _regroup_ms() -> dict[str, float]:
    """Median ms of each grid rearrangement at 10,000 GPUs, repaint included."""
    window = _window(GRID_GPUS, None)
    source = DemoSource(GRID_GPUS, seed=0)
    now = time.time()
    for k in range(3):
        window.apply_result(PollResult(source.sample_at(now + k), 0.0))
    QApplication.processEvents()
    grid = window.grid
    changes = {
        "group by health": lambda: grid.set_grouping("health"),
        "group by model": lambda: grid.set_grouping("model"),
        "group by node (topology)": lambda: grid.set_grouping("node"),
        "sort by value": lambda: grid.set_sort("metric"),
        "sort by topology": lambda: grid.set_sort("topology"),
        "filter 'health:warning'": lambda: grid.set_filter("health:warning"),
        "filter by a word": lambda: grid.set_filter("node-01"),
        "clear the filter": lambda: grid.set_filter(""),
    }
    timings: dict[str, list[float]] = {name: [] for name in changes}
    for _ in range(REGROUP_RUNS):
        for name, change in changes.items():
            started = time.perf_counter()
            change()
            grid.view.viewport().repaint()
            timings[name].append((time.perf_counter() - started) * 1e3)
    _close(window)
    return {name: statistics.median(values) for name, values in timings.items()}


def _history_db(directory: Path) -> Path:
    """24 h of a simulated fleet, compacted as a long-running collector would leave it."""
    path = directory / "history.sqlite"
    source = DemoSource(HISTORY_GPUS, seed=0)
    end = time.time()
    with HistoryWriter(path) as writer:
        ts = end - HISTORY_SPAN_S
        while ts < end:
            writer.write(source.sample_at(ts))
            ts += HISTORY_STEP_S
        while writer.maintain(1.0):
            pass
    return path


def _detail_switch_ms(db: Path) -> tuple[float, float]:
    """Median and worst ms from selecting a GPU (24 h chosen) to its history plotted."""
    window = _window(HISTORY_GPUS, db)
    source = DemoSource(HISTORY_GPUS, seed=0)
    window.apply_result(PollResult(source.sample_at(time.time()), 0.0))
    detail = window.detail
    detail.picker.choose("24 h")
    gpus = window.last_sample.gpus  # type: ignore[union-attr]  # a poll was just applied
    durations = []
    for k in range(DETAIL_SWITCHES + 1):
        uuid = gpus[(k * 7) % len(gpus)].uuid
        started = time.perf_counter()
        window.select_gpu(uuid)
        while detail.history is None or detail.history.uuid != uuid:
            QApplication.processEvents()
            time.sleep(0.0005)
        QApplication.processEvents()  # the plots take the new data
        if k:  # the first switch opens the database
            durations.append((time.perf_counter() - started) * 1e3)
    _close(window)
    return statistics.median(durations), max(durations)


def _live_stalls_ms(db: Path) -> tuple[float, float, float, int]:
    """(max slot ms, median slot ms, max event-loop stall ms, polls) at 10,000 GPUs, 1 Hz."""
    app = application()
    window = _window(GRID_GPUS, db)
    slot_ms: list[float] = []
    stalls: list[float] = []
    clock = QElapsedTimer()
    apply_result = window.apply_result

    def timed(result: PollResult) -> None:
        started = time.perf_counter()
        apply_result(result)
        slot_ms.append((time.perf_counter() - started) * 1e3)
        if len(slot_ms) == 2:
            window.select_gpu(result.sample.gpus[0].uuid)

    window.apply_result = timed  # type: ignore[method-assign] # what the window's live-poll slot calls
    ticker = QTimer()
    ticker.setInterval(TICK_MS)

    def tick() -> None:
        if clock.isValid() and len(slot_ms) >= 3:  # from the third poll: past start-up
            stalls.append(clock.nsecsElapsed() / 1e6 - TICK_MS)
        clock.restart()

    ticker.timeout.connect(tick)
    ticker.start()
    window.start()
    QTimer.singleShot(round((LIVE_SECONDS + 5) * 1000), app.quit)
    app.exec()
    ticker.stop()
    _close(window)
    measured = slot_ms[2:]
    return max(measured), statistics.median(measured), max(stalls, default=float("nan")), len(slot_ms)


def run() -> list[dict]:
    rows = []
    for name, ms in _regroup_ms().items():
        rows.append(
            {
                "measure": f"grid {name}, {GRID_GPUS:,} GPUs (incl. repaint)",
                "value": ms,
                "unit": "ms",
                "target": "<= 50",
                "runs": REGROUP_RUNS,
            }
        )
    with tempfile.TemporaryDirectory(prefix="gpuops-bench-views-") as tmp:
        started = time.perf_counter()
        db = _history_db(Path(tmp))
        built_s = time.perf_counter() - started
        median_ms, worst_ms = _detail_switch_ms(db)
        rows.append(
            {
                "measure": "switch detail view to another GPU, 24 h range from the history",
                "value": median_ms,
                "unit": "ms",
                "target": "<= 100",
                "worst_ms": round(worst_ms, 1),
                "history": f"{HISTORY_GPUS} GPUs, 24 h, every {HISTORY_STEP_S:g} s",
                "db_build_s": round(built_s, 1),
            }
        )
        live_db = Path(tmp) / "live.sqlite"
        slot_max, slot_median, stall_max, polls = _live_stalls_ms(live_db)
    rows.append(
        {
            "measure": f"sample-handling slot, {GRID_GPUS:,} GPUs at 1 Hz, worst",
            "value": slot_max,
            "unit": "ms",
            "target": "<= 50",
            "median_ms": round(slot_median, 1),
            "polls": polls,
        }
    )
    rows.append(
        {
            "measure": f"longest GUI event-loop stall, {GRID_GPUS:,} GPUs at 1 Hz, recording history",
            "value": stall_max,
            "unit": "ms",
            "target": "<= 50",
            "seconds": LIVE_SECONDS,
            "load_avg_1min": os.getloadavg()[0],
        }
    )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)

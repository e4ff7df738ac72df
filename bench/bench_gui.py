"""Cost of the console window, offscreen: the fleet grid's update-and-repaint at 1,000 and 10,000
GPUs, the whole GUI's CPU use at 1,000 GPUs polled once a second, and the time from launching
`gpuops` to its first painted frame.

The CPU figure is the process's CPU time (all threads: the demo source's polls included) over
wall time, measured after the first sample is on screen, with one GPU selected so the detail
plots update too (no history database: the window alone).

Launches run `gpuops --no-history` (a benchmark must not write the user's history; one more row
records into a throwaway database, as a default launch records) and use a private bytecode
cache, warmed by one launch that is reported on its own: an installed console has its bytecode
compiled, while this environment may forbid writing it (PYTHONDONTWRITEBYTECODE), which would
add the compiling of every module to each launch.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from gpuops.core.sources.demo import DemoSource
from gpuops.gui.app.console_window import ConsoleWindow
from gpuops.gui.app.launch import EXIT_AFTER_FIRST_FRAME_ENV, application
from gpuops.gui.grid.fleet_grid import FleetGrid
from gpuops.gui.live.fleet_index import FleetIndex

GRID_SIZE_PX = (900, 640)
WINDOW_SIZE_PX = (1400, 860)
GRID_WARM_UP_FRAMES = 5
GRID_MEASURED_FRAMES = 40
CPU_GPUS = 1_000
CPU_SECONDS = 15.0
LAUNCH_RUNS = 3


def _grid_repaint_ms(n_gpus: int) -> float:
    """Median time to show a new sample in the grid and repaint it, in ms."""
    application()
    grid = FleetGrid()
    grid.resize(*GRID_SIZE_PX)
    grid.show()
    source = DemoSource(n_gpus, seed=0)
    start = time.time()
    samples = [source.sample_at(start + k) for k in range(GRID_WARM_UP_FRAMES + GRID_MEASURED_FRAMES)]
    index = FleetIndex(samples[0].gpus)
    QApplication.processEvents()
    durations = []
    for k, sample in enumerate(samples):
        started = time.perf_counter()
        grid.show_sample(sample, index)
        grid.view.viewport().repaint()
        if k >= GRID_WARM_UP_FRAMES:
            durations.append(time.perf_counter() - started)
    grid.close()
    grid.deleteLater()
    QApplication.processEvents()
    return statistics.median(durations) * 1e3


def _gui_cpu_percent() -> tuple[float, int]:
    """CPU time over wall time (% of one core) with the live window at 1 Hz; and polls seen."""
    app = application()
    window = ConsoleWindow(lambda: DemoSource(CPU_GPUS, seed=0), interval_s=1.0)
    window.resize(*WINDOW_SIZE_PX)
    window.show()
    window.start()
    polls = 0
    marks: dict[str, float] = {}

    def on_sample(_result: object) -> None:
        nonlocal polls
        polls += 1
        if polls == 2:  # the first poll builds every process list once; start after it
            sample = window.last_sample
            assert sample is not None
            window.select_gpu(sample.gpus[0].uuid)
            marks["cpu"], marks["wall"] = time.process_time(), time.perf_counter()
            QTimer.singleShot(round(CPU_SECONDS * 1000), app.quit)

    window.poller.sampleReady.connect(on_sample)
    app.exec()
    cpu, wall = time.process_time() - marks["cpu"], time.perf_counter() - marks["wall"]
    window.close()
    window.deleteLater()
    QApplication.processEvents()
    return 100.0 * cpu / wall, polls


def _launch(env: dict[str, str], history: list[str]) -> dict[str, float]:
    """One `gpuops` launch to its first frame with data; its first-frame report. `history`:
    ["--no-history"] or ["--db", path]."""
    done = subprocess.run(
        [sys.executable, "-m", "gpuops", "--source", f"demo:{CPU_GPUS}", *history],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _first_frame_s() -> tuple[float, float, float, float]:
    """Median seconds from process start to the first paint and to the first paint with data
    (bytecode cached, no history), the first frame with data of the launch that compiled the
    bytecode, and the median first frame with data recording into a new history database."""
    with tempfile.TemporaryDirectory(prefix="gpuops-bench-launch-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(QT_QPA_PLATFORM="offscreen", PYTHONPYCACHEPREFIX=f"{tmp}/pycache", **{EXIT_AFTER_FIRST_FRAME_ENV: "1"})
        cold = _launch(env, ["--no-history"])["first_data_frame_s"]
        reports = [_launch(env, ["--no-history"]) for _ in range(LAUNCH_RUNS)]
        with_history = [_launch(env, ["--db", f"{tmp}/history-{k}.sqlite"])["first_data_frame_s"] for k in range(LAUNCH_RUNS)]
    paints = [r["first_paint_s"] for r in reports]
    data_frames = [r["first_data_frame_s"] for r in reports]
    return statistics.median(paints), statistics.median(data_frames), cold, statistics.median(with_history)


def run() -> list[dict]:
    rows = []
    for n_gpus, target in ((1_000, "measure and report"), (10_000, "<= 8")):
        rows.append(
            {
                "measure": f"grid update + repaint, {n_gpus:,} GPUs",
                "value": _grid_repaint_ms(n_gpus),
                "unit": "ms",
                "target": target,
                "frames": GRID_MEASURED_FRAMES,
                "view_px": list(GRID_SIZE_PX),
            }
        )
    cpu_percent, polls = _gui_cpu_percent()
    rows.append(
        {
            "measure": f"GUI CPU (all threads), {CPU_GPUS:,} GPUs at 1 Hz, one GPU selected, no history",
            "value": cpu_percent,
            "unit": "% of one core",
            "target": "<= 15",
            "seconds": CPU_SECONDS,
            "polls": polls,
        }
    )
    first_paint_s, first_data_s, cold_s, with_history_s = _first_frame_s()
    rows.append(
        {
            "measure": f"launch to first frame with data (demo:{CPU_GPUS:,}, --no-history, bytecode cached)",
            "value": first_data_s,
            "unit": "s",
            "target": "<= 1.5",
            "runs": LAUNCH_RUNS,
            "load_avg_1min": os.getloadavg()[0],
        }
    )
    rows.append(
        {
            "measure": "launch to first paint of the window (bytecode cached)",
            "value": first_paint_s,
            "unit": "s",
            "target": "measure and report",
            "runs": LAUNCH_RUNS,
        }
    )
    rows.append(
        {
            "measure": "launch to first frame with data, recording into a new history database (bytecode cached)",
            "value": with_history_s,
            "unit": "s",
            "target": "measure and report",
            "runs": LAUNCH_RUNS,
        }
    )
    rows.append(
        {
            "measure": "launch to first frame with data, compiling the bytecode (first launch)",
            "value": cold_s,
            "unit": "s",
            "target": "measure and report",
            "runs": 1,
        }
    )
    return rows

"""A small, controllable TelemetrySource for GUI tests: deterministic values, and switches to
hang a poll (or the open), fail with SourceError, or mark GPUs lost."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from gpuops.core.sources.base import SourceError, TelemetrySource
from gpuops.core.telemetry import FleetSample, GpuInventory, GpuState, ProcessInfo, empty_metrics

if TYPE_CHECKING:
    from gpuops.gui.app.console_window import ConsoleWindow

GIB = 1 << 30
MEM_TOTAL_BYTES = 80 * GIB
POWER_LIMIT_W = 700.0


def gpu_uuid(i: int) -> str:
    return f"GPU-{i:08d}-0000-4000-8000-{i:012d}"


def make_inventory(n_gpus: int, gpus_per_node: int = 4) -> tuple[GpuInventory, ...]:
    return tuple(
        GpuInventory(
            uuid=gpu_uuid(i),
            index=i % gpus_per_node,
            node=f"node-{i // gpus_per_node:03d}",
            name="Test H100",
            mem_total_bytes=MEM_TOTAL_BYTES,
            power_limit_w=POWER_LIMIT_W,
            site="site-a",
            rack=f"rack-{i // (gpus_per_node * 4):02d}",
        )
        for i in range(n_gpus)
    )


def processes_of(i: int) -> tuple[ProcessInfo, ...]:
    """GPU i runs i % 3 processes; the second one is in another PID namespace (no name)."""
    return tuple(
        ProcessInfo(pid=1000 + 10 * i + k, name=None if k == 1 else f"train-{i}-{k}", used_mem_bytes=(k + 1) * GIB)
        for k in range(i % 3)
    )


def make_sample(
    gpus: tuple[GpuInventory, ...],
    *,
    ts: float | None = None,
    lost: frozenset[int] = frozenset(),
    shift: int = 0,
    stale_nodes: frozenset[str] = frozenset(),
) -> FleetSample:
    """Deterministic readings: utilization, temperature and power rank the GPUs differently,
    so the grid colours change with the metric. `shift` moves every value (fresh data)."""
    n = len(gpus)
    i = np.arange(n, dtype=np.float64)
    metrics = empty_metrics(n)
    metrics["util_gpu_pct"][:] = (i * 37 + shift) % 101
    metrics["mem_total_bytes"][:] = MEM_TOTAL_BYTES
    metrics["mem_used_bytes"][:] = ((i * 13 + shift) % 80) * GIB
    metrics["temp_c"][:] = 95 - (i * 11 + shift) % 70
    metrics["power_w"][:] = 100 + (i * 53 + shift) % 600
    metrics["power_limit_w"][:] = POWER_LIMIT_W
    state = np.full(n, GpuState.OK, dtype=np.uint8)
    for position in lost:
        state[position] = GpuState.LOST
        for column in metrics.values():
            column[position] = np.nan
    return FleetSample(
        ts=time.time() if ts is None else ts,
        gpus=gpus,
        metrics=metrics,
        state=state,
        processes=tuple(() if k in lost else processes_of(k) for k in range(n)),
        stale_nodes=stale_nodes,
    )


class FakeSource(TelemetrySource):
    """Polls return `make_sample`; the test thread flips the switches while the worker polls."""

    def __init__(self, n_gpus: int = 16, gpus_per_node: int = 4, *, simulated: bool = False, notice: str | None = None):
        self.name = f"fake:{n_gpus}"
        self.simulated = simulated
        self.notice = notice
        self.gpus = make_inventory(n_gpus, gpus_per_node)
        self.lost: frozenset[int] = frozenset()
        self.fail_with: str | None = None
        self.polls = 0
        self.closed = threading.Event()
        self.hanging = threading.Event()  # set by poll() while it is stuck
        self._hang = threading.Event()
        self._release = threading.Event()

    def hang(self) -> None:
        """Make the next polls block until `release()`."""
        self._release.clear()
        self._hang.set()

    def release(self) -> None:
        self._hang.clear()
        self._release.set()

    def poll(self) -> FleetSample:
        if self._hang.is_set():
            self.hanging.set()
            self._release.wait()
            self.hanging.clear()
        if self.fail_with is not None:
            raise SourceError(self.fail_with)
        self.polls += 1
        return make_sample(self.gpus, lost=self.lost, shift=self.polls)

    def close(self) -> None:
        self.closed.set()


#: GPUs with an uncorrectable ECC error in `FaultySource` (node-000 and node-002 of a 4-per-node fleet).
ECC_GPUS = (3, 9)


class FaultySource(FakeSource):
    """The fake fleet with an uncorrectable ECC error on ECC_GPUS: two critical alerts."""

    def poll(self) -> FleetSample:
        sample = super().poll()
        ecc = np.zeros(len(sample))
        ecc[list(ECC_GPUS)] = 1.0
        return dataclasses.replace(sample, metrics={**sample.metrics, "ecc_uncorrected_volatile": ecc})


# --- window fixtures and helpers ------------------------------------------------------------

#: The offscreen platform plugin warns that it cannot resize or raise windows; that is about
#: the test platform, not about gpuops.
OFFSCREEN_PLUGIN_NOTICE = r"This plugin does not support (propagateSizeHints|raise)\(\)"


def window_factory(qtbot, cleanups: list) -> Callable[..., ConsoleWindow]:
    """Build `make(source, ...)`: a shown ConsoleWindow polling `source` (or opened by `opener`);
    other keywords (stall_after_s, history_db, ...) go to ConsoleWindow."""
    from gpuops.gui.app.console_window import ConsoleWindow

    def make(source, *, interval_s=0.05, opener=None, start=True, size=(1000, 700), **options):
        window = ConsoleWindow(opener or (lambda: source), interval_s, **options)
        qtbot.addWidget(window)
        window.resize(*size)
        window.show()
        qtbot.waitExposed(window)
        cleanups.append((window, source))
        if start:
            window.start()
        return window

    return make


@contextmanager
def open_windows(qtbot) -> Iterator[Callable[..., ConsoleWindow]]:
    """`window_factory`'s `make` for a test, every window it made closed (and checked) after."""
    cleanups: list = []
    yield window_factory(qtbot, cleanups)
    close_windows(cleanups)


def close_windows(cleanups: list) -> None:
    """Close every window, unblock its source, and require its poller thread to end."""
    for window, source in cleanups:
        window.close()
        if source is not None:
            source.release()
        assert window.poller.join(5.0), "the poller thread outlived its test"
    leftover = [t.name for t in threading.enumerate() if t.name == "gpuops-poller"]
    assert not leftover, f"poller threads left running: {leftover}"


def cell_pixels(grid, position: int) -> np.ndarray:
    """The painted pixels of GPU `position`'s cell, as an (h, w, 3) uint8 RGB array."""
    QApplication.processEvents()  # let the view apply a new layout's range first
    rect = grid.cell_rect(position)
    image = grid.view.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), dtype=np.uint8).reshape(image.height(), image.bytesPerLine())
    pixels = rows[:, : image.width() * 3].reshape(image.height(), image.width(), 3)
    return pixels[rect.top() : rect.bottom() + 1, rect.left() : rect.right() + 1].copy()


def cell_rgb(grid, position: int, *, corner: bool = False) -> tuple[int, int, int]:
    """The colour painted for GPU `position`: at its cell centre, or near its top-left corner
    (away from any marker drawn over the centre)."""
    pixels = cell_pixels(grid, position)
    y, x = (2, 2) if corner else (pixels.shape[0] // 2, pixels.shape[1] // 2)
    return tuple(int(v) for v in pixels[y, x])

"""What the window lends to the parts built around it, and nothing more.

A console (alerts, customers) gets a `ConsoleHost`, never the MainWindow: the tabs it adds its
tab to, the grid and detail panel it annotates, a status line, the live-poll signal, and a few
requests (select a GPU, raise the window). The menus and the snapshot exporter read a
`FleetView`. Everything here is used on the GUI thread only; workers get frozen data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PySide6.QtCore import SignalInstance
from PySide6.QtWidgets import QTabWidget, QWidget

if TYPE_CHECKING:
    from gpuops.core.telemetry import FleetSample
    from gpuops.gui.gpu.detail_panel import DetailPanel
    from gpuops.gui.grid.fleet_grid import FleetGrid
    from gpuops.gui.live.poller import SourceInfo


class FleetView(Protocol):
    """The fleet as the window shows it now: for the menus and snapshot exports."""

    @property
    def grid(self) -> FleetGrid: ...

    @property
    def detail(self) -> DetailPanel: ...

    @property
    def last_sample(self) -> FleetSample | None: ...

    @property
    def source_info(self) -> SourceInfo | None: ...

    def gpu_history(self, uuid: str) -> tuple[np.ndarray, dict[str, np.ndarray]] | None: ...

    @property
    def replay_available(self) -> bool: ...

    def open_replay(self) -> None: ...


class ConsoleHost(Protocol):
    """See the module docstring. `poll_shown` carries each live PollResult once the window has
    drawn it."""

    @property
    def widget(self) -> QWidget: ...  # parent of the console's dialogs; its title carries the alert badge

    @property
    def tabs(self) -> QTabWidget: ...

    @property
    def grid(self) -> FleetGrid: ...

    @property
    def detail(self) -> DetailPanel: ...

    @property
    def poll_shown(self) -> SignalInstance: ...

    @property
    def replay_alerts(self) -> SignalInstance:
        """(instant, the alerts active then or None) while replaying; None back to live."""
        ...

    def last_sample(self) -> FleetSample | None: ...

    def show_status(self, text: str, timeout_ms: int) -> None: ...

    def select_gpu(self, uuid: str) -> None: ...

    def bring_to_front(self) -> None: ...


@dataclass(frozen=True)
class WindowHost:
    """The main window's `ConsoleHost`: these members of it, no others."""

    widget: QWidget
    tabs: QTabWidget
    grid: FleetGrid
    detail: DetailPanel
    poll_shown: SignalInstance
    replay_alerts: SignalInstance
    last_sample: Callable[[], FleetSample | None]
    show_status: Callable[[str, int], None]
    select_gpu: Callable[[str], None]
    bring_to_front: Callable[[], None]

"""Start the console: the Qt application, the window, and the event loop.

Set GPUOPS_EXIT_AFTER_FIRST_FRAME=1 to measure start-up: the app prints one JSON line with the
seconds from process start to the window's first paint and to the first paint showing data,
then exits. `bench/bench_gui.py` uses it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication

from gpuops.core.sources.factory import open_source
from gpuops.gui.app.console_window import ConsoleWindow
from gpuops.gui.app.icon import app_icon
from gpuops.gui.app.placement import place_first_time
from gpuops.gui.app.settings_store import load_preferences, restore_window_state, save_window_state
from gpuops.gui.app.single_instance import InstanceServer, ask_running_instance_to_raise
from gpuops.gui.app.theme import apply_theme
from gpuops.gui.window.main_window import MainWindow

log = logging.getLogger("gpuops.gui")

APP_NAME = "gpuops"
EXIT_AFTER_FIRST_FRAME_ENV = "GPUOPS_EXIT_AFTER_FIRST_FRAME"
_IMPORTED_AT = time.perf_counter()
#: How long a thread running Python keeps the GIL while another waits for it (CPython's default:
#: 5 ms). The poller, the history writer and the alert and allocation workers all run Python at
#: 10,000 GPUs, and the GUI thread waits up to this long each time it needs the GIL back: 1 ms
#: cut the longest event-loop stalls by about a fifth (bench_views).
GIL_SWITCH_INTERVAL_S = 0.001


def seconds_since_process_start() -> float:
    """From the kernel's record of when this process started (Linux); otherwise from when
    this module was imported, which misses only the interpreter's own start-up."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat, open("/proc/uptime", encoding="ascii") as uptime:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
            return float(uptime.read().split()[0]) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED_AT


class _FirstFrameProbe(QObject):
    """Notes the first paint of the window and the first paint that shows data, then quits."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self._first_paint_s: float | None = None
        self._reported = False
        window.grid.view.viewport().installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            # Measure once the paint has finished: the next turn of the event loop.
            QTimer.singleShot(0, self._painted)
        return False

    def _painted(self) -> None:
        if self._reported:
            return
        now = seconds_since_process_start()
        if self._first_paint_s is None:
            self._first_paint_s = now
        if self._window.last_sample is not None:
            self._reported = True
            print(json.dumps({"first_paint_s": round(self._first_paint_s, 3), "first_data_frame_s": round(now, 3)}))
            sys.stdout.flush()
            self._window.grid.view.viewport().removeEventFilter(self)
            self._window.close()
            QApplication.quit()


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    """Exceptions escaping Qt slots end up here: log them rather than lose them."""
    log.critical("uncaught exception", exc_info=(kind, value, tb))


def application() -> QApplication:
    """The QApplication, created once, with the identity desktops and settings use."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv else APP_NAME])
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setDesktopFileName(APP_NAME)
    app.setWindowIcon(app_icon())
    return app


def _raise_again(window: MainWindow) -> None:
    """Another launch asked for the console: show this window instead of a second one."""
    window.bring_to_front()
    log.info("raised the window: gpuops was launched again")


def run_app(
    source_spec: str,
    seed: int,
    interval_s: float,
    *,
    topology: Path | None = None,
    new_instance: bool = False,
    history_db: Path | None = None,
    read_only: bool = False,
    alertmanager_url: str | None = None,
    wallboard_cycle_s: float | None = None,
) -> int:
    """Open the window on `source_spec` (opened on the worker thread) and run until closed.
    Unless `new_instance`, a console already open is raised instead (and this returns 0).
    `history_db` is the history to read (and write when no collector does); None: no history.
    `alertmanager_url`: the Alertmanager whose alerts and silences the Alerts tab shows too.
    `wallboard_cycle_s`: open in wallboard mode, each site shown this many seconds."""
    if not interval_s > 0:
        print(f"gpuops: the poll interval must be a positive number of seconds, not {interval_s}", file=sys.stderr)
        return 2
    app = application()
    measuring = os.environ.get(EXIT_AFTER_FIRST_FRAME_ENV) == "1"
    instance: InstanceServer | None = None
    if not (new_instance or measuring):
        if ask_running_instance_to_raise():
            print("gpuops: the console is already open; raised its window (--new-instance opens another)", file=sys.stderr)
            return 0
        instance = InstanceServer(app)
    else:
        log.debug("single instance: not looking for a running console (a new instance was asked for)")
    sys.excepthook = _log_uncaught
    apply_theme(load_preferences().theme)
    window = ConsoleWindow(
        lambda: open_source(source_spec, seed=seed, topology=topology), interval_s, history_db=history_db, read_only=read_only,
        demo_seed=seed, history_prometheus=source_spec if source_spec.startswith("prometheus:") else None,
        alertmanager_url=alertmanager_url,
    )
    if measuring:
        place_first_time(window)
        _FirstFrameProbe(window)
    else:
        if not restore_window_state(window):
            place_first_time(window)
        app.aboutToQuit.connect(lambda: save_window_state(window))
    if instance is not None:
        instance.raiseRequested.connect(lambda: _raise_again(window))
        instance.listen()
    window.show()
    if wallboard_cycle_s is not None:
        window.wallboard.enter(wallboard_cycle_s)
    window.start()
    # Ctrl-C in the terminal closes the window; the idle timer lets Python run the handler.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    wake_python = QTimer(window)
    wake_python.start(250)
    wake_python.timeout.connect(lambda: None)
    return app.exec()

"""File → Export snapshot: the console as it is now, to PNG, PDF, CSV or JSON.

The export carries what the window shows: the active alerts of the Alerts tab, who holds each
GPU by the Customers book and the health the grid is coloured by (`ConsoleState`, from the
composition root). What the console does not know yet is read from its own history database.

Three steps, so the GUI thread never waits on SQLite or the disk: what the console state lacks
is read from the history on a worker thread; the picture or report is drawn on the GUI thread
(widgets can only be drawn there), with a progress dialog that appears after 0.5 s and can
cancel between sections; the file is written on a worker thread through the one atomic
writer (`core.files`), so a cancelled or failed export leaves no file and an existing file is replaced only whole.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QProgressDialog, QWidget

from gpuops.core.alerts.model import Alert
from gpuops.core.allocations.index import Holder
from gpuops.core.files import OutputRefused, atomic_write
from gpuops.core.health import FleetHealth
from gpuops.core.snapshot import (
    DEFAULT_PLOTTED_GPUS,
    GpuPlot,
    HistoryExtras,
    Snapshot,
    default_file_name,
    default_plotted,
    make_snapshot,
    read_history_extras,
    write_snapshot_csv,
    write_snapshot_json,
)
from gpuops.gui.app.settings_store import last_export_dir, remember_export_dir
from gpuops.gui.snapshot.pdf import ExportCancelled, snapshot_pdf
from gpuops.gui.snapshot.render import png_bytes, widget_image
from gpuops.gui.workers.bridge import Bridge

if TYPE_CHECKING:
    from gpuops.gui.window.host import FleetView

log = logging.getLogger("gpuops.gui.export")

FILE_FILTERS: dict[str, str] = {
    "png": "PNG picture of the window (*.png)",
    "pdf": "PDF report (*.pdf)",
    "csv": "CSV table, one row per GPU (*.csv)",
    "json": "JSON document, one object per GPU (*.json)",
}
PROGRESS_AFTER_MS = 500

#: A background step's outcome on its way to the GUI thread: (what runs next, result, error).
_Outcome = tuple[Callable[[object, object], None], object, object]


@dataclass(frozen=True)
class ConsoleState:
    """What the window shows besides the sample: the Alerts tab's active alerts, the holder of
    each allocated GPU, the health the grid shows. None: the console does not know (yet)."""

    alerts: tuple[Alert, ...] | None = None
    holders: Mapping[str, Holder] | None = None
    health: FleetHealth | None = None


def with_console_state(read: HistoryExtras, state: ConsoleState) -> HistoryExtras:
    """The history's extras with the console's own alerts and holders in their place; the
    history's notes stay only for what neither knows."""
    holders = read.holders if state.holders is None else dict(state.holders)
    alerts = read.alerts if state.alerts is None else list(state.alerts)
    return HistoryExtras(holders, alerts, [] if holders is not None and alerts is not None else read.notes)


def kind_of(path: Path, chosen_filter: str) -> tuple[Path, str]:
    """The format from the file's extension, else from the chosen filter (whose extension is added)."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix in FILE_FILTERS:
        return path, suffix
    kind = next((k for k, f in FILE_FILTERS.items() if f == chosen_filter), "png")
    return path.with_name(f"{path.name}.{kind}"), kind


def _in_background(
    name: str, work: Callable[[], object], bridge: Bridge[_Outcome], then: Callable[[object, object], None]
) -> None:
    """Run `work` on a thread of its own; `then(result, error)` runs on the GUI thread after."""

    def run() -> None:
        try:
            result, error = work(), None
        except Exception as exc:  # delivered to the GUI thread, which reports it
            result, error = None, exc
        bridge.send((then, result, error))

    threading.Thread(target=run, name=name, daemon=True).start()


def _save_atomically(path: Path, data: bytes, cancelled: threading.Event) -> None:
    """Write `data` over `path` (the user confirmed a replacement) through the one atomic writer:
    a temporary file beside it, renamed into place only if the export was not cancelled
    meanwhile. No Qt object is made here: this runs on a worker thread."""
    try:
        with atomic_write(path, force=True) as temporary:
            temporary.write_bytes(data)
            if cancelled.is_set():
                raise ExportCancelled()
    except OutputRefused as exc:
        raise OSError(str(exc)) from None


class SnapshotExporter(QObject):
    """Exports snapshots of one window, which shows `view` and records to `history_db` (None:
    no history). `console_state` says what else the window shows. Signals fire in the GUI
    thread when an export ends."""

    exported = Signal(str)  # the file written
    failed = Signal(str)  # one readable line
    cancelled = Signal()

    def __init__(self, window: QWidget, view: FleetView, history_db: Path | None) -> None:
        super().__init__(window)
        self._window = window
        self._view = view
        self._history_db = history_db
        #: Set by the composition root; a bare window knows no alerts or customers.
        self.console_state: Callable[[], ConsoleState] = ConsoleState
        self._health: FleetHealth | None = None  # of the sample being exported
        self.picture_view = "window"  # or "grid"
        self.picture_scale = 1.0
        self.progress: QProgressDialog | None = None
        self._cancel = threading.Event()
        self._bridge: Bridge[_Outcome] = Bridge(lambda outcome: outcome[0](outcome[1], outcome[2]))
        self._job: tuple[Path, str] | None = None
        #: Asked before replacing a file the user did not already confirm in the file dialog.
        self.confirm_overwrite: Callable[[Path], bool] = self._ask_overwrite

    @property
    def busy(self) -> bool:
        return self._job is not None

    # --- asking the user -------------------------------------------------------------------

    def choose_and_export(self) -> None:
        """The menu action: pick a file (remembering the folder), then export."""
        if self.busy:
            return
        folder = last_export_dir() or str(Path.home())
        dialog_path, chosen = QFileDialog.getSaveFileName(
            self._window, "Export snapshot", str(Path(folder) / default_file_name("png")), ";;".join(FILE_FILTERS.values())
        )
        if not dialog_path:
            return
        path, kind = kind_of(Path(dialog_path), chosen)
        remember_export_dir(str(path.parent))
        # The dialog confirmed replacing the name it returned; a name we completed is asked about.
        self.export(path, kind, overwrite_confirmed=path == Path(dialog_path))

    def _ask_overwrite(self, path: Path) -> bool:
        answer = QMessageBox.question(
            self._window, "Replace file?", f"{path} already exists. Replace it?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    # --- the export ------------------------------------------------------------------------

    def export(self, path: Path, kind: str, *, overwrite_confirmed: bool = False) -> bool:
        """Start exporting to `path`; False if it did not start (no data, busy, declined)."""
        if self.busy:
            return False
        if self._view.last_sample is None:
            self.failed.emit("nothing to export yet: no data from the source")
            return False
        if path.exists() and not overwrite_confirmed and not self.confirm_overwrite(path):
            return False
        self._job = (path, kind)
        self._cancel.clear()
        self.progress = QProgressDialog("Reading alerts and allocations…", "Cancel", 0, 8, self._window)
        self.progress.setWindowTitle("Export snapshot")
        self.progress.setMinimumDuration(PROGRESS_AFTER_MS)
        self.progress.canceled.connect(self._cancel.set)
        self.progress.setValue(0)
        sample = self._view.last_sample
        state = self.console_state()
        self._health = state.health if state.health is not None and len(state.health.level) == len(sample) else None
        db_path = self._history_db
        step = self._next(self._draw)
        if state.alerts is not None and state.holders is not None:
            step(with_console_state(HistoryExtras(), state), None)
        elif db_path is None or not db_path.exists():
            missing = HistoryExtras(notes=["allocations and alerts not available: no history database"])
            step(with_console_state(missing, state), None)
        else:
            now = time.time()
            _in_background(
                "gpuops-export-read", lambda: with_console_state(read_history_extras(db_path, sample.uuids, now), state),
                self._bridge, step,
            )
        return True

    def _next(self, step: Callable[[object], None]) -> Callable[[object, object], None]:
        """Where the next worker outcome goes: to `step`, unless it failed or was cancelled."""

        def deliver(result: object, error: object) -> None:
            if error is not None:
                self._end(error)
            elif self._cancel.is_set():
                self._end(ExportCancelled())
            else:
                try:
                    step(result)
                except Exception as exc:
                    self._end(exc)

        return deliver

    def _checkpoint(self) -> None:
        assert self.progress is not None
        self.progress.setValue(min(self.progress.value() + 1, self.progress.maximum() - 1))
        QApplication.processEvents()
        if self.progress.wasCanceled():
            self._cancel.set()
        if self._cancel.is_set():
            raise ExportCancelled()

    def _draw(self, extras: object) -> None:
        assert isinstance(extras, HistoryExtras) and self._job is not None and self.progress is not None
        path, kind = self._job
        snapshot = self.snapshot(extras)
        self.progress.setLabelText("Drawing the snapshot…")
        self._checkpoint()
        if kind == "png":
            widget: QWidget = self._view.grid if self.picture_view == "grid" else self._window
            picture = png_bytes(widget_image(widget, self.picture_scale))
        elif kind == "pdf":
            picture = snapshot_pdf(snapshot, widget_image(self._view.grid, 2.0), self._checkpoint)

        def produce() -> bytes:  # tables are built on the worker: 10,000 rows take a moment
            return picture if kind in ("png", "pdf") else _table_bytes(snapshot, kind)

        self.progress.setLabelText(f"Writing {path.name}…")
        self._checkpoint()
        step = self._next(lambda _: self._end(None))
        _in_background("gpuops-export-write", lambda: _save_atomically(path, produce(), self._cancel), self._bridge, step)

    def snapshot(self, extras: HistoryExtras) -> Snapshot:
        """The window's current data as a snapshot, graded as the grid shows it: the GPU on
        show, then the selected ones, then the least healthy are plotted."""
        view = self._view
        sample = view.last_sample
        assert sample is not None
        info = view.source_info
        interim = make_snapshot(info.name if info else "unknown", bool(info and info.simulated), sample, health=self._health)
        selected = view.grid.selected_uuids()
        wanted = [uuid for uuid in (view.detail.uuid,) if uuid is not None]
        wanted += [u for u in sample.uuids if u in selected and u not in wanted]
        wanted += [u for u in default_plotted(interim.health, sample) if u not in wanted]
        plots = []
        for uuid in wanted[:DEFAULT_PLOTTED_GPUS]:
            history = view.gpu_history(uuid)
            if history is not None and len(history[0]):
                plots.append(GpuPlot(uuid, *history))
        return make_snapshot(
            interim.source, interim.simulated, sample, health=interim.health,
            holders=extras.holders, alerts=extras.alerts, plots=plots, notes=extras.notes,
        )

    def _end(self, error: object) -> None:
        job, self._job = self._job, None
        if self.progress is not None:
            self.progress.reset()
            self.progress.deleteLater()
            self.progress = None
        assert job is not None
        path, _ = job
        if error is None:
            log.info("snapshot exported to %s", path)
            self.exported.emit(str(path))
        elif isinstance(error, ExportCancelled):
            log.info("snapshot export cancelled; %s not written", path)
            self.cancelled.emit()
        elif isinstance(error, OSError):
            self.failed.emit(f"cannot write {path}: {error.strerror or error}")
        else:
            raise error  # a bug: loud


def _table_bytes(snapshot: Snapshot, kind: str) -> bytes:
    text = io.StringIO(newline="")
    (write_snapshot_csv if kind == "csv" else write_snapshot_json)(snapshot, text)
    return text.getvalue().encode("utf-8")


"""Help for the operator at the console: a user guide (what each view shows, the sources, the
command line), the keyboard shortcuts, and the version facts a bug report needs on the clipboard.

The shortcut list and the command summary are read from the window's own actions and shortcuts
and from the command line's parser, so they cannot drift from what the console really does.
"""

from __future__ import annotations

import platform

from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMainWindow,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from gpuops.core.telemetry import FleetSample
from gpuops.gui.grid.fleet_grid import GRID_KEYS
from gpuops.gui.window.about_dialog import version_rows

_VIEWS = """
## What the window shows

- **KPI strip** (top): how many GPUs, and how many are *ok*, *warning*, *critical*, *lost*,
  *stale* (no fresh data from their node) or *unknown* — each GPU counted once, in the same words
  the grid, its filter and the exports use. Click a count to show only those GPUs; click it again
  to show all. Fleet utilization and power are over the GPUs that answer.
- **Fleet grid** (left): one cell per GPU, grouped by node (or site, rack, model, health,
  customer). *Colour by* picks the metric; a pink cross is a lost GPU, a triangle an alert.
  Hover for a GPU's readings; click to choose it; Shift/Ctrl to choose several. The filter takes
  words (`lost`, a node or model name) or `key:value` (`health:critical site:ams -model:a100`).
- **GPU** tab: the chosen GPU's utilization, memory, temperature and power, with its limits
  drawn (memory total, power limit, slowdown temperature) and a crosshair that reads all four
  plots at the time under the mouse; Live or a past range (drag to pan, wheel to zoom); its
  processes, health findings, error counters, XID events and inventory. With no GPU chosen it
  lists the least healthy GPUs.
- **Node** tab: every GPU of the chosen GPU's node over the same range.
- **Fleet trends**: fleet utilization, power and GPUs by state over time.
- **Alerts**: what is firing, since when and who acknowledged it; history, a GPU's alerts over
  time, silences and maintenance, and the rules.
- **Customers**: usage per customer, who holds which GPU (timeline), capacity ahead, the audit
  log; allocate and release GPUs.
- **Replay…**: the whole fleet as it was at a past instant, from the history.

## Where the numbers come from

`--source` (or Settings): `auto` (this machine's GPUs through NVML when a driver loads, else
the simulated fleet, clearly labelled), `nvml`, `demo[:N]` (a simulated fleet of N GPUs),
`scrape:URL,...` (dcgm-exporter or `gpuops agent` endpoints) or `prometheus:URL` (a Prometheus
that scrapes them). The console records what it sees into its history database unless a
`gpuops collect` already does, or it was started with `--no-history` or `--read-only`.
"""


def guide_markdown() -> str:
    """The user guide: the views and sources, then every command of the command line."""
    from gpuops.cli import command_summaries

    commands = "\n".join(f"- `gpuops {name}`: {summary}" for name, summary in command_summaries())
    return (
        "# gpuops user guide\n" + _VIEWS + "\n## The command line\n\n"
        "Every command has `--help`. Exit status: 0 success, 1 the work failed, 2 usage error.\n\n"
        + commands + "\n\nKeyboard shortcuts: Help → Keyboard shortcuts.\n"
    )


def _lay_out(dialog: QDialog, body: QWidget, width: int, height: int) -> None:
    """A help dialog: its one widget over a Close button, at a size to read it in."""
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(body)
    layout.addWidget(buttons)
    dialog.resize(width, height)


class UserGuideDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("gpuops user guide")
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        self.browser.setMarkdown(guide_markdown())
        _lay_out(self, self.browser, 720, 600)


def _plain(text: str) -> str:
    return text.replace("&", "").replace("…", "")


def shortcut_rows(window: QMainWindow) -> list[tuple[str, str]]:
    """(keys, what they do) for every menu action and window shortcut of `window`, then the
    grid's own keys."""
    rows: list[tuple[str, str]] = []
    for action in window.findChildren(QAction):
        for sequence in action.shortcuts():
            rows.append((sequence.toString(QKeySequence.SequenceFormat.NativeText), _plain(action.text())))
    for shortcut in window.findChildren(QShortcut):
        rows.append((shortcut.key().toString(QKeySequence.SequenceFormat.NativeText), shortcut.whatsThis()))
    rows = sorted(set(rows), key=lambda row: (row[1].lower(), row[0]))
    return rows + [(keys, f"{what} (in the grid)") for keys, what in GRID_KEYS]


class ShortcutsDialog(QDialog):
    def __init__(self, rows: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(("Keys", "Does"))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for r, (keys, what) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(keys))
            self.table.setItem(r, 1, QTableWidgetItem(what))
        self.table.resizeColumnToContents(0)
        _lay_out(self, self.table, 520, 480)


def version_text(sample: FleetSample | None, source_name: str | None) -> str:
    """What a bug report needs, one fact a line: versions, the source, the platform."""
    rows = [*version_rows(sample, source_name), ("Platform", platform.platform())]
    return "\n".join(f"{name}: {value}" for name, value in rows)


def copy_version_info(sample: FleetSample | None, source_name: str | None) -> str:
    """Put `version_text` on the clipboard; returns it (for the status bar and tests)."""
    text = version_text(sample, source_name)
    QGuiApplication.clipboard().setText(text)
    return text

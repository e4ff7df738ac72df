"""The window's menus and toolbar: File (export a snapshot, settings, quit), Help (user guide,
keyboard shortcuts, copy version info, about), and a toolbar with the common actions (export,
replay, find, settings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QIcon, QKeySequence
from PySide6.QtWidgets import QDialog, QMainWindow, QMessageBox, QStyle

from gpuops.gui.app.settings_store import Preferences, load_preferences, save_preferences
from gpuops.gui.snapshot.export import SnapshotExporter
from gpuops.gui.window.help import ShortcutsDialog, UserGuideDialog, copy_version_info, shortcut_rows
from gpuops.gui.window.host import FleetView

#: How long the status bar says where a snapshot went.
SAVED_MESSAGE_MS = 15_000


@dataclass(frozen=True)
class WindowActions:
    export: QAction
    picture_window: QAction
    picture_grid: QAction
    picture_2x: QAction
    settings: QAction
    about: QAction
    quit: QAction
    exporter: SnapshotExporter
    guide: QAction
    shortcuts: QAction
    copy_versions: QAction
    replay: QAction
    find: QAction


def apply_display_preferences(view: FleetView, preferences: Preferences) -> None:
    """Units for the window's tooltips and detail panel (the theme is the application's: `gui.app.theme`)."""
    units = preferences.display_units()
    view.grid.set_units(units)
    view.detail.set_units(units)


def install_window_actions(window: QMainWindow, view: FleetView, history_db: Path | None) -> WindowActions:
    """The menus and toolbar of `window`, which shows `view` and records to `history_db` (the
    console's own history, which its snapshots read; None: --no-history)."""
    apply_display_preferences(view, load_preferences())
    exporter = SnapshotExporter(window, view, history_db)
    style = window.style()

    export = QAction(
        QIcon.fromTheme("document-save-as", style.standardIcon(QStyle.StandardPixmap.SP_DialogSaveButton)),
        "&Export snapshot…",
        window,
    )
    export.setShortcut(QKeySequence("Ctrl+E"))
    export.setToolTip("Save the fleet as it is now: a picture (PNG), a report (PDF), or a table per GPU (CSV, JSON)")
    export.triggered.connect(exporter.choose_and_export)

    pictures = QActionGroup(window)
    picture_window = QAction("Picture of the whole window", window, checkable=True, checked=True)
    picture_grid = QAction("Picture of the fleet grid only", window, checkable=True)
    for action, shown in ((picture_window, "window"), (picture_grid, "grid")):
        pictures.addAction(action)
        action.triggered.connect(lambda _=False, v=shown: setattr(exporter, "picture_view", v))
    picture_2x = QAction("Pictures at high DPI (2×)", window, checkable=True)
    picture_2x.toggled.connect(lambda on: setattr(exporter, "picture_scale", 2.0 if on else 1.0))

    settings = QAction("&Settings…", window)
    settings.setShortcut(QKeySequence.StandardKey.Preferences)
    settings.triggered.connect(lambda: open_settings_dialog(window, view))
    about = QAction("&About gpuops", window)
    about.triggered.connect(lambda: open_about_dialog(window, view))
    quit_action = QAction("&Quit", window)
    quit_action.setShortcut(QKeySequence.StandardKey.Quit)
    quit_action.triggered.connect(window.close)

    file_menu = window.menuBar().addMenu("&File")
    file_menu.addAction(export)
    options = file_menu.addMenu("Snapshot pictures")
    options.addActions([picture_window, picture_grid])
    options.addSeparator()
    options.addAction(picture_2x)
    file_menu.addSeparator()
    file_menu.addAction(settings)
    file_menu.addSeparator()
    file_menu.addAction(quit_action)
    guide = QAction(style.standardIcon(QStyle.StandardPixmap.SP_DialogHelpButton), "&User guide", window)
    guide.setShortcut(QKeySequence.StandardKey.HelpContents)
    guide.triggered.connect(lambda: _open(UserGuideDialog(window)))
    shortcuts = QAction("&Keyboard shortcuts", window)
    shortcuts.triggered.connect(lambda: _open(ShortcutsDialog(shortcut_rows(window), window)))
    copy_versions = QAction("&Copy version info", window)
    copy_versions.setToolTip("Versions of gpuops, Qt, Python, the driver and NVML, for a bug report")
    copy_versions.triggered.connect(lambda: _copy_versions(window, view))
    help_menu = window.menuBar().addMenu("&Help")
    help_menu.addActions([guide, shortcuts, copy_versions])
    help_menu.addSeparator()
    help_menu.addAction(about)

    replay = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekBackward), "&Replay…", window)
    replay.setToolTip("Show the whole fleet as it was at a past instant (from the history)")
    replay.setEnabled(view.replay_available)
    replay.triggered.connect(view.open_replay)
    find = QAction(style.standardIcon(QStyle.StandardPixmap.SP_FileDialogContentsView), "&Find GPU", window)
    find.setToolTip(f"Find a GPU by UUID, serial, node or index ({QKeySequence(QKeySequence.StandardKey.Find).toString()})")
    find.triggered.connect(view.grid.focus_search)
    settings.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_FileDialogDetailedView))

    toolbar = window.addToolBar("Main")
    toolbar.setObjectName("mainToolbar")  # so saveState/restoreState can find it
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    toolbar.addActions([export, replay, find, settings])

    exporter.exported.connect(lambda path: window.statusBar().showMessage(f"Snapshot saved to {path}", SAVED_MESSAGE_MS))
    exporter.failed.connect(lambda message: QMessageBox.warning(window, "Snapshot not exported", message))
    exporter.cancelled.connect(lambda: window.statusBar().showMessage("Snapshot export cancelled", SAVED_MESSAGE_MS))
    return WindowActions(
        export, picture_window, picture_grid, picture_2x, settings, about, quit_action, exporter,
        guide, shortcuts, copy_versions, replay, find,
    )


def _open(dialog: QDialog) -> None:
    """Show a help dialog without blocking the window (it keeps polling behind it)."""
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()


def _copy_versions(window: QMainWindow, view: FleetView) -> None:
    info = view.source_info
    copy_version_info(view.last_sample, info.name if info else None)
    window.statusBar().showMessage("Version info copied to the clipboard", SAVED_MESSAGE_MS)


def open_settings_dialog(window: QMainWindow, view: FleetView) -> None:
    from gpuops.gui.app.theme import apply_theme
    from gpuops.gui.window.settings_dialog import SettingsDialog

    dialog = SettingsDialog(load_preferences(), window)
    if dialog.exec():
        chosen = dialog.preferences()
        save_preferences(chosen)
        apply_theme(chosen.theme)
        apply_display_preferences(view, chosen)


def open_about_dialog(window: QMainWindow, view: FleetView) -> None:
    from gpuops.gui.window.about_dialog import AboutDialog

    info = view.source_info
    AboutDialog(view.last_sample, info.name if info else None, window).exec()

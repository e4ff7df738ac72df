"""What the console remembers between runs, in one INI file per user (QSettings).

On Linux the file is $XDG_CONFIG_HOME/gpuops/gpuops.ini (~/.config by default). Two kinds of
keys: preferences people choose in the Settings dialog (source, poll interval, history file,
retention, units, theme), and the window's own state (geometry, toolbars, splitters, tabs,
the grid's metric, the last export folder), saved when it closes and restored when it opens.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow, QSplitter, QTabWidget

ORGANIZATION = "gpuops"
APPLICATION = "gpuops"

DEFAULT_INTERVAL_S = 1.0
DEFAULT_KEEP_RAW = "48h"
UNIT_SYSTEMS = ("metric", "imperial")


def open_settings() -> QSettings:
    """The user's settings file (INI, so people can read and fix it by hand)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


@dataclass(frozen=True)
class Preferences:
    """Choices from the Settings dialog. `source` None: not chosen (the command line's default,
    auto, applies). Source, interval, history file and retention take effect at the next start."""

    source: str | None = None
    interval_s: float = DEFAULT_INTERVAL_S
    db_path: str | None = None
    keep_raw: str = DEFAULT_KEEP_RAW
    units: str = "metric"
    theme: str | None = None


def _text(settings: QSettings, key: str) -> str | None:
    value = settings.value(key)
    return str(value) if value not in (None, "") else None


def load_preferences(settings: QSettings | None = None) -> Preferences:
    """Saved preferences; a value that does not parse falls back to its default."""
    settings = settings or open_settings()
    try:
        interval_s = float(settings.value("poll/interval_s", DEFAULT_INTERVAL_S))
    except (TypeError, ValueError):
        interval_s = DEFAULT_INTERVAL_S
    units = _text(settings, "display/units") or "metric"
    return Preferences(
        source=_text(settings, "poll/source"),
        interval_s=interval_s if interval_s > 0 else DEFAULT_INTERVAL_S,
        db_path=_text(settings, "history/db_path"),
        keep_raw=_text(settings, "history/keep_raw") or DEFAULT_KEEP_RAW,
        units=units if units in UNIT_SYSTEMS else "metric",
        theme=_text(settings, "display/theme"),
    )


def save_preferences(preferences: Preferences, settings: QSettings | None = None) -> None:
    settings = settings or open_settings()
    for key, value in (
        ("poll/source", preferences.source),
        ("poll/interval_s", preferences.interval_s),
        ("history/db_path", preferences.db_path),
        ("history/keep_raw", preferences.keep_raw),
        ("display/units", preferences.units),
        ("display/theme", preferences.theme),
    ):
        if value is None:
            settings.remove(key)
        else:
            settings.setValue(key, value)
    settings.sync()


def last_export_dir(settings: QSettings | None = None) -> str | None:
    return _text(settings or open_settings(), "export/last_dir")


def remember_export_dir(folder: str, settings: QSettings | None = None) -> None:
    settings = settings or open_settings()
    settings.setValue("export/last_dir", folder)
    settings.sync()


def _keyed(widgets: list, kind: str) -> list[tuple[str, object]]:
    """Widgets with a stable key: their object name, else their place among their kind."""
    return [(f"window/{kind}/{w.objectName() or i}", w) for i, w in enumerate(widgets)]


def save_window_state(window: QMainWindow, settings: QSettings | None = None) -> None:
    """Geometry, toolbars and docks, every splitter and tab widget, and the grid's metric."""
    settings = settings or open_settings()
    settings.setValue("window/geometry", window.saveGeometry())
    settings.setValue("window/state", window.saveState())
    for key, splitter in _keyed(window.findChildren(QSplitter), "splitter"):
        settings.setValue(key, splitter.saveState())
    for key, tabs in _keyed(window.findChildren(QTabWidget), "tabs"):
        settings.setValue(key, tabs.currentIndex())
    grid = getattr(window, "grid", None)
    if grid is not None:
        settings.setValue("window/metric", grid.metric.key)
    settings.sync()


def restore_window_state(window: QMainWindow, settings: QSettings | None = None) -> None:
    """Put back what `save_window_state` saved; anything missing or stale is left as built."""
    settings = settings or open_settings()
    geometry = settings.value("window/geometry")
    if isinstance(geometry, QByteArray):
        window.restoreGeometry(geometry)
    state = settings.value("window/state")
    if isinstance(state, QByteArray):
        window.restoreState(state)
    for key, splitter in _keyed(window.findChildren(QSplitter), "splitter"):
        saved = settings.value(key)
        if isinstance(saved, QByteArray):
            splitter.restoreState(saved)
    for key, tabs in _keyed(window.findChildren(QTabWidget), "tabs"):
        try:
            index = int(settings.value(key, -1))
        except (TypeError, ValueError):
            continue
        if 0 <= index < tabs.count():
            tabs.setCurrentIndex(index)
    metric = _text(settings, "window/metric")
    grid = getattr(window, "grid", None)
    if metric is not None and grid is not None:
        try:
            grid.set_metric(metric)
        except KeyError:
            pass  # a metric this version no longer offers

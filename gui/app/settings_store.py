"""What the console remembers between runs, in one INI file per user (QSettings).

On Linux the file is $XDG_CONFIG_HOME/gpuops/gpuops.ini (~/.config by default). Two kinds of
keys: preferences people choose in the Settings dialog (source, poll interval, history file,
retention, units, theme), and the window's own state (geometry, toolbars, splitters, tabs,
the grid's metric, the last export folder), saved when it closes and restored when it opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow, QSplitter, QTabWidget

from gpuops.core.history_retention import DEFAULT_KEEP_1H, DEFAULT_KEEP_1M, DEFAULT_KEEP_RAW, retention_policy
from gpuops.core.timefmt import BadTimeSpec
from gpuops.core.units import MEMORY_UNITS, TEMPERATURE_UNITS, DisplayUnits

if TYPE_CHECKING:
    from gpuops.core.store.retention import RetentionPolicy

ORGANIZATION = "gpuops"
APPLICATION = "gpuops"

DEFAULT_INTERVAL_S = 1.0
#: system: follow the desktop's light or dark scheme.
THEMES = ("system", "light", "dark")


def open_settings() -> QSettings:
    """The user's settings file (INI, so people can read and fix it by hand)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


@dataclass(frozen=True)
class Preferences:
    """Choices from the Settings dialog. `source` None: not chosen (the command line's default,
    auto, applies). Source, interval, history file and retention take effect at the next start;
    units and theme at once. Durations are as people write them ("48h", "90d")."""

    source: str | None = None
    interval_s: float = DEFAULT_INTERVAL_S
    db_path: str | None = None
    keep_raw: str = DEFAULT_KEEP_RAW
    keep_1m: str = DEFAULT_KEEP_1M
    keep_1h: str = DEFAULT_KEEP_1H
    temperature_unit: str = "C"
    memory_units: str = "binary"
    theme: str = "system"

    def retention(self) -> RetentionPolicy:
        """For the console's own history writer: what `gpuops collect --keep-*` would make of it."""
        return retention_policy(self.keep_raw, self.keep_1m, self.keep_1h)

    def display_units(self) -> DisplayUnits:
        return DisplayUnits(temperature=self.temperature_unit, memory=self.memory_units)


def _text(settings: QSettings, key: str) -> str | None:
    value = settings.value(key)
    return str(value) if value not in (None, "") else None


def _choice(settings: QSettings, key: str, choices: tuple[str, ...]) -> str:
    """The saved choice, or the first (the default) when missing or not one of `choices`."""
    value = _text(settings, key)
    return value if value in choices else choices[0]


def _retention_texts(settings: QSettings) -> tuple[str, str, str]:
    """The three saved durations, or all three defaults when any of them does not make a policy."""
    texts = (
        _text(settings, "history/keep_raw") or DEFAULT_KEEP_RAW,
        _text(settings, "history/keep_1m") or DEFAULT_KEEP_1M,
        _text(settings, "history/keep_1h") or DEFAULT_KEEP_1H,
    )
    try:
        retention_policy(*texts)
    except (BadTimeSpec, ValueError):
        return DEFAULT_KEEP_RAW, DEFAULT_KEEP_1M, DEFAULT_KEEP_1H
    return texts


def load_preferences(settings: QSettings | None = None) -> Preferences:
    """Saved preferences; a value that does not parse falls back to its default."""
    settings = settings or open_settings()
    try:
        interval_s = float(settings.value("poll/interval_s", DEFAULT_INTERVAL_S))
    except (TypeError, ValueError):
        interval_s = DEFAULT_INTERVAL_S
    keep_raw, keep_1m, keep_1h = _retention_texts(settings)
    return Preferences(
        source=_text(settings, "poll/source"),
        interval_s=interval_s if interval_s > 0 else DEFAULT_INTERVAL_S,
        db_path=_text(settings, "history/db_path"),
        keep_raw=keep_raw,
        keep_1m=keep_1m,
        keep_1h=keep_1h,
        temperature_unit=_choice(settings, "display/temperature_unit", TEMPERATURE_UNITS),
        memory_units=_choice(settings, "display/memory_units", MEMORY_UNITS),
        theme=_choice(settings, "display/theme", THEMES),
    )


def save_preferences(preferences: Preferences, settings: QSettings | None = None) -> None:
    settings = settings or open_settings()
    for key, value in (
        ("poll/source", preferences.source),
        ("poll/interval_s", preferences.interval_s),
        ("history/db_path", preferences.db_path),
        ("history/keep_raw", preferences.keep_raw),
        ("history/keep_1m", preferences.keep_1m),
        ("history/keep_1h", preferences.keep_1h),
        ("display/temperature_unit", preferences.temperature_unit),
        ("display/memory_units", preferences.memory_units),
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


def restore_window_state(window: QMainWindow, settings: QSettings | None = None) -> bool:
    """Put back what `save_window_state` saved; anything missing or stale is left as built.
    Returns True if a saved geometry was applied (else the window still needs placing)."""
    settings = settings or open_settings()
    geometry = settings.value("window/geometry")
    restored = isinstance(geometry, QByteArray) and window.restoreGeometry(geometry)
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
    return restored

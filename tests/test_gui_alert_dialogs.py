"""The Silence dialog's duration presets, the dialogs' size, and the "no data" swatch in both themes."""

from __future__ import annotations

from PySide6.QtWidgets import QDialogButtonBox

from gpuops.gui.alerts.dialogs import CUSTOM_PRESET, DIALOG_MIN_WIDTH, SILENCE_PRESETS, SilenceDialog

NOW = 1_767_225_600.0


def _length_s(dialog: SilenceDialog) -> int:
    return dialog.start_edit.dateTime().secsTo(dialog.end_edit.dateTime())


def test_silence_presets_set_the_end_and_a_typed_end_is_custom(qtbot) -> None:
    dialog = SilenceDialog(None, now=NOW)
    qtbot.addWidget(dialog)
    assert dialog.preset_combo.currentText() == "2 h" and _length_s(dialog) == 2 * 3600
    for label, seconds in SILENCE_PRESETS.items():
        dialog.preset_combo.setCurrentText(label)
        assert _length_s(dialog) == seconds
    dialog.preset_combo.setCurrentText("15 min")
    dialog.start_edit.setDateTime(dialog.start_edit.dateTime().addSecs(3600))  # a later start moves the end with it
    assert _length_s(dialog) == 15 * 60
    dialog.end_edit.setDateTime(dialog.start_edit.dateTime().addSecs(5400))
    assert dialog.preset_combo.currentText() == CUSTOM_PRESET and _length_s(dialog) == 5400
    dialog.matchers_edit.setPlainText("node=n1")
    dialog.comment_edit.setText("firmware update")
    assert dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    request = dialog.request()
    assert request.ends_at - request.starts_at == 5400 and request.starts_at == NOW + 3600


def test_dialogs_are_wide_enough_for_a_note(qtbot) -> None:
    dialog = SilenceDialog(None, now=NOW)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.width() >= DIALOG_MIN_WIDTH


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_no_data_swatch_stands_out_in_both_themes(qtbot) -> None:
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication

    from gpuops.gui.app.theme import dark_palette
    from gpuops.gui.common import palette

    light = QApplication.style().standardPalette()
    for theme in (dark_palette(), light):
        for role in (QPalette.ColorRole.Window, QPalette.ColorRole.Base):
            colour = theme.color(role)
            background = (colour.red(), colour.green(), colour.blue())
            assert _contrast(palette.NO_DATA_RGB, background) >= 3.0, (role, background)
    assert _contrast(palette.NO_DATA_RGB, palette.HEALTH_RGB[palette.HEALTH_STALE]) >= 1.5


def test_since_reads_how_long_ago_with_the_time_in_the_tooltip_and_ages(qtbot) -> None:
    from PySide6.QtCore import Qt

    from gpuops.core.alerts.model import Alert, AlertState, Severity
    from gpuops.core.timefmt import local_time
    from gpuops.gui.alerts.model import SINCE_COLUMN, ActiveAlertsModel

    now = [NOW]
    model = ActiveAlertsModel(clock=lambda: now[0])
    alert = Alert(id=1, rule="gpu_hot", key="GPU-1", severity=Severity.WARNING, state=AlertState.FIRING,
                  labels={"node": "n1", "gpu": "GPU-1"}, summary="hot", runbook="", pending_at=NOW - 240,
                  started_at=NOW - 180)
    model.set_alerts([alert])
    cell = model.index(0, SINCE_COLUMN, model.index(0, 0))
    assert cell.data() == "3 min ago"
    assert cell.data(Qt.ItemDataRole.ToolTipRole) == local_time(NOW - 180)
    now[0] += 2 * 3600
    with qtbot.waitSignal(model.dataChanged):
        model.refresh_ages()
    assert cell.data() == "2 h ago"

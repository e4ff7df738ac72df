"""Alerts that can be read (issue 14 item 8): groups by node, rule or both with counts per
severity, criticals first; grid marks tell critical from warning by shape (triangle, dot; info a
square), and one mark per node when the grid shows node cells."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QApplication

from gpuops.core.alerts.model import Alert, AlertState, Severity
from gpuops.gui.alerts.model import ActiveAlertsModel
from gpuops.gui.alerts.tab import AlertsTab
from gpuops.gui.grid.alert_marks import SHAPES
from gpuops.gui.live.poller import PollResult
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, close_windows, gpu_uuid, make_sample, window_factory

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)

T0 = 1_763_798_400.0


def alert(i: int, node: str, rule: str, severity: Severity) -> Alert:
    return Alert(id=i, rule=rule, key=f"g{i}", severity=severity, state=AlertState.FIRING,
                 labels={"node": node, "gpu": f"g{i}", "gpu_index": str(i)}, summary=f"alert {i}", runbook="",
                 pending_at=T0, started_at=T0)


#: A flood of busy_unallocated warnings over three nodes, two ECC criticals and a lost GPU.
ALERTS = [
    *(alert(i, f"n{i % 3}", "busy_unallocated", Severity.WARNING) for i in range(1, 10)),
    alert(20, "n2", "ecc_uncorrectable", Severity.CRITICAL),
    alert(21, "n1", "ecc_uncorrectable", Severity.CRITICAL),
    alert(22, "n1", "gpu_lost", Severity.CRITICAL),
]


def group_rows(model: ActiveAlertsModel) -> list[str]:
    return [model.index(g, 0).data() for g in range(model.rowCount())]


def test_groups_count_their_alerts_by_severity_criticals_first(qtbot) -> None:
    model = ActiveAlertsModel()
    model.set_alerts(ALERTS)
    model.set_group_by("rule")
    assert group_rows(model) == [
        "ecc_uncorrectable — 2 alerts: 2 critical",
        "gpu_lost — 1 alert: 1 critical",
        "busy_unallocated — 9 alerts: 9 warning",
    ]
    model.set_group_by("node")
    # n1 holds two criticals, n2 one: criticals first, then by how many.
    assert group_rows(model) == [
        "n1 — 5 alerts: 2 critical, 3 warning",
        "n2 — 4 alerts: 1 critical, 3 warning",
        "n0 — 3 alerts: 3 warning",
    ]
    model.set_group_by("rule_node")  # Alertmanager's group_by: [alertname, node]
    rows = group_rows(model)
    assert rows[:3] == [
        "ecc_uncorrectable · n1 — 1 alert: 1 critical",
        "ecc_uncorrectable · n2 — 1 alert: 1 critical",
        "gpu_lost · n1 — 1 alert: 1 critical",
    ]
    assert rows[3:] == [f"busy_unallocated · n{k} — 3 alerts: 3 warning" for k in range(3)]
    # Alerts in a group: the subject without the group's own words.
    first = model.index(0, 0, model.index(0, 0))
    assert model.index(0, 2, model.index(0, 0)).data() == "n1 GPU 21" and model.alert_at(first).id == 21


def test_the_tab_offers_each_grouping_and_spans_the_group_rows(qtbot) -> None:
    tab = AlertsTab(None)
    qtbot.addWidget(tab)
    assert [tab.group_combo.itemData(i) for i in range(tab.group_combo.count())] == ["node", "rule", "rule_node"]
    tab.group_combo.setCurrentIndex(tab.group_combo.findData("rule"))
    tab.model.set_alerts(ALERTS)
    tab.model.set_group_by("rule_node")
    assert all(tab.tree.isFirstColumnSpanned(row, tab.tree.rootIndex()) for row in range(tab.model.rowCount()))
    assert tab.model.index(0, 0).data(Qt.ItemDataRole.DisplayRole).startswith("ecc_uncorrectable")


@pytest.fixture
def window(qtbot):
    cleanups: list = []
    source = FakeSource(32, 4)
    window = window_factory(qtbot, cleanups)(source, start=False, size=(1000, 700))
    window.apply_result(PollResult(make_sample(source.gpus), 0.01))
    QApplication.processEvents()
    yield window
    close_windows(cleanups)


def corner(grid, position: int, dx: float, dy: float) -> QPointF:
    """A point of GPU `position`'s cell, dx left of its right edge and dy below its top (cells)."""
    layout = grid._layout
    return QPointF(float(layout.col[position]) + 1.0 - dx, float(layout.row[position]) + dy)


def test_marks_tell_severity_by_shape_and_zoomed_out_one_per_node(window) -> None:
    grid = window.grid
    marks = grid.alert_marks
    # node-000: a warning (GPU 1) and a critical (GPU 2); node-001: two warnings; node-002: info.
    grid.set_alert_marks({
        gpu_uuid(1): Severity.WARNING, gpu_uuid(2): Severity.CRITICAL,
        gpu_uuid(5): Severity.WARNING, gpu_uuid(6): Severity.WARNING, gpu_uuid(9): Severity.INFO,
    })
    assert SHAPES == {Severity.CRITICAL: "triangle", Severity.WARNING: "dot", Severity.INFO: "square"}
    assert marks.drawn == {Severity.CRITICAL: 1, Severity.WARNING: 3, Severity.INFO: 1}
    critical, warning, info = (marks.paths[s].path() for s in (Severity.CRITICAL, Severity.WARNING, Severity.INFO))
    # The triangle fills the very corner; the dot and the square keep off it.
    assert critical.contains(corner(grid, 2, 0.02, 0.02))
    assert not warning.contains(corner(grid, 1, 0.02, 0.02)) and not info.contains(corner(grid, 9, 0.02, 0.02))
    # The dot is round: the corner of its bounding box is outside it, where the square is filled.
    assert warning.contains(corner(grid, 1, 0.21, 0.21)) and not warning.contains(corner(grid, 1, 0.05, 0.05))
    assert info.contains(corner(grid, 9, 0.05, 0.05))
    # Node cells: one mark per node, its worst severity, at the node block's right end.
    grid.set_cells("node")
    QApplication.processEvents()
    assert grid.node_cells
    assert marks.drawn == {Severity.CRITICAL: 1, Severity.WARNING: 1, Severity.INFO: 1}
    critical, warning = marks.paths[Severity.CRITICAL].path(), marks.paths[Severity.WARNING].path()
    assert critical.contains(corner(grid, 3, 0.02, 0.02)), "node-000's mark: its last GPU's corner"
    assert warning.contains(corner(grid, 7, 0.21, 0.21))
    assert not warning.contains(corner(grid, 5, 0.21, 0.21)) and not warning.contains(corner(grid, 1, 0.21, 0.21))
    grid.set_cells("gpu")
    QApplication.processEvents()
    assert marks.drawn == {Severity.CRITICAL: 1, Severity.WARNING: 3, Severity.INFO: 1}

"""The Customers tab and the allocation editor in the window: usage per customer computed on the
worker (sorted, filtered), GPUs allocated and released through the dialogs (problems listed,
lost GPUs confirmed), the timeline and capacity views drawn, the grid coloured by customer, the
detail view naming the holder, busy-but-unallocated GPUs flagged, and --read-only."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QMessageBox

from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.store.writer import HistoryWriter
from gpuops.gui.common import palette
from gpuops.gui.grid.customer_colors import CUSTOMER_KEY, UNALLOCATED_LABEL
from tests.gui_support import OFFSCREEN_PLUGIN_NOTICE, FakeSource, cell_rgb, make_inventory, make_sample, open_windows

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_PLUGIN_NOTICE)

N = 16
GPUS = make_inventory(N)
HOUR_MS = 3_600_000
PATIENCE_MS = 20_000
ACME_GPUS = (0, 1, 2, 3)
GLOBEX_GPUS = (4, 5)


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """An hour of polls, and a book: Acme holds GPUs 0-3 (price 2), Globex 4-5 (price 5), both
    since three days ago; Initech's contract has room for 1 GPU; GPUs 6-15 are free."""
    path = tmp_path / "history.sqlite"
    now = time.time()
    with HistoryWriter(path) as writer:
        for minute in range(60, 0, -1):
            writer.write(make_sample(GPUS, ts=now - minute * 60))
    repo = AllocationRepository.open(path, user="tester")
    day_ago = round(now * 1000) - 3 * 24 * HOUR_MS  # "day_ago": three days ago
    far = day_ago + 400 * 24 * HOUR_MS
    acme, globex, initech = (repo.add_customer(name) for name in ("Acme", "Globex", "Initech"))
    a = repo.add_contract(acme.id, "ACME-1", "reserved", "TEST", 8, day_ago, far, 2.0)
    g = repo.add_contract(globex.id, "GLX-1", "on_demand", "TEST", 4, day_ago, None, 5.0)
    repo.add_contract(initech.id, "INI-1", "spot", "TEST", 1, day_ago, far, 1.0)
    repo.add_contract(initech.id, "INI-BIG", "reserved", "TEST", 40, day_ago + 30 * 24 * HOUR_MS, far, 1.0)
    repo.allocate(a.id, [GPUS[i].uuid for i in ACME_GPUS], day_ago)
    repo.allocate(g.id, [GPUS[i].uuid for i in GLOBEX_GPUS], day_ago)
    repo.close()
    return path


@pytest.fixture
def open_window(qtbot, history: Path):
    with open_windows(qtbot) as make_window:
        def make(*, read_only: bool = False, source: FakeSource | None = None):
            window = make_window(source or FakeSource(N), history_db=history, read_only=read_only, size=(1400, 900))
            qtbot.waitUntil(
                lambda: window.allocations.book is not None and bool(window.allocations.held.customers), timeout=PATIENCE_MS
            )
            return window

        yield make


def _rows(tab) -> list[tuple[str, ...]]:
    proxy = tab.usage_proxy
    return [tuple(proxy.index(r, c).data() for c in range(proxy.columnCount())) for r in range(proxy.rowCount())]


def _money(text: str) -> float:
    return float(text.replace(",", ""))


def _open_tab(window, subtab: int) -> None:
    window.ops.tabs.setCurrentWidget(window.allocations.tab)
    window.allocations.tab.views.setCurrentIndex(subtab)


def test_the_usage_table_is_computed_on_the_worker_sorted_and_filtered(qtbot, open_window) -> None:
    window = open_window()
    tab = window.allocations.tab
    _open_tab(window, 0)
    qtbot.waitUntil(lambda: tab.usage_model.rowCount() == 3, timeout=PATIENCE_MS)
    window.allocations.refresh_usage()  # the allocated counts of the poll are in by now
    qtbot.waitUntil(lambda: {r[0]: r[2] for r in _rows(tab)} == {"Acme": "4", "Globex": "2", "Initech": "0"}, timeout=PATIENCE_MS)
    by_name = {r[0]: r for r in _rows(tab)}
    assert by_name["Acme"][1] == "8" and by_name["Globex"][1] == "4" and by_name["Initech"][1] == "1"
    assert _money(by_name["Acme"][7]) == pytest.approx(576.0, abs=0.5)  # 4 GPUs x 72 h x 2.0
    assert _money(by_name["Globex"][7]) == pytest.approx(720.0, abs=0.5)  # 2 GPUs x 72 h x 5.0
    assert by_name["Initech"][3] == "—"  # nothing allocated: no utilization
    # An hour of history in a 7-day period over 72 allocated hours: about 1.4 % measured, and
    # the utilization is over that hour only (not diluted by the unmeasured 71 hours).
    assert 100 / 72 - 0.1 <= float(by_name["Acme"][4].rstrip(" %")) <= 200 / 72  # hours read at rollup resolution
    tab.usage_view.sortByColumn(7, Qt.SortOrder.DescendingOrder)
    assert [r[0] for r in _rows(tab)] == ["Globex", "Acme", "Initech"]
    tab.usage_view.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    assert [r[0] for r in _rows(tab)] == ["Acme", "Globex", "Initech"]
    tab.filter_edit.setText("glo")
    assert [r[0] for r in _rows(tab)] == ["Globex"]
    tab.filter_edit.clear()
    tab.period_combo.setCurrentText("24 h")
    qtbot.waitUntil(
        lambda: _money({r[0]: r[7] for r in _rows(tab)}.get("Acme", "0")) == pytest.approx(192.0, abs=0.5), timeout=PATIENCE_MS
    )
    assert [r[0] for r in _rows(tab)] == ["Acme", "Globex", "Initech"], "a refresh keeps the sort"


def test_a_period_change_never_leaves_the_old_figures_under_the_new_label(qtbot, open_window) -> None:
    window = open_window()
    tab = window.allocations.tab
    _open_tab(window, 0)
    qtbot.waitUntil(lambda: tab.usage_model.rowCount() == 3, timeout=PATIENCE_MS)
    shown = window.allocations._usage
    seven_days = window.allocations.tab.usage_model.rowCount()
    assert seven_days == 3 and shown is not None
    tab.period_combo.setCurrentText("30 d")
    assert tab.usage_model.rowCount() == 0 and tab.status.text() == "Computing usage over 30 d…"
    tab.show_usage(shown, {})  # the 7-day answer arriving late: dropped
    assert tab.usage_model.rowCount() == 0
    qtbot.waitUntil(lambda: tab.usage_model.rowCount() == 3, timeout=PATIENCE_MS)
    assert tab.status.text().startswith("Usage ")


def _select(window, positions) -> None:
    window.grid.set_selection([GPUS[i].uuid for i in positions], GPUS[positions[0]].uuid)


def _book(history: Path) -> AllocationRepository:
    return AllocationRepository.open(history, read_only=True)


def test_allocating_through_the_dialog_shows_problems_then_confirms_lost_gpus(qtbot, open_window, history: Path) -> None:
    source = FakeSource(N)
    source.lost = frozenset({9})
    window = open_window(source=source)
    console = window.allocations
    _select(window, (8, 9))
    assert console.tab.allocate_button.isEnabled()
    console.tab.allocate_button.click()
    dialog = console.dialog
    assert dialog is not None and dialog.isVisible() and dialog.uuids == (GPUS[8].uuid, GPUS[9].uuid)
    ids = {c.name: (c.customer_id, c.id) for c in console.book.contracts}

    dialog.choose(*ids["INI-1"])  # room for one GPU only
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: dialog.problem_text != "", timeout=PATIENCE_MS)
    assert "more" in dialog.problem_text and "1" in dialog.problem_text
    assert dialog.isVisible()

    dialog.choose(*ids["ACME-1"])
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: console.confirmation is not None, timeout=PATIENCE_MS)
    box = console.confirmation
    assert GPUS[9].uuid in box.informativeText() and "lost" in box.informativeText()
    assert GPUS[8].uuid not in box.informativeText()
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: console.dialog is None, timeout=PATIENCE_MS)
    repo = _book(history)
    held = {a.gpu_uuid for a in repo.allocations(contract_id=ids["ACME-1"][1])}
    assert {GPUS[8].uuid, GPUS[9].uuid} <= held
    assert repo.audit_log(limit=1)[0].user  # the change is audited
    repo.close()
    qtbot.waitUntil(lambda: console.held.customers.get(GPUS[8].uuid) == "Acme", timeout=PATIENCE_MS)


def test_refusing_the_confirmation_changes_nothing(qtbot, open_window, history: Path) -> None:
    source = FakeSource(N)
    source.lost = frozenset({10})
    window = open_window(source=source)
    console = window.allocations
    _select(window, (10,))
    console.open_allocate()
    dialog = console.dialog
    dialog.choose(*next((c.customer_id, c.id) for c in console.book.contracts if c.name == "ACME-1"))
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: console.confirmation is not None, timeout=PATIENCE_MS)
    console.confirmation.button(QMessageBox.StandardButton.No).click()
    assert "not confirmed" in dialog.problem_text
    repo = _book(history)
    assert repo.allocations(gpu_uuid=GPUS[10].uuid) == []
    repo.close()


def test_releasing_whole_nodes_through_the_dialog(qtbot, open_window, history: Path) -> None:
    window = open_window()
    console = window.allocations
    _select(window, (1,))  # node-000 holds GPUs 0-3
    console.tab.release_button.click()
    dialog = console.dialog
    dialog.whole_nodes_box.setChecked(True)
    assert dialog.uuids == tuple(GPUS[i].uuid for i in range(4))
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: console.dialog is None, timeout=PATIENCE_MS)
    repo = _book(history)
    now_ms = round(time.time() * 1000)
    assert all(a.end_ms is not None and a.end_ms <= now_ms for i in range(4) for a in repo.allocations(gpu_uuid=GPUS[i].uuid))
    repo.close()
    qtbot.waitUntil(lambda: GPUS[0].uuid not in console.held.customers, timeout=PATIENCE_MS)


def test_releasing_gpus_nobody_holds_is_refused_in_the_dialog(qtbot, open_window) -> None:
    window = open_window()
    console = window.allocations
    _select(window, (12,))
    console.open_release()
    dialog = console.dialog
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: dialog.problem_text != "", timeout=PATIENCE_MS)
    assert "none of the 1 selected GPU(s) is allocated" in dialog.problem_text


def test_read_only_disables_every_edit(qtbot, open_window, history: Path) -> None:
    window = open_window(read_only=True)
    console = window.allocations
    _select(window, (8,))
    assert not console.tab.allocate_button.isEnabled()
    assert not console.tab.release_button.isEnabled()
    assert "read-only" in console.tab.allocate_button.toolTip()
    console.open_allocate()
    console.open_release()
    assert console.dialog is None
    console.worker.allocate(1, (GPUS[8].uuid,), round(time.time() * 1000), None)  # even asked directly
    with qtbot.waitSignal(console.worker.actionDone, timeout=PATIENCE_MS) as answer:
        pass
    assert not answer.args[0].ok and "read-only" in answer.args[0].message
    repo = _book(history)
    assert repo.allocations(gpu_uuid=GPUS[8].uuid) == []
    repo.close()


def test_the_grid_colours_by_customer_with_a_legend(qtbot, open_window) -> None:
    window = open_window()
    grid = window.grid
    grid.set_metric(CUSTOMER_KEY)
    assert grid.colour_key == CUSTOMER_KEY
    QApplication.processEvents()
    acme, globex, free = (cell_rgb(grid, i, corner=True) for i in (0, 4, 10))
    assert acme == palette.CUSTOMER_RGB[0]  # the biggest holder gets the first colour
    assert globex == palette.CUSTOMER_RGB[1]
    assert free == palette.NO_DATA_RGB
    labels = [label for label, _ in grid.legend._swatches]
    assert labels[:2] == ["Acme", "Globex"] and UNALLOCATED_LABEL in labels
    grid.set_grouping("customer")
    assert grid.layout_info is not None and len(grid.layout_info.group_rows) == 3


def test_the_detail_view_names_the_holder_and_busy_unallocated_gpus_are_flagged(qtbot, open_window) -> None:
    window = open_window()
    window.select_gpu(GPUS[4].uuid)
    qtbot.waitUntil(lambda: window.detail.allocation_text == "customer: Globex · contract: GLX-1", timeout=PATIENCE_MS)
    assert "Globex" in window.detail.header.text()
    busy = next(i for i in range(6, N) if i % 3)  # FakeSource: GPU i runs i % 3 processes
    window.select_gpu(GPUS[busy].uuid)
    qtbot.waitUntil(lambda: window.detail.allocation_text.startswith("busy but unallocated: busy ("), timeout=PATIENCE_MS)
    assert "busy but unallocated" in window.grid.tooltip_text(busy)
    assert "busy but unallocated" not in window.grid.tooltip_text(0)


def _distinct_colours(widget) -> int:
    from PySide6.QtGui import QImage

    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), dtype=np.uint8).reshape(image.height(), image.bytesPerLine())
    pixels = rows[:, : image.width() * 3].reshape(-1, 3)
    return len(np.unique(pixels, axis=0))


def test_the_timeline_and_capacity_views_render(qtbot, open_window) -> None:
    window = open_window()
    tab = window.allocations.tab
    _open_tab(window, 1)
    qtbot.waitUntil(lambda: tab.timeline.rows == 4, timeout=PATIENCE_MS)
    assert tab.timeline.width() > 300 and tab.timeline.height() > 200
    assert _distinct_colours(tab.timeline.plot) > 8
    _open_tab(window, 2)
    qtbot.waitUntil(lambda: tab.capacity.series is not None, timeout=PATIENCE_MS)
    series = tab.capacity.series
    assert series.model == "TEST" and series.supply == N
    assert series.first_shortfall_ms is not None  # INI-BIG asks for 40 GPUs of 16
    assert tab.capacity.shortfall_line.isVisible() and "short from" in tab.capacity.summary.text()
    assert tab.capacity.width() > 300 and _distinct_colours(tab.capacity.plot) > 8


def test_the_audit_log_lists_changes_and_exports_them(qtbot, open_window, tmp_path: Path) -> None:
    window = open_window()
    tab = window.allocations.tab
    _open_tab(window, 3)
    qtbot.waitUntil(lambda: tab.audit_model.rowCount() > 0, timeout=PATIENCE_MS)
    actions = {tab.audit_model.row(r).entity for r in range(tab.audit_model.rowCount())}
    assert {"customer", "contract", "allocation"} <= actions
    target = tmp_path / "audit.csv"
    window.allocations.export_audit(target)
    qtbot.waitUntil(target.exists, timeout=PATIENCE_MS)
    qtbot.waitUntil(lambda: len(target.read_text().splitlines()) == tab.audit_model.rowCount() + 1, timeout=PATIENCE_MS)


def test_the_console_recording_a_simulated_fleet_seeds_the_demo_book(qtbot, tmp_path: Path) -> None:
    """Recording itself, the console sees each poll against the book on its alert worker: the
    demo customers appear once the fleet is stored, busy-but-unallocated GPUs are recorded."""
    from gpuops.core.allocations.busy import EVENT_KIND
    from gpuops.core.sources.demo import DemoSource
    from gpuops.gui.app.console_window import ConsoleWindow

    db = tmp_path / "fresh.sqlite"
    window = ConsoleWindow(lambda: DemoSource(n_gpus=64, seed=3), 0.05, history_db=db, demo_seed=3)
    qtbot.addWidget(window)
    window.show()
    window.start()
    try:
        qtbot.waitUntil(
            lambda: window.allocations.book is not None and len(window.allocations.book.customers) == 8, timeout=PATIENCE_MS
        )
        qtbot.waitUntil(lambda: len(window.allocations.held.customers) > 0, timeout=PATIENCE_MS)
        repo = _book(db)
        try:
            qtbot.waitUntil(
                lambda: repo.conn.execute("SELECT count(*) FROM events WHERE kind = ?", (EVENT_KIND,)).fetchone()[0] > 0,
                timeout=PATIENCE_MS,
            )
        finally:
            repo.close()
    finally:
        window.close()
        assert window.poller.join(5.0)

"""Customers and allocations in the console window: the worker, the Customers tab, the grid's
customers (grouping, filter, colour, tooltips), the holder of the GPU shown in the detail view,
and the allocation dialogs, wired together so that the main window needs two lines.

The GUI thread never reads the book: every poll goes to the worker, whose answers (who holds
which GPU, busy-but-unallocated GPUs, reports) come back as signals. The grid's customers are
replaced only when they changed (that re-arranges the grid).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QMessageBox

from gpuops.core.pipeline import PollOutcome
from gpuops.gui.customers.allocation_dialog import AllocateDialog, ReleaseDialog, confirmation_box
from gpuops.gui.customers.tab import TAB_TITLE, CustomersTab, period_ms
from gpuops.gui.customers.worker import ActionResult, AllocationWorker, Book, FleetHeld, UsageResult, recorded_held
from gpuops.gui.window.host import ConsoleHost
from gpuops.gui.workers.history_recorder import HistoryRecorder

log = logging.getLogger("gpuops.gui.allocations")

STATUS_MESSAGE_MS = 10_000


class AllocationConsole(QObject):
    def __init__(
        self, host: ConsoleHost, history_db: Path | None, *, read_only: bool = False, recorder: HistoryRecorder | None = None,
        worker: AllocationWorker | None = None,
    ) -> None:
        super().__init__(host.widget)
        self._host = host
        self._recorder = recorder
        if worker is None and history_db is not None:
            worker = AllocationWorker(history_db, self, read_only=read_only)
        self.worker = worker
        self.tab = CustomersTab(read_only=read_only, available=worker is not None)
        tabs = host.tabs
        tabs.addTab(self.tab, TAB_TITLE)
        tabs.setTabToolTip(tabs.indexOf(self.tab), "Usage per customer, allocations over time, capacity, audit log")
        self.book: Book | None = None
        self.held = FleetHeld(0.0, {}, {})
        self._usage: UsageResult | None = None
        self.dialog: AllocateDialog | ReleaseDialog | None = None
        self.confirmation: QMessageBox | None = None
        self._pending_allocation: tuple | None = None
        host.grid.selectionChanged.connect(lambda chosen: self.tab.set_selection(len(chosen)))
        host.grid.gpuSelected.connect(lambda _uuid: self._show_holder())
        self.tab.allocateClicked.connect(self.open_allocate)
        self.tab.releaseClicked.connect(self.open_release)
        self.tab.exportAuditClicked.connect(self._export_audit)
        self.tab.periodChanged.connect(lambda _: (self.tab.clear_usage(), self.refresh_usage()))
        self.tab.views.currentChanged.connect(lambda _: self._refresh_view())
        if worker is not None:
            worker.bookChanged.connect(self._book_changed)
            worker.fleetHeld.connect(self._fleet_held)
            worker.usageReady.connect(self._usage_ready)
            worker.timelineReady.connect(self.tab.timeline.show_timeline)
            worker.capacityReady.connect(self.tab.capacity.show_plan)
            worker.auditReady.connect(self.tab.show_audit)
            worker.actionDone.connect(self._action_done)
            worker.problem.connect(self._problem)
            host.poll_shown.connect(self._poll)
            if recorder is not None:
                recorder.outcomeReady.connect(self._recorded)

    def _poll(self, result) -> None:
        assert self.worker is not None
        recording = self._recorder is not None and self._recorder.writing
        self.worker.process(result.sample, None if result.graded is None else result.graded.health, hold=not recording)

    def _recorded(self, outcome: PollOutcome) -> None:
        """The recorder's pipeline saw a poll against the book: the grid's customers from it."""
        held = recorded_held(outcome.sample, outcome.allocations)
        if held is not None:
            self._fleet_held(held)

    # --- answers ---------------------------------------------------------------------------

    def _book_changed(self, book: Book) -> None:
        self.book = book
        self._host.grid.set_lifecycle(book.lifecycle)
        self._show_holder()
        self.refresh_usage()
        self._refresh_view()

    def _fleet_held(self, held: FleetHeld) -> None:
        grid = self._host.grid
        if held.customers != self.held.customers:
            grid.set_customers(held.customers)
        grid.set_busy_unallocated(held.busy)
        self.held = held
        self._show_holder()

    def _usage_ready(self, result: UsageResult) -> None:
        self._usage = result
        self.tab.show_usage(result, self.held.customers)

    def _problem(self, message: str) -> None:
        if message:
            self.tab.status.setText(message)

    def _show_holder(self) -> None:
        """The detail view's line on who holds its GPU now."""
        detail = self._host.detail
        uuid = detail.uuid
        if uuid is None:
            return
        holder = None if self.book is None else self.book.index.holder(uuid, round(time.time() * 1000))
        busy = self.held.busy.get(uuid)
        if holder is not None:
            text = f"customer: {holder.customer} · contract: {holder.contract}"
        elif busy:
            text = f"busy but unallocated: {busy}"
        else:
            text = "unallocated" if self.book is not None else ""
        detail.set_allocation(text)

    # --- reads -----------------------------------------------------------------------------

    def refresh_usage(self) -> None:
        if self.worker is not None:
            self.worker.query_usage(*period_ms(self.tab.period, time.time()))

    def _refresh_view(self) -> None:
        if self.worker is None:
            return
        current = self.tab.views.currentIndex()
        {1: self.worker.query_timeline, 2: self.worker.query_capacity, 3: self.worker.query_audit}.get(current, lambda: None)()

    # --- writes ----------------------------------------------------------------------------

    def _selection(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(the selected GPUs, every GPU of their nodes), in fleet order."""
        chosen = self._host.grid.selected_uuids()
        sample = self._host.last_sample()
        if sample is None:
            return tuple(sorted(chosen)), tuple(sorted(chosen))
        nodes = {g.node for g in sample.gpus if g.uuid in chosen}
        return tuple(g.uuid for g in sample.gpus if g.uuid in chosen), tuple(g.uuid for g in sample.gpus if g.node in nodes)

    def open_allocate(self) -> None:
        if self.worker is None or self.worker.read_only or self.book is None:
            return
        selected, whole = self._selection()
        dialog = AllocateDialog(
            self.book.customers, self.book.contracts, selected, whole, round(time.time() * 1000), self._host.widget
        )
        dialog.submitted.connect(self._allocate)
        self._open(dialog)

    def open_release(self) -> None:
        if self.worker is None or self.worker.read_only:
            return
        selected, whole = self._selection()
        dialog = ReleaseDialog(selected, whole, round(time.time() * 1000), self._host.widget)
        dialog.submitted.connect(lambda uuids, at_ms: self.worker.release(uuids, at_ms))  # type: ignore[union-attr]  # checked above
        self._open(dialog)

    def _open(self, dialog: AllocateDialog | ReleaseDialog) -> None:
        self.dialog = dialog
        dialog.finished.connect(lambda _: self._closed(dialog))
        dialog.open()

    def _closed(self, dialog: AllocateDialog | ReleaseDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None
            self._pending_allocation = None

    def _allocate(self, contract_id: int, uuids: tuple, start_ms: int, end_ms: int | None) -> None:
        assert self.worker is not None
        self._pending_allocation = (contract_id, uuids, start_ms, end_ms)
        self.worker.allocate(contract_id, uuids, start_ms, end_ms)

    def _action_done(self, result: ActionResult) -> None:
        dialog = self.dialog
        if result.ok:
            self._host.show_status(result.message, STATUS_MESSAGE_MS)
            if dialog is not None:
                dialog.accept()
            self.worker.check_book()  # type: ignore[union-attr]  # a result comes only from a worker
            return
        if result.unhealthy and self._pending_allocation is not None and dialog is not None:
            box = confirmation_box(result.unhealthy, dialog)
            box.finished.connect(lambda answer: self._confirmed(answer == QMessageBox.StandardButton.Yes))
            self.confirmation = box
            box.open()
            return
        if dialog is not None:
            dialog.show_refusal(result.message, result.problems)
        else:
            self._host.show_status(f"⚠ {result.message}", STATUS_MESSAGE_MS)

    def _confirmed(self, yes: bool) -> None:
        self.confirmation = None
        pending, dialog = self._pending_allocation, self.dialog
        if dialog is None or pending is None:
            return
        if not yes:
            dialog.show_refusal("Nothing was changed: the lost or faulty GPUs were not confirmed")
            return
        contract_id, uuids, start_ms, end_ms = pending
        self.worker.allocate(contract_id, uuids, start_ms, end_ms, confirm=True)  # type: ignore[union-attr]  # pending only with a worker

    def _export_audit(self) -> None:
        if self.worker is None:
            return
        path, _ = QFileDialog.getSaveFileName(self._host.widget, "Export the audit log", "gpuops-audit.csv", "CSV files (*.csv)")
        if path:
            self.export_audit(Path(path))

    def export_audit(self, path: Path) -> None:
        """Write the audit log to `path` (on the worker; the status bar says how it went)."""
        assert self.worker is not None
        self.worker.export_audit(path)

    def stop(self) -> None:
        if self.worker is not None and not self.worker.stop():
            log.warning("the allocations worker did not finish in time; the last allocation writes may be lost")

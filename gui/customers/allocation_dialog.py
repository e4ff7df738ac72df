"""Assigning selected GPUs to a contract, releasing them, and confirming lost or faulty GPUs.

The dialogs only gather what to do and show why it was refused: the console sends the request
to the allocation worker and hands the answer back (`show_refusal`), keeping the dialog open
with every problem listed until the change goes through or the person cancels.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtCore import QDateTime, Qt, QTimeZone, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from gpuops.core.allocations.errors import UnhealthyGpu
from gpuops.core.allocations.model import Contract, Customer
from gpuops.core.timefmt import format_ms

_PROBLEM_STYLE = "color: #b00020;"


def _utc_edit(ts_ms: int) -> QDateTimeEdit:
    edit = QDateTimeEdit()
    edit.setTimeZone(QTimeZone.utc())
    edit.setDisplayFormat("yyyy-MM-dd HH:mm 'UTC'")
    edit.setCalendarPopup(True)
    edit.setDateTime(QDateTime.fromMSecsSinceEpoch(ts_ms, QTimeZone.utc()))
    return edit


class _GpuDialog(QDialog):
    """What both dialogs share: the GPUs (as selected, or their whole nodes), the problems
    line, and a busy state while the worker writes."""

    def __init__(self, title: str, selected: Sequence[str], whole_nodes: Sequence[str], parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self._selected = tuple(selected)
        self._whole_nodes = tuple(whole_nodes)
        self.whole_nodes_box = QCheckBox(f"Whole nodes ({len(self._whole_nodes)} GPUs on the nodes of the selection)")
        self.whole_nodes_box.setEnabled(len(self._whole_nodes) > len(self._selected))
        self.whole_nodes_box.toggled.connect(self._update_count)
        self.count_label = QLabel()
        self.problems = QLabel()
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet(_PROBLEM_STYLE)
        self.problems.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problems.setVisible(False)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._submit)
        self.buttons.rejected.connect(self.reject)
        self.form = QFormLayout()
        layout = QVBoxLayout(self)
        layout.addWidget(self.count_label)
        layout.addWidget(self.whole_nodes_box)
        layout.addLayout(self.form)
        layout.addWidget(self.problems)
        layout.addWidget(self.buttons)
        self._update_count()

    @property
    def uuids(self) -> tuple[str, ...]:
        return self._whole_nodes if self.whole_nodes_box.isChecked() else self._selected

    def _update_count(self) -> None:
        self.count_label.setText(f"{len(self.uuids)} GPU(s)")

    def _submit(self) -> None:
        raise NotImplementedError

    def set_busy(self, busy: bool) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not busy)
        if busy:
            self.problems.setVisible(False)

    def show_refusal(self, message: str, problems: Sequence[str] = ()) -> None:
        """Why nothing was changed, every problem on its own line; the dialog stays open."""
        lines = [html.escape(message)] + [f"• {html.escape(p)}" for p in problems]
        self.problems.setText("<br>".join(lines))
        self.problems.setVisible(True)
        self.set_busy(False)

    @property
    def problem_text(self) -> str:
        return self.problems.text() if self.problems.isVisible() else ""


class AllocateDialog(_GpuDialog):
    """Pick a customer, then one of its contracts, and the dates."""

    #: contract id, GPU UUIDs, start ms, end ms (None: until the contract ends); ms as Python
    #: ints (object), which a C++ int could not hold
    submitted = Signal(int, tuple, object, object)

    def __init__(
        self, customers: Sequence[Customer], contracts: Sequence[Contract], selected: Sequence[str], whole_nodes: Sequence[str],
        now_ms: int, parent: QWidget | None = None,
    ) -> None:
        super().__init__("Allocate GPUs", selected, whole_nodes, parent)
        self._contracts = tuple(contracts)
        self.customer_combo = QComboBox()
        for c in customers:
            self.customer_combo.addItem(c.name, c.id)
        self.contract_combo = QComboBox()
        self.start_edit = _utc_edit(now_ms)
        self.until_contract_end = QCheckBox("until the contract ends")
        self.until_contract_end.setChecked(True)
        self.end_edit = _utc_edit(now_ms)
        self.end_edit.setEnabled(False)
        self.until_contract_end.toggled.connect(lambda on: self.end_edit.setEnabled(not on))
        self.terms = QLabel()
        self.terms.setWordWrap(True)
        self.form.addRow("Customer", self.customer_combo)
        self.form.addRow("Contract", self.contract_combo)
        self.form.addRow("", self.terms)
        self.form.addRow("From", self.start_edit)
        self.form.addRow("To", self.until_contract_end)
        self.form.addRow("", self.end_edit)
        self.customer_combo.currentIndexChanged.connect(self._customer_chosen)
        self.contract_combo.currentIndexChanged.connect(self._contract_chosen)
        self._customer_chosen()

    def choose(self, customer_id: int, contract_id: int) -> None:
        self.customer_combo.setCurrentIndex(self.customer_combo.findData(customer_id))
        self.contract_combo.setCurrentIndex(self.contract_combo.findData(contract_id))

    def _customer_chosen(self) -> None:
        customer_id = self.customer_combo.currentData()
        self.contract_combo.clear()
        for c in self._contracts:
            if c.customer_id == customer_id:
                self.contract_combo.addItem(f"{c.name} ({c.gpu_count} × {c.gpu_model}, {c.type.value})", c.id)
        self._contract_chosen()

    def _contract_chosen(self) -> None:
        contract = next((c for c in self._contracts if c.id == self.contract_combo.currentData()), None)
        if contract is None:
            self.terms.setText("This customer has no contract: add one with `gpuops customers` first.")
            return
        end = "open-ended" if contract.end_ms is None else format_ms(contract.end_ms)
        self.terms.setText(
            f"{format_ms(contract.start_ms)} to {end}, {contract.price_per_gpu_hour:g} per GPU-hour, {contract.status.value}"
        )

    def _submit(self) -> None:
        contract_id = self.contract_combo.currentData()
        start_ms = self.start_edit.dateTime().toMSecsSinceEpoch()
        end_ms = None if self.until_contract_end.isChecked() else self.end_edit.dateTime().toMSecsSinceEpoch()
        problems = []
        if contract_id is None:
            problems.append("choose a contract")
        if not self.uuids:
            problems.append("select GPUs in the fleet grid first")
        if end_ms is not None and end_ms <= start_ms:
            problems.append("the allocation must end after it starts")
        if problems:
            self.show_refusal("Nothing was changed:", problems)
            return
        self.set_busy(True)
        self.submitted.emit(int(contract_id), self.uuids, start_ms, end_ms)


class ReleaseDialog(_GpuDialog):
    """End the selected GPUs' allocations at a chosen time (default now)."""

    #: GPU UUIDs, release time ms (object: wider than a C++ int)
    submitted = Signal(tuple, object)

    def __init__(self, selected: Sequence[str], whole_nodes: Sequence[str], now_ms: int, parent: QWidget | None = None) -> None:
        super().__init__("Release GPUs", selected, whole_nodes, parent)
        self.at_edit = _utc_edit(now_ms)
        self.form.addRow("Release at", self.at_edit)
        self.form.addRow("", QLabel("Allocations running then end; ones starting later are removed."))

    def _submit(self) -> None:
        if not self.uuids:
            self.show_refusal("Nothing was changed:", ["select GPUs in the fleet grid first"])
            return
        self.set_busy(True)
        self.submitted.emit(self.uuids, self.at_edit.dateTime().toMSecsSinceEpoch())


def confirmation_box(gpus: Sequence[UnhealthyGpu], parent: QWidget | None = None) -> QMessageBox:
    """Ask whether to allocate lost or faulty GPUs anyway, naming each and why (open it with open())."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Allocate lost or faulty GPUs?")
    box.setText(f"{len(gpus)} of the GPUs are lost or faulty. Allocate them anyway?")
    box.setInformativeText("\n".join(f"{g.uuid}: {g.reason}" for g in gpus))
    box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
    box.setDefaultButton(QMessageBox.StandardButton.No)
    return box

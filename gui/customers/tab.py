"""The Customers tab: usage per customer over a period (sortable, filterable), the allocation
actions on the GPUs selected in the grid, and sub-tabs for the allocation timeline, the
capacity planner and the audit log. It only shows answers; `AllocationConsole` asks for them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QTabWidget, QVBoxLayout, QWidget

from gpuops.core.allocations.audit import AuditEntry
from gpuops.core.timefmt import format_ms, utc_month_start_ms
from gpuops.gui.common.rows_model import Column, RowsModel, sorted_table
from gpuops.gui.customers.capacity_view import CapacityView
from gpuops.gui.customers.timeline import AllocationTimeline
from gpuops.gui.customers.worker import UsageResult

TAB_TITLE = "Customers"
READ_ONLY_TIP = "This console is read-only (--read-only)"
PERIODS = ("24 h", "7 d", "30 d", "This month")
DEFAULT_PERIOD = "7 d"


def period_ms(label: str, now: float) -> tuple[int, int]:
    """[start, end) in UTC epoch ms of a period ending now; "This month" starts on the 1st (UTC)."""
    end = round(now * 1000)
    if label == "This month":
        return utc_month_start_ms(now), end
    days = {"24 h": 1, "7 d": 7, "30 d": 30}[label]
    return end - days * 86_400_000, end


@dataclass(frozen=True)
class CustomerRow:
    customer: str
    contracted: int
    allocated: int
    utilization_pct: float | None
    coverage_pct: float | None
    idle_gpu_hours: float
    energy_kwh: float
    revenue: float


def customer_rows(result: UsageResult, held: Mapping[str, str]) -> list[CustomerRow]:
    """One row per customer of the report; `held` (UUID -> customer, now) counts allocated GPUs."""
    allocated: dict[str, int] = {}
    for customer in held.values():
        allocated[customer] = allocated.get(customer, 0) + 1
    return [
        CustomerRow(
            u.customer.name, result.contracted_now.get(u.customer.id, 0), allocated.get(u.customer.name, 0),
            u.usage.utilization_pct, u.usage.coverage_pct, u.usage.idle_gpu_hours, u.usage.energy_kwh, u.usage.revenue,
        )
        for u in result.report
    ]


def _num(fmt: str):
    return lambda v: "—" if v is None else fmt.format(v)


USAGE_COLUMNS = (
    Column("Customer", lambda r: r.customer, lambda r: r.customer, 180),
    Column("Contracted", lambda r: f"{r.contracted:,}", lambda r: r.contracted, 90, True, "GPUs under contracts in force now"),
    Column("Allocated", lambda r: f"{r.allocated:,}", lambda r: r.allocated, 80, True, "GPUs of the fleet held now"),
    Column(
        "Utilization", lambda r: _num("{:.1f} %")(r.utilization_pct), lambda r: r.utilization_pct, 90, True,
        "Average over the measured time (allocated time with readings)",
    ),
    Column(
        "Measured", lambda r: _num("{:.1f} %")(r.coverage_pct), lambda r: r.coverage_pct, 80, True,
        "Share of the allocated time with readings; the rest (before the history began, gaps) is unmeasured, not idle",
    ),
    Column(
        "Idle GPU-h", lambda r: f"{r.idle_gpu_hours:,.1f}", lambda r: r.idle_gpu_hours, 90, True,
        "Allocated GPU-hours idle for 30 min or more",
    ),
    Column("Energy kWh", lambda r: f"{r.energy_kwh:,.1f}", lambda r: r.energy_kwh, 90, True),
    Column("Revenue", lambda r: f"{r.revenue:,.2f}", lambda r: r.revenue, 100, True, "Allocated GPU-hours × price"),
)

AUDIT_COLUMNS = (
    Column("When (UTC)", lambda e: format_ms(e.ts_ms), lambda e: e.ts_ms, 170),
    Column("User", lambda e: e.user, lambda e: e.user, 90),
    Column("Action", lambda e: e.action, lambda e: e.action, 70),
    Column("Entity", lambda e: f"{e.entity} {'' if e.entity_id is None else e.entity_id}", lambda e: e.entity, 110),
    Column("Change", lambda e: _change(e), lambda e: _change(e), 400),
)


def _change(e: AuditEntry) -> str:
    before, after = e.before or {}, e.after or {}
    if before and after:
        return ", ".join(f"{k}: {before.get(k)} → {after.get(k)}" for k in sorted(after) if before.get(k) != after.get(k))
    return ", ".join(f"{k}={v}" for k, v in sorted((after or before).items()))


class CustomersTab(QWidget):
    periodChanged = Signal(str)
    allocateClicked = Signal()
    releaseClicked = Signal()
    exportAuditClicked = Signal()

    def __init__(self, *, read_only: bool = False, available: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.read_only = read_only
        self.period_combo = QComboBox()
        self.period_combo.addItems(PERIODS)
        self.period_combo.setCurrentText(DEFAULT_PERIOD)
        self.period_combo.setToolTip("Usage over this period, up to now (computed in the background)")
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter customers")
        self.filter_edit.setClearButtonEnabled(True)
        self.allocate_button = QPushButton("Allocate selected GPUs…")
        self.release_button = QPushButton("Release selected GPUs…")
        self.status = QLabel("" if available else "Customers live in the history database; this console runs without history.")
        self.status.setWordWrap(True)
        self.usage_model = RowsModel(USAGE_COLUMNS, key=lambda r: r.customer)
        self.usage_view, self.usage_proxy = sorted_table(self.usage_model)
        self.usage_view.sortByColumn(7, Qt.SortOrder.DescendingOrder)
        self.timeline = AllocationTimeline()
        self.capacity = CapacityView()
        self.audit_model = RowsModel(AUDIT_COLUMNS, key=lambda e: e.id)
        self.audit_view, self.audit_proxy = sorted_table(self.audit_model, filter_column=4)
        self.export_button = QPushButton("Export audit log…")
        audit = QWidget()
        audit_layout = QVBoxLayout(audit)
        audit_layout.setContentsMargins(0, 0, 0, 0)
        audit_layout.addWidget(self.audit_view, 1)
        audit_layout.addWidget(self.export_button)
        self.views = QTabWidget()
        self.views.addTab(self.usage_view, "Usage")
        self.views.addTab(self.timeline, "Timeline")
        self.views.addTab(self.capacity, "Capacity")
        self.views.addTab(audit, "Audit log")

        top = QHBoxLayout()
        top.addWidget(QLabel("Period"))
        top.addWidget(self.period_combo)
        top.addWidget(self.filter_edit, 1)
        actions = QHBoxLayout()
        actions.addWidget(self.allocate_button)
        actions.addWidget(self.release_button)
        actions.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(actions)
        layout.addWidget(self.status)
        layout.addWidget(self.views, 1)

        self.period_combo.currentTextChanged.connect(self.periodChanged)
        self.filter_edit.textChanged.connect(self.usage_proxy.setFilterFixedString)
        self.allocate_button.clicked.connect(self.allocateClicked)
        self.release_button.clicked.connect(self.releaseClicked)
        self.export_button.clicked.connect(self.exportAuditClicked)
        self._available = available
        self.set_selection(0)

    @property
    def period(self) -> str:
        return self.period_combo.currentText()

    def set_selection(self, n_selected: int) -> None:
        """Enable the allocation actions when GPUs are selected and edits are allowed."""
        writable = self._available and not self.read_only
        for button in (self.allocate_button, self.release_button):
            button.setEnabled(writable and n_selected > 0)
            button.setToolTip(READ_ONLY_TIP if self.read_only else ("" if n_selected else "Select GPUs in the fleet grid first"))
        self.export_button.setEnabled(self._available)

    def clear_usage(self) -> None:
        """A new period was asked for: the old figures go, so none stands under the new label."""
        self.usage_model.set_rows([])
        self.status.setText(f"Computing usage over {self.period}…")

    def show_usage(self, result: UsageResult, held: Mapping[str, str]) -> None:
        """Show `result` if it is of the period chosen now (else it is stale and dropped)."""
        if period_ms(self.period, result.end_ms / 1000) != (result.start_ms, result.end_ms):
            return
        self.usage_model.set_rows(customer_rows(result, held))
        self.status.setText(
            f"Usage {format_ms(result.start_ms)} to {format_ms(result.end_ms)} ({result.computed_s:.1f} s to compute)"
        )

    def show_audit(self, entries: tuple[AuditEntry, ...]) -> None:
        self.audit_model.set_rows(entries)


"""The selected GPU's processes as a table model (a handful of rows, replaced when they change)."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from gpuops.core.telemetry import ProcessInfo
from gpuops.core.units import DEFAULT_UNITS, DisplayUnits, format_bytes

_HEADERS = ("PID", "Process", "GPU memory")
_HIDDEN_NAME = "(not visible from this host)"
_HIDDEN_TIP = "The process runs in another PID namespace, such as a container; its memory is real."

Index = QModelIndex | QPersistentModelIndex


class ProcessTableModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self._processes: tuple[ProcessInfo, ...] = ()
        self._units = DEFAULT_UNITS

    def set_units(self, units: DisplayUnits) -> None:
        self._units = units
        if self._processes:
            self.dataChanged.emit(self.index(0, 2), self.index(len(self._processes) - 1, 2))

    def set_processes(self, processes: tuple[ProcessInfo, ...]) -> None:
        if processes == self._processes:
            return
        self.beginResetModel()
        self._processes = processes
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._processes)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(_HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return _HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        process = self._processes[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return str(process.pid)
            if column == 1:
                return process.name if process.name is not None else _HIDDEN_NAME
            return format_bytes(process.used_mem_bytes, self._units)
        if role == Qt.ItemDataRole.ToolTipRole and column == 1 and process.name is None:
            return _HIDDEN_TIP
        if role == Qt.ItemDataRole.TextAlignmentRole and column != 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

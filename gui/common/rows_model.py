"""A read-only table of frozen rows for a QTableView behind a QSortFilterProxyModel.

A refresh with the same rows in the same order (the usual case: new numbers for the same
customers) is one ranged dataChanged, so the view keeps its sort, selection and scroll; other
refreshes reset the model. Columns have fixed widths: measuring contents would read every row.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

#: The role the proxy sorts by: numbers as numbers (None first), text case-folded.
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class Column:
    header: str
    text: Callable[[Any], str]
    sort: Callable[[Any], Any]
    width: int
    numeric: bool = False
    tooltip: str = ""


class RowsModel(QAbstractTableModel):
    def __init__(self, columns: Sequence[Column], key: Callable[[Any], Hashable]) -> None:
        super().__init__()
        self.columns = tuple(columns)
        self._key = key
        self._rows: tuple = ()

    def set_rows(self, rows: Sequence) -> None:
        rows = tuple(rows)
        if rows and [self._key(r) for r in rows] == [self._key(r) for r in self._rows]:
            self._rows = rows
            self.dataChanged.emit(self.index(0, 0), self.index(len(rows) - 1, len(self.columns) - 1))
            return
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()

    def row(self, i: int) -> Any:
        return self._rows[i]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = self._rows[index.row()], self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.text(row)
        if role == SORT_ROLE:
            value = column.sort(row)
            if column.numeric:
                return float("-inf") if value is None else float(value)
            return str(value).casefold()
        if role == Qt.ItemDataRole.TextAlignmentRole and column.numeric:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.columns[section].header
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.columns[section].tooltip or None
        return None


def sorted_table(model: RowsModel, filter_column: int = 0) -> tuple[QTableView, QSortFilterProxyModel]:
    """A view sorted by clicking headers and filtered (any case) on `filter_column`."""
    proxy = QSortFilterProxyModel()
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    proxy.setFilterKeyColumn(filter_column)
    proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    view = QTableView()
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.verticalHeader().setVisible(False)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(True)
    for i, column in enumerate(model.columns):
        header.resizeSection(i, column.width)
    return view, proxy

"""Where each GPU sits in the fleet grid.

The grid draws the chunks of a `grid_arrangement.Arrangement` (by default one chunk per node, in
topology order): each chunk is a block, one row of its GPUs in index order. A small fleet gets
one chunk per row, each row labelled. A larger one tiles blocks left to right, with a one-cell
gap between neighbours, and as many blocks per row as keeps the grid about as wide as a typical
view is, so 8 GPUs and 10,000 GPUs both fill the space. When the arrangement is grouped, each
group starts a new row, one empty row below the previous group. Filtered-out GPUs have no cell
(col and row -1).
"""

from __future__ import annotations

import math

import numpy as np

from gpuops.gui.grid.arrangement import Arrangement, FleetFacts, arrange
from gpuops.gui.live.fleet_index import FleetIndex

#: Width / height, in cells, the layout aims for (cells stretch to fill the view anyway).
TARGET_ASPECT = 1.6
#: Up to this many chunks, each gets its own row, so every row label names exactly one node.
ONE_NODE_PER_ROW_MAX = 32


class GridLayout:
    """Cell coordinates of every shown GPU, and the reverse map from a cell to a GPU."""

    def __init__(self, index: FleetIndex, target_aspect: float = TARGET_ASPECT, arrangement: Arrangement | None = None) -> None:
        if arrangement is None:
            state = np.zeros(len(index), dtype=np.uint8)
            arrangement = arrange(index, FleetFacts(state=state, condition=state))
        self.arrangement = arrangement
        sizes = np.diff(arrangement.starts)
        n_chunks = arrangement.n_chunks
        self.block_width = int(sizes.max()) if n_chunks else 1
        stride = self.block_width + 1
        if n_chunks <= ONE_NODE_PER_ROW_MAX:
            self.blocks_per_row = 1
        else:
            self.blocks_per_row = min(n_chunks, max(1, round(math.sqrt(target_aspect * n_chunks / stride))))
        chunk_row, chunk_col, group_rows = self._place_chunks(arrangement)
        self.width = self.blocks_per_row * stride - 1
        self.height = max(1, int(chunk_row[-1]) + 1 if n_chunks else 1)

        n = len(index)
        order = arrangement.order
        chunk_of_shown = np.repeat(np.arange(n_chunks), sizes)
        #: Chunk number of each GPU (-1 when filtered out).
        self.chunk_of = np.full(n, -1, dtype=np.int64)
        self.chunk_of[order] = chunk_of_shown
        self.col = np.full(n, -1, dtype=np.int32)
        self.row = np.full(n, -1, dtype=np.int32)
        offset = np.arange(len(order)) - arrangement.starts[chunk_of_shown]
        self.col[order] = chunk_col[chunk_of_shown] * stride + offset
        self.row[order] = chunk_row[chunk_of_shown]
        #: Positions of the shown GPUs, and the flattened (row-major) index of each one's cell.
        self.placed = order
        self.flat = self.row[order].astype(np.int64) * self.width + self.col[order]
        self._gpu_at = np.full(self.width * self.height, -1, dtype=np.int32)
        self._gpu_at[self.flat] = order
        #: Label of each grid row: the node that starts it ("" for a spacer row).
        labels = [""] * self.height
        for k in range(n_chunks - 1, -1, -1):
            labels[chunk_row[k]] = arrangement.chunk_labels[k]
        self.row_labels: tuple[str, ...] = tuple(labels)
        #: (row, label, GPU count) of each non-empty group, when grouped.
        self.group_rows: tuple[tuple[int, str, int], ...] = group_rows
        self.chunk_row, self.chunk_col = chunk_row, chunk_col

    def _place_chunks(self, arrangement: Arrangement) -> tuple[np.ndarray, np.ndarray, tuple[tuple[int, str, int], ...]]:
        n_chunks = arrangement.n_chunks
        chunk_row = np.zeros(n_chunks, dtype=np.int64)
        chunk_col = np.zeros(n_chunks, dtype=np.int64)
        group_rows: list[tuple[int, str, int]] = []
        sizes = np.diff(arrangement.starts)
        row, col, group = 0, 0, None
        for k, chunk_group in enumerate(arrangement.chunk_group.tolist()):
            if arrangement.grouped and chunk_group != group:
                if group is not None:
                    row += 2 if col else 1  # finish the row, then one empty row
                    col = 0
                group = chunk_group
                members = int(sizes[arrangement.chunk_group == chunk_group].sum())
                group_rows.append((row, arrangement.group_labels[chunk_group], members))
            elif col == self.blocks_per_row:
                row, col = row + 1, 0
            chunk_row[k], chunk_col[k] = row, col
            col += 1
        return chunk_row, chunk_col, tuple(group_rows)

    def gpu_at(self, col: int, row: int) -> int | None:
        """Position of the GPU in cell (col, row), or None for a gap or outside the grid."""
        if not (0 <= col < self.width and 0 <= row < self.height):
            return None
        position = int(self._gpu_at[row * self.width + col])
        return None if position < 0 else position

    def gpus_in(self, col0: int, row0: int, col1: int, row1: int) -> np.ndarray:
        """Positions of the GPUs in the cells of the inclusive rectangle (clipped to the grid)."""
        c0, c1 = max(0, min(col0, col1)), min(self.width - 1, max(col0, col1))
        r0, r1 = max(0, min(row0, row1)), min(self.height - 1, max(row0, row1))
        if c0 > c1 or r0 > r1:
            return np.zeros(0, dtype=np.int64)
        cells = self._gpu_at.reshape(self.height, self.width)[r0 : r1 + 1, c0 : c1 + 1].ravel()
        return cells[cells >= 0].astype(np.int64)

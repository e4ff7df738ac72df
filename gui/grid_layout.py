"""Where each GPU sits in the fleet grid.

Each node is a block: one row of its GPUs in index order. A small fleet gets one node per row, each
row labelled. A larger one tiles blocks left to right, with a one-cell gap between neighbours, and
as many blocks per row as keeps the grid about as wide as a typical view is, so 8 GPUs and 10,000
GPUs both fill the space.
"""

from __future__ import annotations

import math

import numpy as np

from gui.fleet_index import FleetIndex

#: Width / height, in cells, the layout aims for (cells stretch to fill the view anyway).
TARGET_ASPECT = 1.6
#: Up to this many nodes, each gets its own row, so every row label names exactly one node.
ONE_NODE_PER_ROW_MAX = 32


class GridLayout:
    """Cell coordinates of every GPU, and the reverse map from a cell to a GPU."""

    def __init__(self, index: FleetIndex, target_aspect: float = TARGET_ASPECT) -> None:
        nodes = index.nodes
        self.block_width = max((len(node.gpu_positions) for node in nodes), default=1)
        stride = self.block_width + 1
        n_nodes = max(len(nodes), 1)
        if n_nodes <= ONE_NODE_PER_ROW_MAX:
            self.blocks_per_row = 1
        else:
            self.blocks_per_row = min(n_nodes, max(1, round(math.sqrt(target_aspect * n_nodes / stride))))
        self.width = self.blocks_per_row * stride - 1
        self.height = math.ceil(n_nodes / self.blocks_per_row)
        self.col = np.zeros(len(index), dtype=np.int32)
        self.row = np.zeros(len(index), dtype=np.int32)
        for n, node in enumerate(nodes):
            block_row, block_col = divmod(n, self.blocks_per_row)
            for k, position in enumerate(node.gpu_positions):
                self.col[position] = block_col * stride + k
                self.row[position] = block_row
        #: Index into the flattened (row-major) grid of each GPU's cell.
        self.flat = self.row * self.width + self.col
        self._gpu_at = np.full(self.width * self.height, -1, dtype=np.int32)
        self._gpu_at[self.flat] = np.arange(len(index), dtype=np.int32)
        #: Node name that starts each grid row.
        self.row_labels: tuple[str, ...] = tuple(
            nodes[r * self.blocks_per_row].name for r in range(self.height) if nodes
        )

    def gpu_at(self, col: int, row: int) -> int | None:
        """Position of the GPU in cell (col, row), or None for a gap or outside the grid."""
        if not (0 <= col < self.width and 0 <= row < self.height):
            return None
        position = int(self._gpu_at[row * self.width + col])
        return None if position < 0 else position

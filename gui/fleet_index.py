"""Lookups derived once per inventory, so per-poll code stays vectorised.

A source keeps the same GPUs from poll to poll; when the inventory does change (a GPU appears
or vanishes) every view rebuilds its layout from a new `FleetIndex`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.telemetry import GpuInventory


def _float_column(values: list[float | int | None]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


@dataclass(frozen=True)
class NodeGroup:
    """One node's GPUs, as positions in the sample, in inventory order."""

    name: str
    gpu_positions: tuple[int, ...]


class FleetIndex:
    """Positions by UUID, nodes in first-seen order, and inventory columns as arrays."""

    def __init__(self, gpus: tuple[GpuInventory, ...]) -> None:
        self.gpus = gpus
        self.uuids: tuple[str, ...] = tuple(gpu.uuid for gpu in gpus)
        self._position = {uuid: i for i, uuid in enumerate(self.uuids)}
        self.mem_total_bytes = _float_column([gpu.mem_total_bytes for gpu in gpus])
        self.power_limit_w = _float_column([gpu.power_limit_w for gpu in gpus])
        members: dict[str, list[int]] = {}
        for i, gpu in enumerate(gpus):
            members.setdefault(gpu.node, []).append(i)
        self.nodes: tuple[NodeGroup, ...] = tuple(
            NodeGroup(name, tuple(positions)) for name, positions in members.items()
        )
        node_of = {group.name: n for n, group in enumerate(self.nodes)}
        #: For each GPU, the position of its node in `nodes`.
        self.node_number = np.array([node_of[gpu.node] for gpu in gpus], dtype=np.int32)

    def __len__(self) -> int:
        return len(self.uuids)

    def matches(self, gpus: tuple[GpuInventory, ...]) -> bool:
        """True when `gpus` is the same fleet in the same order (cheap when it is the same tuple)."""
        if gpus is self.gpus:
            return True
        return len(gpus) == len(self.uuids) and all(g.uuid == u for g, u in zip(gpus, self.uuids))

    def position(self, uuid: str) -> int | None:
        return self._position.get(uuid)

    def stale_mask(self, stale_nodes: frozenset[str]) -> np.ndarray | None:
        """Boolean mask of GPUs on `stale_nodes`, or None when no node is stale."""
        if not stale_nodes:
            return None
        numbers = [n for n, group in enumerate(self.nodes) if group.name in stale_nodes]
        return np.isin(self.node_number, numbers)

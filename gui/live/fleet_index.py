"""Lookups derived once per inventory, so per-poll code stays vectorised.

A source keeps the same GPUs from poll to poll; when the inventory does change (a GPU appears
or vanishes) every view rebuilds its layout from a new `FleetIndex`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from gpuops.core.telemetry import GpuInventory, read_only


def natural_key(text: str) -> tuple:
    """Sort key that orders "node-2" before "node-10", as people count."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text))


def normalize_pci_bus_id(text: str) -> str:
    """"00000000:17:00.0", "0000:17:00.0" and "17:00.0" all name the same device: keep
    bus:device.function, lower case."""
    parts = text.strip().lower().split(":")
    return ":".join(parts[-2:]) if len(parts) >= 2 else text.strip().lower()


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
        for column in (self.mem_total_bytes, self.power_limit_w, self.node_number):
            read_only(column)  # shared by every graded poll of this inventory, on several threads
        self._text_cache: dict[tuple[str, object], tuple[str, ...]] = {}
        self._array_cache: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.uuids)

    @cached_property
    def node_order(self) -> np.ndarray:
        """For each node of `nodes`, its rank in topology order: site, rack, then node name
        (naturally sorted), so a rack's nodes sit together whatever order the source used."""
        def key(n: int) -> tuple:
            first = self.gpus[self.nodes[n].gpu_positions[0]]
            return (natural_key(first.site or "~"), natural_key(first.rack or "~"), natural_key(self.nodes[n].name))

        order = sorted(range(len(self.nodes)), key=key)
        rank = np.empty(len(self.nodes), dtype=np.int64)
        rank[order] = np.arange(len(self.nodes))
        return rank

    def inventory_text(self, field: str, *, lower: bool = False) -> tuple[str, ...]:
        """One inventory field of every GPU as text ("" when unknown): site, rack, node, model,
        uuid, serial or pci; built once per field."""
        key = (field, lower)
        if key not in self._text_cache:
            attribute = {"model": "name", "pci": "pci_bus_id"}.get(field, field)
            texts = tuple(getattr(gpu, attribute) or "" for gpu in self.gpus)
            self._text_cache[key] = tuple(t.lower() for t in texts) if lower else texts
        return self._text_cache[key]

    def inventory_array(self, field: str) -> np.ndarray:
        """`inventory_text(field)` in lower case as a numpy string array, for vectorised matching."""
        if field not in self._array_cache:
            self._array_cache[field] = np.array(self.inventory_text(field, lower=True), dtype=str)
        return self._array_cache[field]

    @cached_property
    def _search_keys(self) -> dict[str, list[int]]:
        keys: dict[str, list[int]] = {}
        for i, gpu in enumerate(self.gpus):
            names = [gpu.uuid.lower(), gpu.node.lower()]
            if gpu.uuid.lower().startswith("gpu-"):
                names.append(gpu.uuid.lower()[4:])
            if gpu.serial:
                names.append(gpu.serial.lower())
            if gpu.pci_bus_id:
                names.append(normalize_pci_bus_id(gpu.pci_bus_id))
            for name in names:
                keys.setdefault(name, []).append(i)
        return keys

    def find(self, text: str) -> list[int]:
        """GPUs named by `text`: a UUID (with or without "GPU-", or a unique prefix), a serial,
        a PCI bus id (a GPU of that id on every node that has one) or a hostname (all its GPUs);
        `host/pci` (e.g. "node-7/17:00.0") narrows a PCI id to one node. [] when nothing matches."""
        query = text.strip().lower()
        if not query:
            return []
        keys = self._search_keys
        exact = keys.get(query) or keys.get(normalize_pci_bus_id(query))
        if exact:
            return sorted(set(exact))
        host, _, pci = query.partition("/")
        if pci:
            on_host = set(keys.get(host, ()))
            return sorted(on_host & set(keys.get(normalize_pci_bus_id(pci), ())))
        prefixed = [
            i for i, uuid in enumerate(self.uuids) if uuid.lower().startswith(query) or uuid.lower()[4:].startswith(query)
        ]
        return prefixed if len(prefixed) == 1 else []

    def matches(self, gpus: tuple[GpuInventory, ...]) -> bool:
        """True when `gpus` is the same fleet in the same order (cheap when it is the same tuple)."""
        if gpus is self.gpus:
            return True
        return len(gpus) == len(self.uuids) and all(g.uuid == u for g, u in zip(gpus, self.uuids, strict=True))

    def position(self, uuid: str) -> int | None:
        return self._position.get(uuid)

    def stale_mask(self, stale_nodes: frozenset[str]) -> np.ndarray | None:
        """Boolean mask of GPUs on `stale_nodes`, or None when no node is stale."""
        if not stale_nodes:
            return None
        numbers = [n for n, group in enumerate(self.nodes) if group.name in stale_nodes]
        return np.isin(self.node_number, numbers)

"""Where nodes stand: a CSV of node, site, rack, notes, applied to every GPU's inventory.

Exporters know host names, not datacenter halls. A topology file says which site and rack each
node is in, so that views can group the fleet. A node the file does not list goes to site
"unassigned" (rack None), so it shows up in one obvious place instead of vanishing.

To use it with any source: `TopologySource(open_source(spec), load_topology(path))`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from pathlib import Path

from gpuops.core.sources.base import TelemetrySource
from gpuops.core.telemetry import FleetSample, GpuInventory

UNASSIGNED = "unassigned"
COLUMNS = ("node", "site", "rack", "notes")
MAX_ROWS = 200_000


class TopologyError(ValueError):
    """The topology file cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Placement:
    site: str
    rack: str | None
    notes: str | None = None


class Topology:
    """node -> Placement, from a CSV with a header row naming at least node and site."""

    def __init__(self, placements: dict[str, Placement]) -> None:
        self._placements = placements
        self._applied: dict[GpuInventory, GpuInventory] = {}

    def __len__(self) -> int:
        return len(self._placements)

    def place(self, node: str) -> Placement:
        return self._placements.get(node, Placement(site=UNASSIGNED, rack=None))

    def apply(self, gpu: GpuInventory) -> GpuInventory:
        """`gpu` with the site and rack of its node (memoized: inventory rarely changes)."""
        applied = self._applied.get(gpu)
        if applied is None:
            if len(self._applied) > 4 * MAX_ROWS:
                self._applied.clear()
            placement = self.place(gpu.node)
            applied = self._applied[gpu] = replace(gpu, site=placement.site, rack=placement.rack)
        return applied

    def apply_to(self, sample: FleetSample) -> FleetSample:
        return replace(sample, gpus=tuple(self.apply(gpu) for gpu in sample.gpus))

    def group(self, gpus: tuple[GpuInventory, ...] | list[GpuInventory]) -> dict[tuple[str, str | None], list[int]]:
        """Positions of `gpus` by (site, rack), in first-seen order."""
        groups: dict[tuple[str, str | None], list[int]] = {}
        for i, gpu in enumerate(gpus):
            placement = self.place(gpu.node)
            groups.setdefault((placement.site, placement.rack), []).append(i)
        return groups


def parse_topology(text: str, where: str = "topology") -> Topology:
    """Parse CSV text; raises TopologyError naming the line of the first problem."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise TopologyError(f"{where} is empty: expected a header row {','.join(COLUMNS)}") from None
    names = [name.strip().lower() for name in header]
    missing = [column for column in ("node", "site") if column not in names]
    if missing:
        raise TopologyError(f"{where}, line 1: the header has no {missing[0]!r} column (expected {','.join(COLUMNS)})")
    column = {name: names.index(name) for name in COLUMNS if name in names}
    placements: dict[str, Placement] = {}
    try:
        for row in reader:
            line = reader.line_num
            if line > MAX_ROWS + 1:
                raise TopologyError(f"{where}: more than {MAX_ROWS} rows")
            if not any(cell.strip() for cell in row):
                continue

            def cell(name: str, row: list[str] = row) -> str | None:
                index = column.get(name)
                value = row[index].strip() if index is not None and index < len(row) else ""
                return value or None

            node, site = cell("node"), cell("site")
            if node is None:
                raise TopologyError(f"{where}, line {line}: the node is empty")
            if site is None:
                raise TopologyError(f"{where}, line {line}: node {node!r} has no site")
            if node in placements:
                raise TopologyError(f"{where}, line {line}: node {node!r} is listed twice")
            placements[node] = Placement(site=site, rack=cell("rack"), notes=cell("notes"))
    except csv.Error as exc:
        raise TopologyError(f"{where}, line {reader.line_num}: {exc}") from None
    return Topology(placements)


def load_topology(path: str | Path) -> Topology:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TopologyError(f"cannot read topology file {path}: {exc}") from None
    return parse_topology(text, where=f"topology file {path}")


class TopologySource(TelemetrySource):
    """Any source, with the topology applied to every sample's inventory."""

    def __init__(self, inner: TelemetrySource, topology: Topology) -> None:
        self.inner = inner
        self.topology = topology
        self.name = inner.name
        self.simulated = inner.simulated
        self.notice = inner.notice

    def poll(self) -> FleetSample:
        return self.topology.apply_to(self.inner.poll())

    def interrupt(self) -> None:
        self.inner.interrupt()

    def close(self) -> None:
        self.inner.close()

"""GpuInventory <-> rows of the gpus table (the same fields, `index` stored as gpu_index)."""

from __future__ import annotations

from dataclasses import fields

from gpuops.core.telemetry import GpuInventory

#: Inventory fields stored as gpus columns of the same name (uuid, index and node are handled apart).
DETAIL_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(GpuInventory) if f.name not in ("uuid", "index", "node"))


def detail_values(gpu: GpuInventory) -> tuple:
    values = []
    for name in DETAIL_FIELDS:
        value = getattr(gpu, name)
        values.append(int(value) if isinstance(value, bool) else value)
    return tuple(values)


def inventory_from_row(uuid: str, index: int, node: str, details: tuple) -> GpuInventory:
    kwargs = dict(zip(DETAIL_FIELDS, details, strict=True))
    if kwargs.get("mig_mode") is not None:
        kwargs["mig_mode"] = bool(kwargs["mig_mode"])
    return GpuInventory(uuid=uuid, index=index, node=node, **kwargs)


SELECT_INVENTORY = (
    "SELECT gpus.id, gpus.uuid, gpus.gpu_index, nodes.name, "
    + ", ".join(f"gpus.{name}" for name in DETAIL_FIELDS)
    + " FROM gpus JOIN nodes ON nodes.id = gpus.node_id"
)

"""A snapshot of the fleet at one moment: every GPU with its inventory, current sample, health,
holder (customer and contract) and active alerts, for the `gpuops export` snapshot formats and
the console's File → Export snapshot.

The per-GPU rows extend `FleetSample.records()` (the `gpuops status --json` records), so a
snapshot and a status document never disagree about a GPU. Allocations and alerts live in the
history database; when there is none (or it predates them), the snapshot says "not available"
(None) rather than "none" (an empty list).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from gpuops.core import jsontext
from gpuops.core.alerts.model import Alert
from gpuops.core.allocations.index import AllocationIndex, Holder
from gpuops.core.condition import Condition, conditions, count_conditions
from gpuops.core.csv_cells import write_rows
from gpuops.core.health import FleetHealth, HealthModel
from gpuops.core.telemetry import SAMPLE_METRICS, FleetSample
from gpuops.core.timefmt import file_stamp

log = logging.getLogger("gpuops.snapshot")

#: The series plotted for a GPU, with their titles and units (the console's detail plots).
PLOT_SERIES: tuple[tuple[str, str, str], ...] = (
    ("util_gpu_pct", "Utilization", "%"),
    ("mem_used_gib", "Memory used", "GiB"),
    ("temp_c", "Temperature", "°C"),
    ("power_w", "Power", "W"),
)
#: How many GPUs a report plots when none are chosen: the least healthy first.
DEFAULT_PLOTTED_GPUS = 4
#: How far back the plots of a snapshot read from the history database.
PLOT_SPAN_S = 3600.0

_INVENTORY_COLUMNS = (
    "uuid", "index", "node", "name", "serial", "pci_bus_id", "driver_version", "nvml_version", "cuda_version",
    "mig_mode", "architecture", "vbios_version", "slowdown_temp_c", "site", "rack", "state",
)
#: The CSV header, in order; the JSON rows have the same keys with lists kept as lists.
CSV_COLUMNS: tuple[str, ...] = (
    *_INVENTORY_COLUMNS, *SAMPLE_METRICS, "throttle_reasons", "process_count",
    "health", "health_reason", "customer", "contract", "alert_count", "alerts",
)


@dataclass(frozen=True)
class GpuPlot:
    """Recent history of one GPU: timestamps (UTC epoch s) and one array per PLOT_SERIES name."""

    uuid: str
    ts: np.ndarray
    series: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Snapshot:
    """Everything an export shows. `holders` maps GPU UUID to who holds it now (None: no
    allocation data); `alerts` are the active alerts (None: no alert data)."""

    source: str
    simulated: bool
    sample: FleetSample
    health: FleetHealth
    holders: Mapping[str, Holder] | None = None
    alerts: tuple[Alert, ...] | None = None
    plots: tuple[GpuPlot, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def collected_at(self) -> float:
        return self.sample.ts

    @property
    def condition(self) -> np.ndarray:
        """Each GPU's condition (`core.condition`), the words the console's grid and KPIs use."""
        stale = np.fromiter((g.node in self.sample.stale_nodes for g in self.sample.gpus), dtype=bool, count=len(self.sample))
        return conditions(self.health.level, self.sample.state, stale)


def make_snapshot(
    source: str,
    simulated: bool,
    sample: FleetSample,
    *,
    health: FleetHealth | None = None,
    holders: Mapping[str, Holder] | None = None,
    alerts: Iterable[Alert] | None = None,
    plots: Sequence[GpuPlot] = (),
    notes: Sequence[str] = (),
) -> Snapshot:
    """A snapshot; health is graded from `sample` unless the caller already has it."""
    return Snapshot(
        source=source,
        simulated=simulated,
        sample=sample,
        health=HealthModel().assess(sample) if health is None else health,
        holders=holders,
        alerts=None if alerts is None else tuple(a for a in alerts if a.active),
        plots=tuple(plots),
        notes=tuple(notes),
    )


def default_plotted(snapshot_health: FleetHealth, sample: FleetSample, limit: int = DEFAULT_PLOTTED_GPUS) -> list[str]:
    """The GPUs worth plotting when nobody chose: the least healthy, then in inventory order."""
    order = np.argsort(-snapshot_health.level.astype(np.int16), kind="stable")[:limit]
    return [sample.gpus[int(i)].uuid for i in order]


def _alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id, "rule": alert.rule, "severity": alert.severity.label, "state": alert.state.value,
        "summary": alert.summary, "started_at": alert.started_at, "acknowledged": alert.acknowledged_by is not None,
    }


def alerts_by_gpu(alerts: Iterable[Alert], sample: FleetSample) -> dict[str, list[Alert]]:
    """Each GPU's active alerts: its own, and those of its node (a node alert concerns every GPU on it)."""
    by_node: dict[str, list[str]] = {}
    for gpu in sample.gpus:
        by_node.setdefault(gpu.node, []).append(gpu.uuid)
    found: dict[str, list[Alert]] = {}
    for alert in alerts:
        if alert.gpu_uuid is not None:
            targets = [alert.gpu_uuid]
        elif alert.node is not None:
            targets = by_node.get(alert.node, [])
        else:
            targets = []
        for uuid in targets:
            found.setdefault(uuid, []).append(alert)
    return found


def gpu_rows(snapshot: Snapshot) -> list[dict[str, Any]]:
    """One JSON-ready dict per GPU: the status record plus health, holder and alerts."""
    sample, health, condition = snapshot.sample, snapshot.health, snapshot.condition
    per_gpu = None if snapshot.alerts is None else alerts_by_gpu(snapshot.alerts, sample)
    rows = sample.records()
    for i, row in enumerate(rows):
        uuid = row["uuid"]
        row["health"] = Condition(int(condition[i])).label
        row["health_reason"] = health.reasons[i] or None
        holder = None if snapshot.holders is None else snapshot.holders.get(uuid)
        row["customer"] = None if holder is None else holder.customer
        row["contract"] = None if holder is None else holder.contract
        row["alerts"] = None if per_gpu is None else [_alert_json(a) for a in per_gpu.get(uuid, ())]
    return rows


def snapshot_document(snapshot: Snapshot) -> dict[str, Any]:
    """{"collected_at", "source", "simulated", "allocations_available", "alerts_available",
    "errors", "gpus": [...]}: the JSON snapshot (schema in README.md)."""
    return {
        "collected_at": snapshot.collected_at,
        "source": snapshot.source,
        "simulated": snapshot.simulated,
        "allocations_available": snapshot.holders is not None,
        "alerts_available": snapshot.alerts is not None,
        "errors": list(snapshot.sample.errors),
        "gpus": gpu_rows(snapshot),
    }


def csv_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON row flattened for CSV: lists become counts or "; "-joined text (cells are made by
    core/csv_cells.py: None empty, text escaped for spreadsheets)."""
    flat = {name: row[name] for name in (*_INVENTORY_COLUMNS, *SAMPLE_METRICS, "health", "health_reason", "customer", "contract")}
    reasons = row["throttle_reasons"]
    flat["throttle_reasons"] = None if reasons is None else "|".join(reasons)
    flat["process_count"] = len(row["processes"])
    alerts = row["alerts"]
    flat["alert_count"] = None if alerts is None else len(alerts)
    flat["alerts"] = None if alerts is None else "; ".join(f"{a['severity']} {a['rule']}: {a['summary']}" for a in alerts)
    return flat


def write_snapshot_csv(snapshot: Snapshot, out: IO[str]) -> int:
    """Write the CSV (header, then one row per GPU); return the number of GPU rows."""
    return write_rows(out, CSV_COLUMNS, ([flat[c] for c in CSV_COLUMNS] for flat in map(csv_row, gpu_rows(snapshot))))


def write_snapshot_json(snapshot: Snapshot, out: IO[str]) -> int:
    document = snapshot_document(snapshot)
    out.write(jsontext.dumps(document, indent=1) + "\n")
    return len(document["gpus"])


def default_file_name(extension: str, now: float | None = None) -> str:
    """gpuops-snapshot-YYYYmmdd-HHMMSS.<extension>, in local time."""
    return f"gpuops-snapshot-{file_stamp(time.time() if now is None else now)}.{extension}"


# --- gathering a snapshot from a source and/or the history database ---------------------------


class NoSnapshotData(Exception):
    """Nothing to take a snapshot of (one readable line)."""


@dataclass
class HistoryExtras:
    """What the history database adds to a live sample: holders, alerts, plots (each None when
    the database cannot tell), and lines explaining what is missing."""

    holders: dict[str, Holder] | None = None
    alerts: list[Alert] | None = None
    notes: list[str] = field(default_factory=list)


def holders_at(index: AllocationIndex, uuids: Iterable[str], now: float) -> dict[str, Holder]:
    """Who holds each of `uuids` at `now` (UTC epoch s); unallocated GPUs are left out."""
    now_ms = round(now * 1000)
    return {uuid: h for uuid in uuids if (h := index.holder(uuid, now_ms)) is not None}


def read_history_extras(db_path: Path, uuids: Sequence[str], now: float) -> HistoryExtras:
    import sqlite3

    from gpuops.core.alerts.persistence import AlertStore
    from gpuops.core.allocations.repository import AllocationRepository
    from gpuops.core.store.connection import open_read_only
    from gpuops.core.store.errors import StoreError

    extras = HistoryExtras()
    try:
        conn, _layout = open_read_only(db_path)
    except StoreError as exc:
        extras.notes.append(f"allocations and alerts not available: {exc}")
        return extras
    try:
        try:
            extras.holders = holders_at(AllocationRepository(conn, read_only=True).index(), uuids, now)
        except sqlite3.DatabaseError as exc:
            extras.notes.append(f"allocations not available: {exc}")
        try:
            extras.alerts = AlertStore(conn, read_only=True).active_alerts()
        except sqlite3.DatabaseError as exc:
            extras.notes.append(f"alerts not available: {exc}")
    finally:
        conn.close()
    return extras


def _read_plots(db_path: Path, uuids: Sequence[str], now: float) -> list[GpuPlot]:
    from gpuops.core.store.errors import StoreError
    from gpuops.core.store.queries import HistoryReader

    plots = []
    try:
        with HistoryReader(db_path, read_only=True) as reader:
            for uuid in uuids:
                try:
                    series = {
                        name: reader.series(
                            uuid, "mem_used_bytes" if name == "mem_used_gib" else name, now - PLOT_SPAN_S, now, max_points=400
                        )
                        for name, _, _ in PLOT_SERIES
                    }
                except StoreError:
                    continue  # a GPU the history has not recorded yet
                ts = series["util_gpu_pct"].ts
                values = {name: np.asarray(s.avg, dtype=np.float64) for name, s in series.items() if len(s) == len(ts)}
                if "mem_used_gib" in values:
                    values["mem_used_gib"] = values["mem_used_gib"] / float(1 << 30)
                if len(ts) and len(values) == len(PLOT_SERIES):
                    plots.append(GpuPlot(uuid, np.asarray(ts, dtype=np.float64), values))
    except StoreError as exc:
        log.info("no plots: %s", exc)
    return plots


def collect_snapshot(
    *,
    source_spec: str | None,
    db_path: Path | None,
    seed: int = 0,
    topology: Path | None = None,
    plot_uuids: Sequence[str] | None = None,
) -> Snapshot:
    """Poll `source_spec` once (or, without one, read the latest fleet from `db_path`), and add
    allocations, active alerts and recent plots from `db_path` when it exists.

    Raises SourceError / StoreError / NoSnapshotData with one readable line."""
    from gpuops.core.store.queries import HistoryReader

    now = time.time()
    if source_spec is not None:
        from gpuops.core.sources.factory import open_source

        source = open_source(source_spec, seed=seed, topology=topology)
        try:
            sample = source.poll()
            name, simulated = source.name, source.simulated
        finally:
            source.close()
    else:
        if db_path is None:
            raise NoSnapshotData("nothing to take a snapshot of: give --source, or --db with recorded history")
        with HistoryReader(db_path, read_only=True) as reader:
            found = reader.fleet_at(now)
        if found is None:
            raise NoSnapshotData(f"the history {db_path} has no fleet data from the last minutes: is `gpuops collect` running?")
        sample, name, simulated = found, f"history:{db_path}", False
    health = HealthModel().assess(sample)
    if db_path is None or not Path(db_path).exists():
        extras = HistoryExtras(notes=["allocations and alerts not available: no history database"])
        plots: list[GpuPlot] = []
    else:
        extras = read_history_extras(Path(db_path), sample.uuids, now)
        wanted = list(plot_uuids) if plot_uuids else default_plotted(health, sample)
        plots = _read_plots(Path(db_path), wanted, now)
    return make_snapshot(
        name, simulated, sample, health=health, holders=extras.holders, alerts=extras.alerts, plots=plots, notes=extras.notes
    )


def health_counts(snapshot: Snapshot) -> dict[str, int]:
    """GPUs per condition, by label (every GPU counted once, as the console's KPI strip does)."""
    return {condition.label: count for condition, count in count_conditions(snapshot.condition).items()}


@dataclass(frozen=True)
class CustomerNow:
    """One customer's GPUs at the snapshot: held, busy among them, their mean utilization and power."""

    customer: str
    contracts: tuple[str, ...]
    gpus: int
    busy: int
    util_mean_pct: float | None
    power_w: float | None


def customers_now(snapshot: Snapshot) -> list[CustomerNow] | None:
    """Per customer, what they hold and use now, by GPUs held (most first); None without allocation data."""
    from gpuops.core.allocations.busy import busy_mask

    if snapshot.holders is None:
        return None
    sample = snapshot.sample
    busy, _, _ = busy_mask(sample)
    positions: dict[str, list[int]] = {}
    contracts: dict[str, set[str]] = {}
    for i, gpu in enumerate(sample.gpus):
        holder = snapshot.holders.get(gpu.uuid)
        if holder is not None:
            positions.setdefault(holder.customer, []).append(i)
            contracts.setdefault(holder.customer, set()).add(holder.contract)

    def mean(values: np.ndarray) -> float | None:
        finite = values[np.isfinite(values)]
        return float(finite.mean()) if finite.size else None

    def total(values: np.ndarray) -> float | None:
        finite = values[np.isfinite(values)]
        return float(finite.sum()) if finite.size else None

    rows = []
    for customer, held in positions.items():
        at = np.array(held)
        rows.append(CustomerNow(
            customer=customer,
            contracts=tuple(sorted(contracts[customer])),
            gpus=len(held),
            busy=int(np.count_nonzero(busy[at])),
            util_mean_pct=mean(sample.metrics["util_gpu_pct"][at]),
            power_w=total(sample.metrics["power_w"][at]),
        ))
    rows.sort(key=lambda row: (-row.gpus, row.customer))
    return rows

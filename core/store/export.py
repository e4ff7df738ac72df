"""History as a table for spreadsheets and scripts: CSV, or the same rows as JSON.

CSV: a header line, then one row per GPU per timestamp, ordered by GPU (node, index) then time:

    ts,uuid,node,<one column per metric>

`ts` is ISO 8601 UTC with milliseconds (2026-01-31T12:00:00.000Z). At raw resolution a metric
column is named like the metric (util_gpu_pct, power_w, ...); at 1m/1h resolution each metric has
one column per rollup statistic: <metric>_min, _avg, _max for gauges, <metric>_last for counters
(energy_j, ECC and remap counts) and <metric>_or for throttle_reasons_mask. A value that was not
supported or not read is an empty cell.

JSON: one object

    {"format": "gpuops-history", "version": 1, "resolution": "raw", "start": "<ISO>", "end": "<ISO>",
     "columns": ["ts", "uuid", "node", ...], "rows": [{"ts": ..., "uuid": ..., "node": ..., ...}, ...]}

whose rows hold exactly the CSV's cells, with null for an empty cell and numbers as numbers.
Rows are streamed, so memory stays bounded whatever the range.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO

import numpy as np

from gpuops.core import jsontext
from gpuops.core.csv_cells import write_rows
from gpuops.core.store.columns import STATS_OF_KIND
from gpuops.core.store.errors import StoreError
from gpuops.core.store.layout import StoreLayout
from gpuops.core.store.queries import RESOLUTIONS, GpuRecord, HistoryTable
from gpuops.core.telemetry import SAMPLE_METRICS
from gpuops.core.timefmt import iso_utc

EXPORT_FORMAT = "gpuops-history"
EXPORT_VERSION = 1
# One GPU is read this much time at a time, so a long export never holds a long range in memory.
_SLICE_S = 6 * 3600.0


class HistoryRows(Protocol):
    """What an export reads: a HistoryReader, or core.sources.prometheus_history's PeriodView."""

    @property
    def path(self) -> object: ...

    @property
    def layout(self) -> StoreLayout: ...

    def gpus(self) -> list[GpuRecord]: ...

    def table(self, gpu_uuid: str, start: float, end: float, resolution: str, metrics: Sequence[str]) -> HistoryTable: ...


@dataclass(frozen=True)
class ExportRequest:
    start: float
    end: float
    resolution: str = "raw"
    gpus: Sequence[str] | None = None  # UUIDs; None = every GPU
    metrics: Sequence[str] | None = None  # None = every metric


def _decimals(resolution: float) -> int:
    return max(0, -math.floor(math.log10(resolution) + 1e-9))


class _Table:
    """The columns of one export and how each value is written."""

    def __init__(self, reader: HistoryRows, request: ExportRequest) -> None:
        if request.resolution not in RESOLUTIONS:
            raise StoreError(f"unknown resolution {request.resolution!r}: expected one of {', '.join(RESOLUTIONS)}")
        metrics = list(request.metrics or SAMPLE_METRICS)
        unknown = [m for m in metrics if m not in SAMPLE_METRICS]
        if unknown:
            raise StoreError(f"unknown metric(s) {', '.join(unknown)}: expected some of {', '.join(SAMPLE_METRICS)}")
        self.metrics = metrics
        self.value_columns: list[tuple[str, int]] = []  # (column name, decimals)
        for metric in metrics:
            spec = reader.layout.spec(metric)
            decimals = _decimals(spec.resolution)
            if request.resolution == "raw":
                self.value_columns.append((metric, decimals))
            else:
                self.value_columns.extend((f"{metric}_{stat.value}", decimals) for stat in STATS_OF_KIND[spec.kind])
        self.header = ["ts", "uuid", "node", *(name for name, _ in self.value_columns)]


def _cells(values: np.ndarray, decimals: int) -> list[int | float | None]:
    if decimals == 0:
        return [None if math.isnan(v) else int(round(v)) for v in values.tolist()]
    return [None if math.isnan(v) else round(v, decimals) for v in values.tolist()]


def _rows(reader: HistoryRows, request: ExportRequest, table: _Table) -> Iterator[list]:
    records = reader.gpus()
    if request.gpus is not None:
        known = {r.uuid for r in records}
        missing = [u for u in request.gpus if u not in known]
        if missing:
            raise StoreError(f"no GPU {', '.join(missing)} in the history {reader.path}")
        wanted = set(request.gpus)
        records = [r for r in records if r.uuid in wanted]
    for record in records:
        start = request.start
        while start < request.end:
            # Slice ends on multiples of the slice, so no rollup bucket straddles two slices.
            end = min(start - start % _SLICE_S + _SLICE_S, request.end)
            piece = reader.table(record.uuid, start, end, request.resolution, table.metrics)
            columns = [_cells(piece.columns[name], decimals) for name, decimals in table.value_columns]
            for i, ts in enumerate(piece.ts.tolist()):
                yield [iso_utc(ts), record.uuid, record.node, *(column[i] for column in columns)]
            start = end


def write_csv(reader: HistoryRows, request: ExportRequest, out: TextIO) -> int:
    """Write the CSV document; returns the number of data rows."""
    table = _Table(reader, request)
    return write_rows(out, table.header, _rows(reader, request, table))


def write_json(reader: HistoryRows, request: ExportRequest, out: TextIO) -> int:
    """Write the JSON document; returns the number of rows."""
    table = _Table(reader, request)
    head = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "resolution": request.resolution,
        "start": iso_utc(request.start),
        "end": iso_utc(request.end),
        "columns": table.header,
    }
    # The object is written by hand around the rows so that they can be streamed one by one.
    out.write(jsontext.dumps(head)[:-1] + ', "rows": [')
    count = 0
    for row in _rows(reader, request, table):
        out.write(("\n" if count == 0 else ",\n") + jsontext.dumps(dict(zip(table.header, row, strict=True))))
        count += 1
    out.write("\n]}\n")
    return count

"""History read from Prometheus (or Thanos/Mimir behind its API) instead of the local database.

The same spec, credentials and TLS options as the `prometheus:` source (PrometheusSpec), the same
HTTP client with its deadlines, and dcgm-exporter's metric names and scales (core.dcgm_schema).
What it answers, shaped like the local history's answers so that exports, usage and plots take
either:

- `table(uuid, start, end, resolution, metrics)`: one GPU's rows over [start, end). Raw rows are
  the samples Prometheus stored (a range selector, exact values at their scrape times); 1m/1h
  rows are `query_range` at that step with `*_over_time` over each bucket, so a bucket without a
  sample is no row and a gap stays a gap (never Prometheus' 5-minute look-back fill). A bitmask's
  OR has no PromQL: it is taken from the raw samples of its buckets.
- `series(uuid, metric, start, end, max_points)`: one GPU's metric in at most `max_points`
  points (`query_range` with step = span / max_points, at least MIN_STEP_S).
- `fleet_series(...)`: the fleet figures of the trends view, aggregated by Prometheus per bucket.
- `fleet_at(t)`: the fleet at a past instant, the `prometheus:` source's poll evaluated at `t`.
- `events(...)`: XIDs, losses and recoveries to the minute, from the agent's and dcgm-exporter's series.
- `gpus()`, `period()`, `time_range()`: which GPUs and which span, from Prometheus' series index
  (`/api/v1/series`, bisected for the oldest and newest data).
- `usage_history()`: per-minute buckets and lost/faulty intervals for `gpuops usage`.

MIG instances fold into their GPU as in the live source: framebuffer fields add up, activity
fields average, the rest is the device's own value (max over instances, which repeat it). DCGM's
blank sentinels are no reading (None), as everywhere.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import numpy as np

from gpuops.core import dcgm_schema as dcgm
from gpuops.core.allocations.usage_history import XID_FAULTY_MS, Buckets, Request, _merge
from gpuops.core.health import Health, xid_severity
from gpuops.core.sources.base import SourceError
from gpuops.core.sources.dcgm_fleet import gpu_labels
from gpuops.core.sources.http_fetch import FetchError, HttpFetcher
from gpuops.core.sources.prometheus import PrometheusSource, PrometheusSpec, _api_error, api_result
from gpuops.core.store.columns import STATS_OF_KIND, Kind, Stat
from gpuops.core.store.fleet import FLEET_METRICS
from gpuops.core.store.layout import StoreLayout
from gpuops.core.store.queries import RESOLUTIONS, GpuRecord, HistoryEvent, HistoryTable, Series
from gpuops.core.telemetry import SAMPLE_METRICS, FleetSample

#: Prometheus refuses a query_range of more than 11,000 points per series; we stay far under.
MAX_POINTS = 2000
#: Plot buckets are never shorter than this: a shorter step than the scrape interval would show
#: buckets without a sample as gaps that are not there.
MIN_STEP_S = 60.0
#: GPUs per usage query (each answers up to MAX_POINTS points of ~10 columns per GPU).
USAGE_GPUS_PER_QUERY = 16
MINUTE_MS = 60_000
#: How far back the console offers Prometheus' history (replay span, the oldest plotted range).
HISTORY_SPAN_S = 30 * 86_400.0
STEP_OF_RESOLUTION = {"1m": 60.0, "1h": 3600.0}
_COLUMN = "gpuops_column"
_FIELD_OF_METRIC: dict[str, dcgm.DcgmField] = {f.metric: f for f in dcgm.FIELDS if f.metric}
_FIELD_SLOWDOWN = dcgm.FIELDS_BY_NAME[dcgm.SLOWDOWN_TEMP]
_OVER_TIME = {Stat.MIN: "min_over_time", Stat.AVG: "avg_over_time", Stat.MAX: "max_over_time", Stat.LAST: "last_over_time"}
# Series every GPU has, whichever exporter serves it: they say which GPUs the history holds.
_PRESENCE = ("DCGM_FI_DEV_GPU_UTIL", dcgm.FB_USED, "DCGM_FI_DEV_GPU_TEMP", dcgm.GPUOPS_GPU_INFO)
_PRESENCE_NAMES = "|".join(_PRESENCE)


def _quote(value: str) -> str:
    return json.dumps(value)


def _seconds(value: float) -> str:
    """A PromQL duration in whole milliseconds."""
    return f"{max(1, round(value * 1000))}ms"


def _fold(field: dcgm.DcgmField) -> str:
    """How the MIG instances' values of `field` make the GPU's."""
    if field.name in dcgm.MIG_ADDITIVE_FIELDS:
        return "sum"
    return "avg" if field.name in dcgm.MIG_MEAN_FIELDS else "max"


def _names(field: dcgm.DcgmField) -> str:
    return "|".join((field.name, *field.aliases))


class PrometheusHistory:
    """Reads history from one Prometheus; the module docstring says what. One caller at a time
    (the GUI's history loader owns one on its worker thread)."""

    def __init__(self, spec: PrometheusSpec) -> None:
        self.spec = spec
        self.path = f"prometheus:{spec.base_url}"  # what errors name, like the database path
        self.layout = StoreLayout()
        self._fetcher = HttpFetcher(spec.http, timeout_s=spec.timeout_s)
        self._source: PrometheusSource | None = None

    @classmethod
    def from_spec(cls, spec: str, environ: Mapping[str, str] | None = None) -> PrometheusHistory:
        return cls(PrometheusSpec.parse(spec, environ))

    def close(self) -> None:
        self._fetcher.close()
        if self._source is not None:
            self._source.close()

    def __enter__(self) -> PrometheusHistory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the API ---------------------------------------------------------------------------------

    def _api(self, endpoint: str, params: dict[str, str], result_type: str) -> list[dict[str, Any]]:
        """POST one query (a long PromQL expression does not fit a URL); its result list."""
        url = f"{self.spec.base_url}/api/v1/{endpoint}"
        try:
            body = self._fetcher.post(url, urlencode(params).encode(), "application/x-www-form-urlencoded")
        except FetchError as exc:
            raise SourceError(f"Prometheus at {self.spec.base_url}: {_api_error(exc)}") from None
        return api_result(body, result_type, self.spec.base_url, params["query"])

    def series_in(self, start: float, end: float, selector: str) -> list[dict[str, str]]:
        """Label sets of the series matching `selector` with samples in [start, end) (/api/v1/series)."""
        url = f"{self.spec.base_url}/api/v1/series"
        params = {"match[]": selector, "start": f"{start:.3f}", "end": f"{end - 0.001:.3f}"}
        try:
            body = self._fetcher.post(url, urlencode(params).encode(), "application/x-www-form-urlencoded")
            document = json.loads(body)
            if document.get("status") != "success" or not isinstance(document.get("data"), list):
                raise ValueError(document.get("error") or "status is not success")
            return document["data"]
        except FetchError as exc:
            raise SourceError(f"Prometheus at {self.spec.base_url}: {_api_error(exc)}") from None
        except (ValueError, TypeError, AttributeError) as exc:
            raise SourceError(f"Prometheus at {self.spec.base_url}: unexpected series answer for {selector}: {exc}") from None

    def instant(self, promql: str, at: float, result_type: str = "vector") -> list[dict[str, Any]]:
        return self._api("query", {"query": promql, "time": f"{at:.3f}"}, result_type)

    def range(self, promql: str, start: float, end: float, step_s: float) -> list[dict[str, Any]]:
        """query_range at `step_s`; refuses a request of more than MAX_POINTS points per series."""
        points = math.floor((end - start) / step_s + 1e-9) + 1
        if points > MAX_POINTS:
            raise ValueError(f"{points} points per series over the asked range; at most {MAX_POINTS}")
        return self._api(
            "query_range", {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s:.3f}"}, "matrix"
        )

    def selector(self, *matchers: str) -> str:
        return "{" + ",".join(m for m in (self.spec.selector, *matchers) if m) + "}"

    def over_time(self, fn: str, names: Sequence[str], step: float, *matchers: str) -> str:
        """fn(name{matchers}[step]) of each name, joined by `or`: a function drops the metric name,
        so one selector of several names would give one GPU twice the same labels."""
        parts = [f"{fn}({self.selector(f'__name__={_quote(name)}', *matchers)}[{_seconds(step)}])" for name in names]
        return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"

    # -- which GPUs ------------------------------------------------------------------------------

    def gpus(self, start: float, end: float) -> list[GpuRecord]:
        """GPUs with series in [start, end), by node and index, from Prometheus' series index
        (exact to its blocks: a GPU may be listed that has no sample in the range, never missed)."""
        seen: dict[str, dict[str, str]] = {}
        for labels in self.series_in(start, end, self._presence()):
            if labels.get(dcgm.LABEL_UUID):
                seen.setdefault(labels[dcgm.LABEL_UUID], labels)
        records = []
        for uuid, labels in seen.items():
            gpu = gpu_labels(labels, labels.get("instance", "").rsplit(":", 1)[0] or "unknown")
            records.append((gpu.node, gpu.index, GpuRecord(uuid, gpu.node, gpu.name, None, None)))
        return [record for _, _, record in sorted(records, key=lambda r: (r[0], r[1], r[2].uuid))]

    def earliest(self, start: float, end: float) -> float:
        """A time at or before the first GPU sample in [start, end), to the hour (bisecting the
        series index): `start` itself when the data begins there; `end` when there is none."""
        if not self.series_in(start, end, self._presence()):
            return end
        lo, hi = start, end  # no series in [start, lo); some in [start, hi)
        while hi - lo > 3600:
            mid = (lo + hi) / 2
            if self.series_in(start, mid, self._presence()):
                hi = mid
            else:
                lo = mid
        return lo

    def _presence(self) -> str:
        return self.selector(f"__name__=~{_quote(_PRESENCE_NAMES)}")

    def period(self, start: float, end: float) -> PeriodView:
        """The history over [start, end) as core.store.export reads a HistoryReader: its GPUs,
        and `start` moved up to the oldest sample (`--since 999d` walks no empty years)."""
        return PeriodView(self, self.earliest(start, end), self.gpus(start, end))

    # -- one GPU's rows --------------------------------------------------------------------------

    def table(
        self, uuid: str, start: float, end: float, resolution: str = "raw", metrics: Sequence[str] = SAMPLE_METRICS
    ) -> HistoryTable:
        """Rows of one GPU over [start, end) at `resolution` (module docstring), columns named as
        the local history's `HistoryReader.table`."""
        if resolution not in RESOLUTIONS:
            raise ValueError(f"unknown resolution {resolution!r}: expected one of {', '.join(RESOLUTIONS)}")
        unknown = [m for m in metrics if m not in _FIELD_OF_METRIC]
        if unknown:
            raise ValueError(f"no dcgm-exporter field for {', '.join(unknown)}")
        if resolution == "raw":
            return self._raw_table(uuid, start, end, metrics)
        return self._rollup_table(uuid, start, end, STEP_OF_RESOLUTION[resolution], metrics)

    def _raw_samples(self, uuid: str, start: float, end: float, fields: Iterable[dcgm.DcgmField]) -> dict[str, list]:
        """Stored samples in [start, end) of one GPU, per DCGM name: [(ts, values)] per series."""
        names = "|".join(_names(f) for f in fields)
        promql = self.selector(f'__name__=~"{names}"', f"{dcgm.LABEL_UUID}={_quote(uuid)}") + f"[{_seconds(end - start)}]"
        by_name: dict[str, list] = {}
        for row in self.instant(promql, end - 0.001, "matrix"):
            field = dcgm.FIELDS_BY_NAME.get(row["metric"].get("__name__", ""))
            if field is None or not row["values"]:
                continue
            points = np.array(row["values"], dtype=object)
            by_name.setdefault(field.name, []).append((points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)))
        return by_name

    def _raw_table(self, uuid: str, start: float, end: float, metrics: Sequence[str]) -> HistoryTable:
        fields = [_FIELD_OF_METRIC[m] for m in metrics]
        by_name = self._raw_samples(uuid, start, end, fields)
        stamps = [ts for parts in by_name.values() for ts, _ in parts]
        ts = np.unique(np.concatenate(stamps)) if stamps else np.empty(0)
        columns = {}
        for field in fields:
            columns[field.metric] = _fold_at(ts, by_name.get(field.name, []), field)
        return HistoryTable(ts, columns)

    def _rollup_table(self, uuid: str, start: float, end: float, step: float, metrics: Sequence[str]) -> HistoryTable:
        """Rollup rows: one query for every min/avg/max/last column (`*_over_time` per bucket),
        and a bitmask's OR from its raw samples (PromQL has no bitwise OR over time)."""
        expressions: dict[str, tuple[dcgm.DcgmField, str]] = {}
        bitmasks: list[dcgm.DcgmField] = []
        names: list[str] = []
        for metric in metrics:
            field = _FIELD_OF_METRIC[metric]
            for stat in STATS_OF_KIND[self.layout.spec(metric).kind]:
                names.append(f"{metric}_{stat.value}")
                if stat is Stat.OR:
                    bitmasks.append(field)
                else:
                    expressions[names[-1]] = (field, _OVER_TIME[stat])
        buckets, found = self._bucketed(expressions, start, end, step, f"{dcgm.LABEL_UUID}={_quote(uuid)}", by=())
        columns = {name: found.get(("", name), np.full(len(buckets), np.nan)) for name in expressions}
        for field in bitmasks:
            columns[f"{field.metric}_{Stat.OR.value}"] = self._bitmask_or(uuid, field, buckets, start, end, step)
        has_row = np.zeros(len(buckets), dtype=bool)
        for values in columns.values():
            has_row |= ~np.isnan(values)
        return HistoryTable(buckets[has_row], {name: columns[name][has_row] for name in names})

    def _bucketed(
        self, expressions: Mapping[str, tuple[dcgm.DcgmField, str]], start: float, end: float, step: float, matcher: str,
        by: Sequence[str],
    ) -> tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]:
        """Each expression `(field, fn)` as fn(field[step]) per bucket of `step` aligned on multiples
        of it, over [start, end); folded per `by` (and MIG instance first); in MAX_POINTS windows.
        Returns the bucket starts and, per (joined `by` label values, column), its values (NaN: none)."""
        buckets = _bucket_starts(start, end, step)
        out: dict[tuple[str, str], np.ndarray] = {}
        group = ", ".join(by)
        parts = []
        for column, (field, fn) in expressions.items():
            inner = self.over_time(fn, (field.name, *field.aliases), step, matcher)
            per_instance = f"max by ({', '.join((*by, dcgm.LABEL_MIG_ID))}) ({inner})"
            parts.append(f'label_replace({_fold(field)} by ({group}) ({per_instance}), "{_COLUMN}", "{column}", "", "")')
        promql = " or ".join(parts)
        fields = {column: field for column, (field, _) in expressions.items()}
        for row in self._bucket_rows(promql, buckets, step):
            labels = row["metric"]
            of = fields.get(labels.get(_COLUMN, ""))
            if of is None:
                continue
            key = ("\x1f".join(labels.get(name, "") for name in by), labels[_COLUMN])
            values = out.setdefault(key, np.full(len(buckets), np.nan))
            at, raw = _bucket_points(row, buckets, step)
            values[at] = np.where(dcgm.dcgm_blank_mask(raw, of.kind), np.nan, raw * of.scale)
        return buckets, out

    def _bucket_rows(self, promql: str, buckets: np.ndarray, step: float) -> Iterator[dict[str, Any]]:
        """`promql` evaluated at the end of each bucket (1 ms before the next one starts, so a
        `fn(x[step])` sees exactly [bucket start, bucket end)), in windows of MAX_POINTS buckets."""
        for at in range(0, len(buckets), MAX_POINTS):
            window = buckets[at:at + MAX_POINTS]
            yield from self.range(promql, float(window[0]) + step - 0.001, float(window[-1]) + step - 0.001, step)

    def _bitmask_or(self, uuid: str, field: dcgm.DcgmField, buckets: np.ndarray, start: float, end: float, step: float):
        values = np.full(len(buckets), np.nan)
        if not len(buckets):
            return values
        for ts, raw in self._raw_samples(uuid, float(buckets[0]), end, [field]).get(field.name, []):
            ok = ~dcgm.dcgm_blank_mask(raw, field.kind) & (ts >= start)
            at = np.floor((ts[ok] - buckets[0]) / step).astype(np.int64)
            bits = raw[ok].astype(np.int64)
            combined = np.zeros(len(buckets), dtype=np.int64)
            np.bitwise_or.at(combined, at, bits)
            seen = np.zeros(len(buckets), dtype=bool)
            seen[at] = True
            values = np.where(seen, np.where(np.isnan(values), 0, values).astype(np.int64) | combined, values)
        return values.astype(np.float64)

    def series(self, uuid: str, metric: str, start: float, end: float, max_points: int = MAX_POINTS) -> Series:
        """`metric` of one GPU over [start, end) in at most `max_points` buckets (each its min, avg
        and max; a counter's last value; a bitmask's highest reading), without a bucket for time
        with no sample."""
        if not 1 <= max_points <= MAX_POINTS:
            raise ValueError(f"max_points must be between 1 and {MAX_POINTS}")
        field = _FIELD_OF_METRIC[metric]
        step = max(MIN_STEP_S, math.ceil((end - start) / max_points))
        kind = self.layout.spec(metric).kind
        fns = {"min": "min_over_time", "avg": "avg_over_time", "max": "max_over_time"}
        if kind is not Kind.GAUGE:
            fns = dict.fromkeys(fns, "last_over_time" if kind is Kind.COUNTER else "max_over_time")
        buckets, found = self._bucketed(
            {name: (field, fn) for name, fn in fns.items()}, start, end, step, f"{dcgm.LABEL_UUID}={_quote(uuid)}", by=(),
        )
        empty = np.full(len(buckets), np.nan)
        low, mean, high = (found.get(("", name), empty) for name in fns)
        keep = ~np.isnan(mean)
        return Series(buckets[keep], low[keep], mean[keep], high[keep], f"{step:g}s")

    # -- the fleet over time -----------------------------------------------------------------------

    def fleet_series(
        self, start: float, end: float, max_points: int = 1000, metrics: Sequence[str] = FLEET_METRICS,
    ) -> dict[str, Series]:
        """Fleet figures over [start, end) as HistoryReader.fleet_series names them, in at most
        `max_points` buckets, aggregated by Prometheus: GPUs with a sample in the bucket, those
        gpuops_gpu_state says lost or unknown in it (ok: the others), means, totals and the hottest."""
        unknown = sorted(set(metrics) - set(FLEET_METRICS))
        if unknown:
            raise ValueError(f"unknown fleet metric(s) {', '.join(unknown)}")
        step = max(MIN_STEP_S, math.ceil((end - start) / max(1, min(max_points, MAX_POINTS))))

        def gpus(names: Sequence[str], when: str = "", *matchers: str) -> str:
            return f"count(max by ({dcgm.LABEL_UUID}) ({self.over_time('max_over_time', names, step, *matchers)}){when})"

        def state(label: str) -> str:
            return gpus((dcgm.GPUOPS_GPU_STATE,), " == 1", f"{dcgm.GPUOPS_GPU_STATE}={_quote(label)}")

        def over(metric: str, fleet_fn: str) -> str:
            field = _FIELD_OF_METRIC[metric]
            inner = f"{self.over_time('avg_over_time', (field.name, *field.aliases), step)} < {dcgm.DCGM_INT32_BLANK}"
            per_gpu = f"{_fold(field)} by ({dcgm.LABEL_UUID}) (max by ({dcgm.LABEL_UUID}, {dcgm.LABEL_MIG_ID}) ({inner}))"
            return f"{fleet_fn}({per_gpu}) * {field.scale!r}"

        expressions = {
            "n_gpus": gpus(_PRESENCE),
            "n_lost": state("lost"),
            "n_unknown": state("unknown"),
            "util_gpu_mean_pct": over("util_gpu_pct", "avg"),
            "util_mem_mean_pct": over("util_mem_pct", "avg"),
            "power_total_w": over("power_w", "sum"),
            "mem_used_total_bytes": over("mem_used_bytes", "sum"),
            "mem_total_total_bytes": over("mem_total_bytes", "sum"),
            "temp_max_c": over("temp_c", "max"),
        }
        promql = " or ".join(f'label_replace({e}, "{_COLUMN}", "{name}", "", "")' for name, e in expressions.items())
        buckets = _bucket_starts(start, end, step)
        found = {name: np.full(len(buckets), np.nan) for name in FLEET_METRICS}
        for row in self._bucket_rows(promql, buckets, step):
            at, values = _bucket_points(row, buckets, step)
            found[row["metric"][_COLUMN]][at] = values
        has_gpus = ~np.isnan(found["n_gpus"])
        for name in ("n_lost", "n_unknown"):  # count() of nothing is no point, not 0
            found[name] = np.where(has_gpus & np.isnan(found[name]), 0.0, found[name])
        found["n_ok"] = found["n_gpus"] - found["n_lost"] - found["n_unknown"]
        ts = buckets[has_gpus]
        return {m: Series(ts, found[m][has_gpus], found[m][has_gpus], found[m][has_gpus], f"{step:g}s") for m in metrics}

    def time_range(self) -> tuple[float, float] | None:
        """(oldest, newest) time with GPU series within HISTORY_SPAN_S of now, to the hour (the
        series index, bisected); None when Prometheus has none."""
        now = time.time()
        first = self.earliest(now - HISTORY_SPAN_S, now)
        if first >= now:
            return None
        lo, hi = first, now  # some series in [lo, now); none in [hi, now) unless hi is now
        if self.series_in(now - 300.0, now, self._presence()):
            return first, now
        while hi - lo > 3600:
            mid = (lo + hi) / 2
            if self.series_in(mid, now, self._presence()):
                lo = mid
            else:
                hi = mid
        return first, hi

    def events(
        self, start: float, end: float, gpu_uuid: str | None = None, kinds: Iterable[str] | None = None,
    ) -> list[HistoryEvent]:
        """XIDs, losses and recoveries in [start, end), to the minute, as HistoryReader.events
        names them: XIDs as xid_minutes finds them; gpu_lost at the first minute gpuops_gpu_state
        says lost, gpu_recovered at the first one after that it does not. Prometheus keeps no
        source errors."""
        wanted = set(kinds) if kinds is not None else {"xid", "gpu_lost", "gpu_recovered"}
        matchers = () if gpu_uuid is None else (f"{dcgm.LABEL_UUID}={_quote(gpu_uuid)}",)
        found: list[HistoryEvent] = []
        if "xid" in wanted:
            found += [HistoryEvent(at_s, "xid", uuid, code, None) for uuid, at_s, code in self.xid_minutes(start, end, *matchers)]
        if wanted & {"gpu_lost", "gpu_recovered"}:
            by_gpu: dict[str, list[float]] = {}
            for uuid, at_s, _ in self.lost_minutes(start, end, *matchers):
                by_gpu.setdefault(uuid, []).append(at_s)
            for uuid, minutes in by_gpu.items():
                for run_start, run_end in _merge([(round(m), round(m) + 60) for m in minutes]):
                    if "gpu_lost" in wanted:
                        found.append(HistoryEvent(float(run_start), "gpu_lost", uuid, None, None))
                    if "gpu_recovered" in wanted and run_end < end:
                        found.append(HistoryEvent(float(run_end), "gpu_recovered", uuid, None, None))
        return sorted(found, key=lambda e: (e.ts, e.uuid or ""))

    # -- events by the minute ----------------------------------------------------------------------

    def lost_minutes(self, start: float, end: float, *matchers: str) -> list[tuple[str, float, None]]:
        """(UUID, minute start, None) of each minute in [start, end) gpuops_gpu_state says lost."""
        state = self.selector(f"__name__={_quote(dcgm.GPUOPS_GPU_STATE)}", f"{dcgm.GPUOPS_GPU_STATE}={_quote('lost')}", *matchers)
        promql = f"max by ({dcgm.LABEL_UUID}) (max_over_time({state}[1m])) == 1"
        return [(uuid, at_s, None) for uuid, at_s, _ in self._minute_marks(promql, start, end)]

    def xid_minutes(self, start: float, end: float, *matchers: str) -> list[tuple[str, float, int]]:
        """(UUID, minute start, code) of each XID in [start, end): one more in the agent's
        gpuops_xid_errors_total, or dcgm-exporter's last-XID gauge changing (to that code)."""
        counted = self.selector(f"__name__={_quote(dcgm.GPUOPS_XID_ERRORS_TOTAL)}", *matchers)
        # changes() over two minutes: a change between the last sample of one minute and the first
        # of the next is seen in the second (a one-minute window holds neither pair).
        by_code = f"max by ({dcgm.LABEL_UUID}, {dcgm.LABEL_XID}) (changes({counted}[2m])) > 0"
        last = self.selector(f"__name__={_quote(dcgm.XID_ERRORS)}", *matchers)
        by_gauge = f"max by ({dcgm.LABEL_UUID}) (last_over_time({last}[1m]) and changes({last}[2m]) > 0)"
        marks = []
        for uuid, at_s, (label, _) in self._minute_marks(by_code, start, end):
            if label.isdigit():
                marks.append((uuid, at_s, int(label)))
        for uuid, at_s, (_, value) in self._minute_marks(by_gauge, start, end):
            marks.append((uuid, at_s, int(value)))
        return sorted(marks, key=lambda mark: (mark[1], mark[0]))

    def _minute_marks(self, promql: str, start: float, end: float) -> Iterator[tuple[str, float, tuple[str, float]]]:
        """(UUID, minute start, (xid label, value)) of each minute `promql` answers for."""
        buckets = _bucket_starts(start, end, 60.0)
        for row in self._bucket_rows(promql, buckets, 60.0):
            at, values = _bucket_points(row, buckets, 60.0)
            labels = row["metric"]
            for k, value in zip(at.tolist(), values.tolist(), strict=True):
                yield labels.get(dcgm.LABEL_UUID, ""), float(buckets[k]), (labels.get(dcgm.LABEL_XID, ""), value)

    # -- the fleet at an instant -----------------------------------------------------------------

    def fleet_at(self, t: float) -> FleetSample | None:
        """The fleet as Prometheus had it at `t`: the `prometheus:` source's poll evaluated then
        (values up to Prometheus' look-back, 5 minutes by default, before it); None if it had no GPU."""
        if self._source is None:
            self._source = _PastSource(self.spec)
        self._source.evaluation_time = t
        sample = self._source.poll()
        return sample if len(sample) else None

    def usage_history(self) -> PrometheusUsageHistory:
        return PrometheusUsageHistory(self)


class _PastSource(PrometheusSource):
    """The fleet at past instants. The inventory's 30 s rule applies in evaluated time, so replay
    asks it at almost every instant: it is read from the series every GPU has (utilization,
    memory, temperature, graphics activity, gpuops_gpu_info) rather than from every DCGM field,
    ten times less to group. A GPU exporting none of those is not shown in the past."""

    inventory_names = "|".join((*_PRESENCE, dcgm.PROF_GR_ENGINE_ACTIVE))


class PeriodView:
    """PrometheusHistory.period's answer: `gpus()`, `table()`, `layout` and `path` like HistoryReader's."""

    def __init__(self, history: PrometheusHistory, start: float, records: list[GpuRecord]) -> None:
        self.history = history
        self.start = start
        self.path = history.path
        self.layout = history.layout
        self._records = records

    def gpus(self) -> list[GpuRecord]:
        return list(self._records)

    def table(
        self, uuid: str, start: float, end: float, resolution: str = "raw", metrics: Sequence[str] = SAMPLE_METRICS
    ) -> HistoryTable:
        return self.history.table(uuid, start, end, resolution, metrics)


def _fold_at(ts: np.ndarray, parts: list[tuple[np.ndarray, np.ndarray]], field: dcgm.DcgmField) -> np.ndarray:
    """One column at `ts` from the raw samples of a field's series (one per MIG instance or
    duplicate scrape), folded like the live source does; NaN where none has a sample."""
    if not parts:
        return np.full(len(ts), np.nan)
    grid = np.full((len(parts), len(ts)), np.nan)
    for row, (stamps, raw) in enumerate(parts):
        grid[row, np.searchsorted(ts, stamps)] = np.where(dcgm.dcgm_blank_mask(raw, field.kind), np.nan, raw * field.scale)
    present = ~np.isnan(grid).all(axis=0)
    out = np.full(len(ts), np.nan)
    if present.any():
        block, fold = grid[:, present], _fold(field)
        out[present] = np.nansum(block, 0) if fold == "sum" else np.nanmean(block, 0) if fold == "avg" else np.nanmax(block, 0)
    return out


@dataclass(frozen=True)
class _UsageColumn:
    field: dcgm.DcgmField
    fn: str


_USAGE_COLUMNS: dict[str, _UsageColumn] = {
    "util_avg": _UsageColumn(_FIELD_OF_METRIC["util_gpu_pct"], "avg_over_time"),
    "util_min": _UsageColumn(_FIELD_OF_METRIC["util_gpu_pct"], "min_over_time"),
    "util_max": _UsageColumn(_FIELD_OF_METRIC["util_gpu_pct"], "max_over_time"),
    "energy_last": _UsageColumn(_FIELD_OF_METRIC["energy_j"], "last_over_time"),
    "power_avg": _UsageColumn(_FIELD_OF_METRIC["power_w"], "avg_over_time"),
    "ecc_last": _UsageColumn(_FIELD_OF_METRIC["ecc_uncorrected_volatile"], "last_over_time"),
    "remap_failure_last": _UsageColumn(_FIELD_OF_METRIC["remapped_rows_failure"], "last_over_time"),
    "temp_max": _UsageColumn(_FIELD_OF_METRIC["temp_c"], "max_over_time"),
    "slowdown": _UsageColumn(_FIELD_SLOWDOWN, "max_over_time"),
}


class PrometheusUsageHistory:
    """What `gpuops usage` needs of a GPU's history (as core.allocations.usage_history.UsageHistory
    answers from the local database), from Prometheus by the minute: utilization, energy counter,
    power, and faulty minutes (uncorrectable ECC errors or a row remap failure above 0, the
    temperature at or over the GPU's own DCGM slowdown threshold); lost while gpuops_gpu_state
    says lost, faulty for an hour after a critical XID: one more in gpuops_xid_errors_total, or
    dcgm-exporter's last-XID gauge changing to a critical code (a counter's first appearance
    is no change: an XID that creates the series is not seen).
    A minute with no sample is no bucket, so it counts as unused, exactly like the local history."""

    def __init__(self, history: PrometheusHistory) -> None:
        self.history = history

    def buckets_of(self, requests: dict[str, Request]) -> dict[str, Buckets]:
        spans: dict[tuple[int, int], list[str]] = {}
        for uuid, r in requests.items():
            # From the minute before: its energy counter is the baseline of the first delta.
            spans.setdefault((r.start_ms - r.start_ms % MINUTE_MS - MINUTE_MS, r.end_ms), []).append(uuid)
        out = {}
        expressions = {name: (c.field, c.fn) for name, c in _USAGE_COLUMNS.items()}
        for (start_ms, end_ms), uuids in spans.items():
            for at in range(0, len(uuids), USAGE_GPUS_PER_QUERY):
                batch = uuids[at:at + USAGE_GPUS_PER_QUERY]
                matcher = f'{dcgm.LABEL_UUID}=~{_quote("|".join(_regex_literal(u) for u in batch))}'
                if end_ms <= start_ms:
                    out.update({uuid: _minute_buckets(np.empty(0), {}) for uuid in batch})
                    continue
                buckets, found = self.history._bucketed(
                    expressions, start_ms / 1000, end_ms / 1000, 60.0, matcher, by=(dcgm.LABEL_UUID,)
                )
                for uuid in batch:
                    columns = {name: found[(uuid, name)] for name in _USAGE_COLUMNS if (uuid, name) in found}
                    out[uuid] = _minute_buckets(buckets, columns)
        return out

    def unavailable_intervals(self, start_ms: int, end_ms: int) -> dict[str, list[tuple[int, int]]]:
        """Per GPU UUID, merged [from, to) intervals in which it was lost or faulty (class doc)."""
        start, end = start_ms / 1000, end_ms / 1000
        spans: dict[str, list[tuple[int, int]]] = {}
        # An XID up to XID_FAULTY_MS before the period still makes its first hour faulty.
        lost = self.history.lost_minutes(start, end)
        xids = self.history.xid_minutes(start - XID_FAULTY_MS / 1000, end)
        for marks, hold_ms in ((lost, MINUTE_MS), (xids, XID_FAULTY_MS)):
            for uuid, at_s, code in marks:
                if code is None or xid_severity(code) is Health.CRITICAL:
                    bucket = round(at_s * 1000)
                    spans.setdefault(uuid, []).append((bucket, bucket + hold_ms))
        return {
            uuid: [(max(lo, start_ms), min(hi, end_ms)) for lo, hi in _merge(items) if hi > start_ms and lo < end_ms]
            for uuid, items in spans.items()
        }


def _bucket_starts(start: float, end: float, step: float) -> np.ndarray:
    """Starts of the buckets of `step` seconds, aligned on its multiples, that meet [start, end)."""
    return np.arange(math.floor(start / step) * step, end, step)


def _bucket_points(row: Mapping[str, Any], buckets: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """(bucket positions, raw values) of one query_range series evaluated at bucket ends."""
    points = np.array(row["values"], dtype=object)
    at = np.rint((points[:, 0].astype(np.float64) + 0.001 - step - buckets[0]) / step).astype(np.int64)
    return at, points[:, 1].astype(np.float64)


def _regex_literal(text: str) -> str:
    return "".join("\\" + ch if ch in r".^$*+?()[]{}|\\" else ch for ch in text)


def _minute_buckets(starts_s: np.ndarray, columns: dict[str, np.ndarray]) -> Buckets:
    n = len(starts_s)
    nan = np.full(n, np.nan)
    c = {name: columns.get(name, nan) for name in _USAGE_COLUMNS}
    keep = ~np.isnan(np.vstack(list(c.values()))).all(axis=0) if n else np.zeros(0, dtype=bool)
    with np.errstate(invalid="ignore"):
        faulty = (c["ecc_last"] > 0) | (c["remap_failure_last"] > 0) | (c["temp_max"] >= c["slowdown"])
    start_ms = np.rint(starts_s[keep] * 1000).astype(np.int64)
    none = np.full(len(start_ms), -1, dtype=np.int64)
    return Buckets(
        start_ms, start_ms + MINUTE_MS, c["util_avg"][keep], c["util_min"][keep], c["util_max"][keep],
        c["energy_last"][keep], c["power_avg"][keep], none, none, none, faulty[keep],
    )

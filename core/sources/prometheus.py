"""`prometheus:URL`: read the fleet from a Prometheus server that scrapes dcgm-exporters or gpuops agents.

Spec: `prometheus:http(s)://host:9090[/path][?option=value&...]`, options (URL-encoded):

  selector=job="dcgm",cluster="a"   label matchers added to every query
  timeout=5                         seconds per query
  ca_file=/path/ca.pem              trust this CA for https
  insecure=1                        do not verify the server certificate
  bearer_token_file=/path           send `Authorization: Bearer <file content>`
  username=NAME&password_file=/path basic auth

Secrets are never written in the spec itself (it ends up in settings and logs): give files,
or GPUOPS_PROMETHEUS_BEARER_TOKEN(_FILE) / _USERNAME / _PASSWORD(_FILE) / _CA_FILE / _INSECURE.

Each poll sends a fixed set of instant queries (/api/v1/query), each for the whole fleet,
never one per GPU: one per DCGM metric, aggregated `max by (UUID, GPU_I_ID, GPU_I_PROFILE)`
so the answer carries only what is needed; `up` for target health; per-process memory and
XID counts; and GPU state for the GPUs that are not ok. Inventory and workloads (`group by`
the identity, MIG and pod labels, plus gpuops_gpu_info) change rarely and are asked every
INVENTORY_REFRESH_S (30 s), or at once when a value arrives for a GPU they do not list; so a
new pod shows within 30 s.

A target Prometheus reports down (up == 0) or no longer has makes its nodes stale, exactly
like a failed scrape target (see core.sources.dcgm_fleet). Prometheus itself unreachable
fails the poll with SourceError. Pod labels equal to the scrape target's own pod (Prometheus
attaches it when the exporter runs in Kubernetes) are not workloads; `exported_pod` wins.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

from gpuops.core import dcgm_schema as dcgm
from gpuops.core.sources.base import SourceError, TelemetrySource
from gpuops.core.sources.dcgm_fleet import (
    FleetBook,
    GpuLabels,
    GpuReading,
    TargetResult,
    dcgm_label_info,
    gpu_labels,
    info_from_labels,
)
from gpuops.core.sources.gc_pause import paused_gc
from gpuops.core.sources.http_fetch import FetchError, HttpFetcher, HttpOptions
from gpuops.core.sources.workers import DaemonPool, wait_all
from gpuops.core.telemetry import FleetSample, GpuState, ProcessInfo, Workload

log = logging.getLogger("gpuops.sources")
T = TypeVar("T")

ENV_PREFIX = "GPUOPS_PROMETHEUS"
DEFAULT_TIMEOUT_S = 5.0
QUERY_CONCURRENCY = 6
# Identity, MIG and pod labels change rarely: asked this often (and whenever an unknown GPU shows).
INVENTORY_REFRESH_S = 30.0
_OPTIONS = {"selector", "timeout", "ca_file", "insecure", "bearer_token_file", "username", "password_file"}
_SECRET_OPTIONS = {"password", "bearer_token", "token"}
_SELECTOR_SHAPE = re.compile(r'^\s*[A-Za-z_][A-Za-z0-9_]*\s*(=|!=|=~|!~)\s*"')

_IDENTITY_LABELS = (
    dcgm.LABEL_UUID, dcgm.LABEL_HOST, dcgm.LABEL_HOST_LOWER, dcgm.LABEL_GPU, dcgm.LABEL_MODEL, dcgm.LABEL_PCI_BUS_ID,
    dcgm.LABEL_DRIVER,
    dcgm.LABEL_SERIAL, dcgm.LABEL_VBIOS, dcgm.LABEL_NVML_VERSION, dcgm.LABEL_CUDA_DRIVER, "instance",
)
_WORKLOAD_LABELS = (
    dcgm.LABEL_MIG_ID, dcgm.LABEL_MIG_PROFILE, dcgm.LABEL_POD, dcgm.LABEL_NAMESPACE, dcgm.LABEL_CONTAINER,
    "exported_pod", "exported_namespace", "exported_container",
)
_VALUE_KEYS = f"{dcgm.LABEL_UUID}, {dcgm.LABEL_MIG_ID}, {dcgm.LABEL_MIG_PROFILE}"


@dataclass(frozen=True)
class PrometheusSpec:
    base_url: str
    selector: str = ""
    timeout_s: float = DEFAULT_TIMEOUT_S
    http: HttpOptions = HttpOptions()

    @classmethod
    def parse(cls, spec: str, environ: Mapping[str, str] | None = None) -> PrometheusSpec:
        env = os.environ if environ is None else environ
        url = spec.split(":", 1)[1].strip() if ":" in spec else ""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceError(f"bad source {spec!r}: expected prometheus:http(s)://host:port[?selector=...]")
        options = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        secrets = sorted(_SECRET_OPTIONS & options.keys())
        if secrets:
            raise SourceError(
                f"bad source: put no {secrets[0]} in the prometheus spec; use password_file= / bearer_token_file= "
                f"or the {ENV_PREFIX}_* variables"
            )
        unknown = sorted(options.keys() - _OPTIONS)
        if unknown:
            raise SourceError(f"bad source: unknown prometheus option {unknown[0]!r}; known: {', '.join(sorted(_OPTIONS))}")
        selector = options.get("selector", "").strip().strip(",")
        if selector and (not _SELECTOR_SHAPE.match(selector) or "{" in selector or "}" in selector):
            raise SourceError(f'bad prometheus selector {selector!r}: expected label matchers like job="dcgm"')
        try:
            timeout_s = float(options.get("timeout", DEFAULT_TIMEOUT_S))
        except ValueError:
            raise SourceError(f"bad prometheus timeout {options['timeout']!r}: not a number") from None
        if not timeout_s > 0:
            raise SourceError("the prometheus timeout must be positive")
        try:
            http = HttpOptions.from_env(
                ENV_PREFIX, env,
                ca_file=options.get("ca_file"),
                insecure=options.get("insecure"),
                bearer_token_file=options.get("bearer_token_file"),
                username=options.get("username"),
                password_file=options.get("password_file"),
            )
        except ValueError as exc:
            raise SourceError(f"prometheus source: {exc}") from None
        base = parts._replace(query="", fragment="").geturl().rstrip("/")
        return cls(base_url=base, selector=selector, timeout_s=timeout_s, http=http)


class PrometheusSource(TelemetrySource):
    simulated = False
    #: The series whose labels make the inventory: every DCGM field, for an exporter that serves
    #: some only (profiling alone, say). The history's past instants ask fewer (prometheus_history).
    inventory_names = f"DCGM_FI_(DEV|PROF)_.+|{dcgm.GPUOPS_GPU_INFO}"

    def __init__(self, spec: PrometheusSpec) -> None:
        self.spec = spec
        self.name = f"prometheus:{spec.base_url}"
        self._fetcher = HttpFetcher(spec.http, timeout_s=spec.timeout_s)
        self._pool = DaemonPool(QUERY_CONCURRENCY, "gpuops-prometheus")
        self._interrupted = False
        self._book = FleetBook()
        self._instance_nodes: dict[str, str] = {}
        self._gpus: dict[str, tuple[str, GpuLabels, dict[str, object], list[dict[str, str]]]] = {}
        self._inventory_at: float | None = None
        #: None: every poll reads the fleet now; a time: as Prometheus had it then (history replay).
        self.evaluation_time: float | None = None
        self._inventory_time: float | None = None
        try:
            self._query(f"up{self._braces()}")  # reachable, authorized, and the selector parses
        except SourceError:
            self.close()
            raise

    @classmethod
    def from_spec(cls, spec: str, environ: Mapping[str, str] | None = None) -> PrometheusSource:
        return cls(PrometheusSpec.parse(spec, environ))

    def _braces(self, *matchers: str) -> str:
        parts = [m for m in (self.spec.selector, *matchers) if m]
        return "{" + ",".join(parts) + "}" if parts else ""

    def _query(self, promql: str) -> list[dict[str, Any]]:
        params = {"query": promql}
        if self.evaluation_time is not None:
            params["time"] = f"{self.evaluation_time:.3f}"
        url = f"{self.spec.base_url}/api/v1/query?{urlencode(params)}"
        try:
            body = self._fetcher.get(url)
        except FetchError as exc:
            raise SourceError(f"Prometheus at {self.spec.base_url}: {_api_error(exc)}") from None
        return api_result(body, "vector", self.spec.base_url, promql)

    def _inventory_queries(self) -> dict[str, str]:
        """Identity, MIG and pod labels of every GPU: asked every INVENTORY_REFRESH_S, or at once when
        a value comes for a GPU not in the last answer."""
        # gpuops_gpu_info too: a lost GPU behind an agent has no DCGM value, but it is still there;
        # and profiling fields, which an exporter may serve alone.
        any_gpu = self._braces(f'__name__=~"{self.inventory_names}"')
        return {
            "inventory": f"group by ({', '.join(_IDENTITY_LABELS + _WORKLOAD_LABELS)}) ({any_gpu})",
            dcgm.GPUOPS_GPU_INFO: (
                f"group by ({dcgm.LABEL_UUID}, {', '.join(dcgm.INFO_LABELS)}) ({dcgm.GPUOPS_GPU_INFO}{self._braces()})"
            ),
        }

    def _queries(self) -> dict[str, str]:
        """The queries of every poll, by key: "up", a DCGM field name, or a gpuops extra."""
        not_ok = self._braces(f'{dcgm.GPUOPS_GPU_STATE}!="{GpuState.OK.label}"')
        queries = {
            "up": f"up{self._braces()}",
            dcgm.GPUOPS_PROCESS_MEMORY: (
                f"max by ({dcgm.LABEL_UUID}, {dcgm.LABEL_PID}, {dcgm.LABEL_PROCESS_NAME}) "
                f"({dcgm.GPUOPS_PROCESS_MEMORY}{self._braces()})"
            ),
            dcgm.GPUOPS_XID_ERRORS_TOTAL: (
                f"max by ({dcgm.LABEL_UUID}, {dcgm.LABEL_XID}) ({dcgm.GPUOPS_XID_ERRORS_TOTAL}{self._braces()})"
            ),
            # only GPUs that are not ok: a healthy fleet answers with nothing
            dcgm.GPUOPS_GPU_STATE: f"max by ({dcgm.LABEL_UUID}, {dcgm.GPUOPS_GPU_STATE}) ({dcgm.GPUOPS_GPU_STATE}{not_ok} == 1)",
        }
        for spec in dcgm.FIELDS:
            name_matcher = '__name__=~"' + "|".join((spec.name, *spec.aliases)) + '"'
            queries[spec.name] = f"max by ({_VALUE_KEYS}) ({self._braces(name_matcher)})"
        return queries

    def poll(self) -> FleetSample:
        with paused_gc():
            return self._poll()

    def _poll(self) -> FleetSample:
        started = time.monotonic()
        # At a past time the inventory is as old as it may be in a live poll, but in evaluated time.
        if self.evaluation_time is None or self._inventory_time is None:
            stale_inventory = self._inventory_at is None or started - self._inventory_at >= INVENTORY_REFRESH_S
        else:
            stale_inventory = abs(self.evaluation_time - self._inventory_time) >= INVENTORY_REFRESH_S
        stale_inventory = stale_inventory or (self.evaluation_time is None) != (self._inventory_time is None)
        queries = self._queries()
        if stale_inventory:
            queries.update(self._inventory_queries())
        answers, errors = self._ask(queries)
        if stale_inventory:
            self._take_inventory(answers, started)
        results, unknown = self._results(answers)
        if unknown and not stale_inventory:  # a GPU appeared since the last inventory
            inventory, more_errors = self._ask(self._inventory_queries())
            self._take_inventory(inventory, started)
            errors += more_errors
            results, _ = self._results(answers)
        at = time.time() if self.evaluation_time is None else self.evaluation_time
        sample = self._book.build(results, ts=at, poll_duration_s=time.monotonic() - started)
        if errors:
            sample = replace(sample, errors=sample.errors + tuple(errors))
        return sample

    def _ask(self, queries: dict[str, str]) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
        """All `queries` at once; a failure of up or the inventory fails the poll, of another query
        only that metric (reported in errors)."""
        futures = {key: self._pool.submit(self._query, promql) for key, promql in queries.items()}
        # every query has its own deadline (the fetcher's); this only waits longer when they queue
        wait_all(futures.values(), self.spec.timeout_s * len(futures), lambda: self._interrupted)
        if self._interrupted:
            for future in futures.values():
                future.cancel()
            raise SourceError(f"Prometheus at {self.spec.base_url}: poll interrupted, gpuops is stopping")
        answers: dict[str, list[dict[str, Any]]] = {}
        errors: list[str] = []
        for key, future in futures.items():
            try:
                answers[key] = future.result()
            except SourceError as exc:
                if key in ("up", "inventory"):
                    for other in futures.values():
                        other.cancel()
                    raise
                errors.append(f"query for {key} failed: {exc}")
        return answers, errors

    def _take_inventory(self, answers: dict[str, list[dict[str, Any]]], at: float) -> None:
        """Digest the inventory answers once: identity per GPU, and the rows that name MIG or pods."""
        gpus: dict[str, tuple[str, GpuLabels, dict[str, object], list[dict[str, str]]]] = {}
        for row in answers.pop("inventory"):
            labels = row["metric"]
            uuid = labels.get(dcgm.LABEL_UUID)
            if not uuid:
                continue
            entry = gpus.get(uuid)
            if entry is None:
                instance = labels.get("instance", "")
                identity = gpu_labels(labels, instance.rsplit(":", 1)[0] or "unknown")
                entry = gpus[uuid] = (instance, identity, dcgm_label_info(labels), [])
            if any(labels.get(name) for name in _WORKLOAD_LABELS):
                entry[3].append(labels)
        for row in answers.pop(dcgm.GPUOPS_GPU_INFO, []):
            entry = gpus.get(row["metric"].get(dcgm.LABEL_UUID, ""))
            if entry is not None:
                entry[2].update(info_from_labels(row["metric"]))
        self._gpus = gpus
        self._inventory_at = at
        self._inventory_time = self.evaluation_time

    def _results(self, answers: dict[str, list[dict[str, Any]]]) -> tuple[list[TargetResult], int]:
        """Per scrape target (instance): its GPUs' readings, or why it has none; and how many
        values belonged to GPUs the inventory does not know. A GPU counts as read in this poll
        only if some value, state or process of it came back."""
        up: dict[str, float] = {}
        target_pods: set[tuple[str, str]] = set()
        for row in answers["up"]:
            labels = row["metric"]
            instance = labels.get("instance", "")
            up[instance] = _number(row)
            if labels.get(dcgm.LABEL_POD):
                target_pods.add((instance, labels[dcgm.LABEL_POD]))
        readings_by_instance: dict[str, dict[str, GpuReading]] = {}
        readings: dict[str, GpuReading] = {}
        for uuid, (instance, identity, info, workload_rows) in self._gpus.items():
            gpu_reading = readings[uuid] = GpuReading(identity)
            gpu_reading.info.update(info)
            readings_by_instance.setdefault(instance, {})[uuid] = gpu_reading
            self._instance_nodes[instance] = identity.node
            for labels in workload_rows:
                _add_workload(gpu_reading, labels, instance, target_pods)
        unknown = 0
        uuid_label, mig_label = dcgm.LABEL_UUID, dcgm.LABEL_MIG_ID
        for spec in dcgm.FIELDS:
            name = spec.name
            for row in answers.get(name, ()):  # the hot loop: ~250,000 rows at 8,000 GPUs
                labels = row["metric"]
                reading = readings.get(labels.get(uuid_label, ""))
                if reading is None:
                    unknown += 1
                    continue
                value = _number(row)
                if mig_label not in labels:
                    reading.values[name] = value
                    continue
                mig = labels[mig_label]
                reading.mig_values.setdefault(name, []).append(value)
                mig_id = int(mig) if mig.isdigit() else -1
                profile, used = reading.migs.get(mig_id, (labels.get(dcgm.LABEL_MIG_PROFILE) or None, None))
                reading.migs[mig_id] = (profile, value if name == dcgm.FB_USED else used)
        fresh = {uuid for uuid, r in readings.items() if r.values or r.mig_values}
        fresh |= _add_extras(readings, answers)
        results = []
        for instance in sorted(set(self._instance_nodes) | set(readings_by_instance) | set(up)):
            gpus = {uuid: r for uuid, r in readings_by_instance.get(instance, {}).items() if uuid in fresh}
            stand_in = self._instance_nodes.get(instance, instance or "(no instance label)")
            if up.get(instance) == 0:
                results.append(TargetResult(instance, stand_in, error="Prometheus reports this target down (up == 0)"))
            elif gpus:
                results.append(TargetResult(instance, stand_in, readings=gpus))
            elif instance in self._instance_nodes:
                results.append(TargetResult(instance, stand_in, error="no GPU samples in Prometheus for this target"))
        return results, unknown

    def interrupt(self) -> None:
        self._interrupted = True

    def close(self) -> None:
        self._pool.shutdown()
        self._fetcher.close()


def _number(row: dict[str, Any]) -> float:
    try:
        return float(row["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return math.nan


def _add_workload(reading: GpuReading, labels: Mapping[str, str], instance: str, target_pods: set[tuple[str, str]]) -> None:
    mig = labels.get(dcgm.LABEL_MIG_ID)
    mig_id = (int(mig) if mig.isdigit() else -1) if mig else None
    profile = labels.get(dcgm.LABEL_MIG_PROFILE) or None
    if mig_id is not None and mig_id not in reading.migs:
        reading.migs[mig_id] = (profile, None)
    if labels.get("exported_pod"):
        prefix = "exported_"
    elif labels.get(dcgm.LABEL_POD) and (instance, labels[dcgm.LABEL_POD]) not in target_pods:
        prefix = ""
    else:
        return
    workload = Workload(
        namespace=labels.get(prefix + dcgm.LABEL_NAMESPACE) or None,
        pod=labels[prefix + dcgm.LABEL_POD],
        container=labels.get(prefix + dcgm.LABEL_CONTAINER) or None,
        mig_instance_id=mig_id,
        mig_profile=profile,
    )
    reading.workloads[workload] = None


def _add_extras(readings: dict[str, GpuReading], answers: dict[str, list[dict[str, Any]]]) -> set[str]:
    """Processes, XID counts and states; the UUIDs that had any."""
    states = {state.label: state for state in GpuState}
    fresh: set[str] = set()
    for reading, pid, row in _gpu_rows(readings, answers, dcgm.GPUOPS_PROCESS_MEMORY, dcgm.LABEL_PID, _whole_number, fresh):
        used = _number(row)
        reading.processes.append(ProcessInfo(
            pid=pid, name=row["metric"].get(dcgm.LABEL_PROCESS_NAME) or None,
            used_mem_bytes=None if math.isnan(used) else int(used),
        ))
    for reading, code, row in _gpu_rows(readings, answers, dcgm.GPUOPS_XID_ERRORS_TOTAL, dcgm.LABEL_XID, _whole_number, fresh):
        reading.xid_counts[code] = _number(row)
    for reading, state, _row in _gpu_rows(readings, answers, dcgm.GPUOPS_GPU_STATE, dcgm.GPUOPS_GPU_STATE, states.get, fresh):
        reading.state = state
    return fresh


def _gpu_rows(
    readings: dict[str, GpuReading],
    answers: dict[str, list[dict[str, Any]]],
    metric: str,
    label: str,
    parse: Callable[[str], T | None],
    fresh: set[str],
) -> Iterator[tuple[GpuReading, T, dict[str, Any]]]:
    """The rows of a gpuops_ extra `metric` for a known GPU whose `label` parses (None: it does not);
    those GPUs are added to `fresh`."""
    for row in answers.get(metric, ()):
        labels = row["metric"]
        reading = readings.get(labels.get(dcgm.LABEL_UUID, ""))
        value = parse(labels.get(label, ""))
        if reading is not None and value is not None:
            fresh.add(reading.labels.uuid)
            yield reading, value, row


def _whole_number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def api_result(body: bytes, result_type: str, base_url: str, query: str) -> list[dict[str, Any]]:
    """The result list of a Prometheus API answer of `result_type` ("vector", "matrix"), or a
    SourceError saying what was wrong with the answer to `query`."""
    try:
        document = json.loads(body)
        if document.get("status") != "success":
            raise ValueError(document.get("error") or "status is not success")
        data = document["data"]
        if data.get("resultType") != result_type:
            raise ValueError(f"expected a {result_type}, got {data.get('resultType')!r}")
        result: list[dict[str, Any]] = data["result"]
        return result
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SourceError(f"Prometheus at {base_url}: unexpected answer to {query[:200]!r}: {exc}") from None


def _api_error(exc: FetchError) -> str:
    """Prometheus explains a 4xx/5xx in its JSON body; show that rather than the bare status."""
    try:
        detail = json.loads(exc.body).get("error") if exc.body else None
    except (ValueError, AttributeError):
        detail = None
    return f"{exc}: {detail}" if detail else str(exc)

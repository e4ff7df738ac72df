"""`scrape:URL[,URL...]` / `scrape:@targets.txt`: read dcgm-exporter or gpuops agent endpoints directly.

Every poll fetches all targets concurrently (a bounded thread pool, a time limit per request
and one for the whole poll) and parses them with prometheus_client's parser (see
core.sources.exposition). A target that is down, slow or answers garbage costs only its own
node: see core.sources.dcgm_fleet for how that shows in the sample.

A target is `http(s)://host:port/path`; `host:port` alone means `http://host:port/metrics`.
A targets file has one per line; blank lines and `#` comments are skipped.
Options come from the environment (so that no secret sits in a spec or a settings file):
GPUOPS_SCRAPE_TIMEOUT_S (per request, default 2), GPUOPS_SCRAPE_CONCURRENCY (default 32),
and GPUOPS_SCRAPE_CA_FILE, _INSECURE, _BEARER_TOKEN(_FILE), _USERNAME, _PASSWORD(_FILE).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from urllib.parse import urlsplit

from gpuops.core.sources.base import SourceError, TelemetrySource
from gpuops.core.sources.dcgm_fleet import FleetBook, SeriesRef, TargetResult, classify, gather
from gpuops.core.sources.exposition import ExpositionError, ExpositionReader
from gpuops.core.sources.gc_pause import paused_gc
from gpuops.core.sources.http_fetch import FetchError, HttpFetcher, HttpOptions
from gpuops.core.sources.workers import DaemonPool, wait_all
from gpuops.core.telemetry import FleetSample

log = logging.getLogger("gpuops.sources")

ENV_PREFIX = "GPUOPS_SCRAPE"
DEFAULT_TIMEOUT_S = 2.0
DEFAULT_CONCURRENCY = 32
MAX_TARGETS = 20_000
# The whole poll may take this many request timeouts; targets not reached by then are reported.
POLL_DEADLINE_TIMEOUTS = 3.0


def _normalize(target: str, where: str) -> str:
    text = target.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceError(f"bad scrape target {target!r} ({where}): expected http(s)://host:port/path or host:port")
    try:
        _ = parts.port  # urlsplit parses the port lazily: read it to refuse a bad one here
    except ValueError:
        raise SourceError(f"bad scrape target {target!r} ({where}): the port is not a number") from None
    if parts.path in ("", "/"):
        text = parts._replace(path="/metrics").geturl()
    return text


def parse_targets(spec_rest: str) -> list[str]:
    """The URLs of `URL[,URL...]` or `@FILE`; raises SourceError naming the bad entry."""
    rest = spec_rest.strip()
    if rest.startswith("@"):
        path = Path(rest[1:])
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"cannot read scrape targets file {path}: {exc}") from None
        entries = [
            (line.split("#", 1)[0].strip(), f"{path}, line {number}")
            for number, line in enumerate(lines[: MAX_TARGETS * 2], start=1)
        ]
        entries = [(entry, where) for entry, where in entries if entry]
        if not entries:
            raise SourceError(f"scrape targets file {path} lists no target")
    else:
        entries = [(entry, "in the source spec") for entry in rest.split(",")]
        if not rest or any(not entry.strip() for entry, _ in entries):
            raise SourceError("bad source: 'scrape:' needs URL[,URL...] or @FILE, with no empty entry")
    if len(entries) > MAX_TARGETS:
        raise SourceError(f"too many scrape targets ({len(entries)}); at most {MAX_TARGETS}")
    targets: list[str] = []
    seen: set[str] = set()
    for entry, where in entries:
        url = _normalize(entry, where)
        if url in seen:
            raise SourceError(f"scrape target {url} is listed twice ({where})")
        seen.add(url)
        targets.append(url)
    return targets


def _env_number(environ: Mapping[str, str], name: str, default: float, kind: type) -> float:
    text = environ.get(name)
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise SourceError(f"{name}={text!r} is not a number") from None
    if value <= 0:
        raise SourceError(f"{name} must be positive, got {text}")
    return value


class _Target:
    """One endpoint: its URL, its parse cache, and a lock so that a scrape that outlived its
    poll is never overlapped by the next one."""

    def __init__(self, url: str) -> None:
        self.url = url
        parts = urlsplit(url)
        self.stand_in_node = parts.netloc
        self.reader: ExpositionReader[SeriesRef] = ExpositionReader(
            lambda name, labels: classify(name, labels, parts.hostname or parts.netloc)
        )
        self.busy = threading.Lock()


class ScrapeSource(TelemetrySource):
    simulated = False

    def __init__(
        self,
        targets: list[str],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        concurrency: int = DEFAULT_CONCURRENCY,
        http: HttpOptions | None = None,
        name: str | None = None,
    ) -> None:
        if not targets:
            raise SourceError("scrape source needs at least one target")
        self.name = name or f"scrape:{len(targets)} targets"
        self._targets = [_Target(url) for url in targets]
        self._timeout_s = timeout_s
        self._fetcher = HttpFetcher(http, timeout_s=timeout_s)
        self._pool = DaemonPool(min(concurrency, len(targets)), "gpuops-scrape")
        self._book = FleetBook()
        self._closed = False
        self._interrupted = False

    @classmethod
    def from_spec(cls, spec: str, environ: Mapping[str, str] | None = None) -> ScrapeSource:
        """Open `scrape:...`; options from GPUOPS_SCRAPE_* variables."""
        env = os.environ if environ is None else environ
        rest = spec.split(":", 1)[1] if ":" in spec else ""
        targets = parse_targets(rest)
        try:
            http = HttpOptions.from_env(ENV_PREFIX, env)
        except ValueError as exc:
            raise SourceError(f"scrape source: {exc}") from None
        shown = spec if len(spec) <= 80 else f"scrape:{len(targets)} targets"
        return cls(
            targets,
            timeout_s=_env_number(env, f"{ENV_PREFIX}_TIMEOUT_S", DEFAULT_TIMEOUT_S, float),
            concurrency=int(_env_number(env, f"{ENV_PREFIX}_CONCURRENCY", DEFAULT_CONCURRENCY, int)),
            http=http,
            name=shown,
        )

    @property
    def targets(self) -> list[str]:
        return [target.url for target in self._targets]

    def poll(self) -> FleetSample:
        if self._closed:
            raise SourceError("scrape source is closed")
        with paused_gc():
            return self._poll()

    def _poll(self) -> FleetSample:
        started = time.monotonic()
        limit_s = self._timeout_s * POLL_DEADLINE_TIMEOUTS
        futures: list[Future[TargetResult]] = [self._pool.submit(self._scrape, t) for t in self._targets]
        wait_all(futures, limit_s, lambda: self._interrupted)
        why = "the collector is stopping" if self._interrupted else f"too many slow targets (poll limit {limit_s:g} s)"
        results = []
        for target, future in zip(self._targets, futures, strict=True):
            if future.done() and not future.cancelled():
                results.append(future.result())
            else:
                future.cancel()
                results.append(TargetResult(target.url, target.stand_in_node, error=f"not scraped in this poll: {why}"))
        return self._book.build(results, ts=time.time(), poll_duration_s=time.monotonic() - started)

    def _scrape(self, target: _Target) -> TargetResult:
        if not target.busy.acquire(blocking=False):
            return TargetResult(target.url, target.stand_in_node, error="the previous scrape has not finished yet")
        try:
            body = self._fetcher.get(target.url)
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise FetchError("the answer is not UTF-8 text") from None
            try:
                readings = gather(target.reader.read(text))
            except ExpositionError as exc:
                raise FetchError(f"not Prometheus text exposition: {exc}") from None
            if not readings:
                raise FetchError("no GPU series with a UUID label (is this a dcgm-exporter or gpuops agent /metrics?)")
            return TargetResult(target.url, target.stand_in_node, readings=readings)
        except FetchError as exc:
            log.debug("scrape of %s failed: %s", target.url, exc)
            return TargetResult(target.url, target.stand_in_node, error=str(exc))
        finally:
            target.busy.release()

    def interrupt(self) -> None:
        self._interrupted = True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown()
        self._fetcher.close()

"""Turn a source spec ("auto", "nvml", "demo:1000", ...) into an open `TelemetrySource`."""

from __future__ import annotations

import logging
from pathlib import Path

from gpuops.core.sources.base import SourceError, TelemetrySource

log = logging.getLogger("gpuops.sources")

SIMULATED_NOTICE = "Simulated fleet: no NVIDIA driver found"
DEFAULT_DEMO_GPUS = 64

SOURCE_HELP = (
    "telemetry source: auto (nvml if a driver loads, else the simulated fleet), "
    "nvml, demo[:N] (a simulated fleet of N GPUs, default 64), "
    "scrape:URL[,URL...] or scrape:@FILE (dcgm-exporter / gpuops agent endpoints), "
    "or prometheus:URL[?selector=...] (a Prometheus server that scrapes them)"
)


def _parse_demo_count(spec: str) -> int:
    _, _, count = spec.partition(":")
    if not count:
        return DEFAULT_DEMO_GPUS
    try:
        n_gpus = int(count)
    except ValueError:
        raise SourceError(f"bad source {spec!r}: the GPU count after 'demo:' must be a whole number") from None
    if n_gpus < 1:
        raise SourceError(f"bad source {spec!r}: the simulated fleet needs at least 1 GPU")
    return n_gpus


def open_source(spec: str = "auto", *, seed: int = 0, topology: Path | None = None) -> TelemetrySource:
    """Open the source named by `spec`, with the sites and racks of a topology file applied when
    one is given; raises SourceError with one clear line on failure."""
    if topology is None:
        return _open_source(spec, seed=seed)
    from gpuops.core.topology import TopologyError, TopologySource, load_topology

    try:
        placements = load_topology(topology)
    except TopologyError as exc:
        raise SourceError(str(exc)) from None
    return TopologySource(_open_source(spec, seed=seed), placements)


def _open_source(spec: str, *, seed: int) -> TelemetrySource:
    """`auto` tries NVML and falls back to the simulated fleet, saying so in `notice`.
    """
    kind = spec.split(":", 1)[0].strip().lower()
    if kind == "nvml":
        from gpuops.core.sources.nvml import NvmlSource

        return NvmlSource()
    if kind == "demo":
        n_gpus = _parse_demo_count(spec)
        from gpuops.core.sources.demo import DemoSource

        return DemoSource(n_gpus=n_gpus, seed=seed)
    if kind == "scrape":
        from gpuops.core.sources.scrape import ScrapeSource

        return ScrapeSource.from_spec(spec)
    if kind == "prometheus":
        from gpuops.core.sources.prometheus import PrometheusSource

        return PrometheusSource.from_spec(spec)
    if kind == "auto":
        from gpuops.core.sources.nvml import NvmlSource

        try:
            return NvmlSource()
        except SourceError as exc:
            log.info("NVML unavailable (%s); using the simulated fleet", exc)
            from gpuops.core.sources.demo import DemoSource

            source = DemoSource(n_gpus=DEFAULT_DEMO_GPUS, seed=seed)
            source.notice = SIMULATED_NOTICE
            return source
    raise SourceError(f"unknown source {spec!r}: expected auto, nvml, demo[:N], scrape:URL,... or prometheus:URL")

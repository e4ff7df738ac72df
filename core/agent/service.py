"""The agent as one object: a source polled in the background, served at /metrics."""

from __future__ import annotations

import ssl

from prometheus_client.registry import CollectorRegistry

from gpuops.core.agent.basic_auth import BasicAuth
from gpuops.core.agent.collector import FleetCollector
from gpuops.core.agent.poller import DEFAULT_INTERVAL_S, SamplePoller
from gpuops.core.agent.server import ListenAddress, MetricsServer
from gpuops.core.sources.base import TelemetrySource

FIRST_POLL_WAIT_S = 5.0


class Agent:
    """Owns `source` from construction on: `stop()` closes it.

    Its own registry (not prometheus_client's global one) holds only the fleet collector, so
    nothing but GPU metrics is exposed: no Python process or GC metrics.
    """

    def __init__(
        self,
        source: TelemetrySource,
        listen: ListenAddress,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        tls: ssl.SSLContext | None = None,
        basic_auth: BasicAuth | None = None,
    ) -> None:
        self.source = source
        self.poller = SamplePoller(source, interval_s)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(FleetCollector(self.poller.snapshot))
        try:
            self.server = MetricsServer(listen, registry, tls=tls, basic_auth=basic_auth)
        except OSError:
            source.close()
            raise

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> None:
        """Start polling, give the first poll a moment so the first scrape has GPUs, then serve."""
        self.poller.start()
        self.poller.wait_first_poll(FIRST_POLL_WAIT_S)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        self.poller.stop()

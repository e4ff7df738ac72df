"""The agent as one object: a source polled in the background, served at /metrics and /health."""

from __future__ import annotations

import ssl

from gpuops.core.agent.basic_auth import BasicAuth
from gpuops.core.agent.collector import snapshot_exposition
from gpuops.core.agent.exposition import RenderedMetrics
from gpuops.core.agent.poller import DEFAULT_INTERVAL_S, AgentSnapshot, SamplePoller
from gpuops.core.agent.server import ListenAddress, MetricsServer
from gpuops.core.sources.base import TelemetrySource

FIRST_POLL_WAIT_S = 5.0


class Agent:
    """Owns `source` from construction on: `stop()` closes it.

    Only GPU metrics are exposed (no Python process or GC metrics), and each poll's answer is
    rendered once, on the first scrape after it, however many scrapers ask.
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
        self._rendered: tuple[AgentSnapshot, RenderedMetrics] | None = None
        try:
            self.server = MetricsServer(
                listen, metrics=self._metrics, problem=self.poller.problem, tls=tls, basic_auth=basic_auth,
            )
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

    def _metrics(self) -> RenderedMetrics:
        """Called on the server's thread only."""
        snapshot = self.poller.snapshot()
        if self._rendered is None or self._rendered[0] is not snapshot:
            self._rendered = (snapshot, RenderedMetrics(snapshot_exposition(snapshot)))
        return self._rendered[1]

"""The agent as one object: a source polled in the background, served at /metrics and /health."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping

from gpuops.core.agent.basic_auth import BasicAuth
from gpuops.core.agent.collector import fleet_metrics
from gpuops.core.agent.exposition import RenderedMetrics, render
from gpuops.core.agent.poller import DEFAULT_INTERVAL_S, AgentSnapshot, SamplePoller
from gpuops.core.agent.server import ListenAddress, MetricsServer
from gpuops.core.lifecycle.metrics import lifecycle_family
from gpuops.core.lifecycle.states import State
from gpuops.core.sources.base import TelemetrySource

FIRST_POLL_WAIT_S = 5.0


class Agent:
    """Owns `source` from construction on: `stop()` closes it.

    Only GPU metrics are exposed (no Python process or GC metrics), and each poll's answer is
    rendered once, on the first scrape after it, however many scrapers ask. `lifecycle` gives the
    nodes' lifecycle states for `gpuops_node_lifecycle` (None from it: unknown, the family is left
    out); without it every node is in production, as nothing is recorded.
    """

    def __init__(
        self,
        source: TelemetrySource,
        listen: ListenAddress,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        tls: ssl.SSLContext | None = None,
        basic_auth: BasicAuth | None = None,
        lifecycle: Callable[[], Mapping[str, State] | None] | None = None,
    ) -> None:
        self.source = source
        self._lifecycle = lifecycle
        self.poller = SamplePoller(source, interval_s)
        self._rendered: tuple[AgentSnapshot, Mapping[str, State] | None, RenderedMetrics] | None = None
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
        states = {} if self._lifecycle is None else self._lifecycle()
        if self._rendered is None or self._rendered[0] is not snapshot or self._rendered[1] != states:
            families = list(fleet_metrics(snapshot))
            if snapshot.sample is not None and states is not None:
                families.append(lifecycle_family((gpu.node for gpu in snapshot.sample.gpus), states))
            self._rendered = (snapshot, states, RenderedMetrics(render(families)))
        return self._rendered[2]

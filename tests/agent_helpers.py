"""Shared pieces for tests and benchmarks that run the agent: a source that plays back given
samples, a running agent, a parsed view of an exposition answer, and raw-socket clients."""

from __future__ import annotations

import http.client
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gpuops.core.agent.server import ListenAddress
from gpuops.core.agent.service import Agent
from gpuops.core.sources.base import SourceError, TelemetrySource
from gpuops.core.telemetry import FleetSample


class PlaybackSource(TelemetrySource):
    """Returns the given samples in turn (the last one forever); `gate` can hold a poll back."""

    name = "playback"

    def __init__(self, samples: list[FleetSample | SourceError]) -> None:
        self._samples = list(samples)
        self.polls = 0
        self.closed = False
        self.gate: threading.Event | None = None

    def poll(self) -> FleetSample:
        if self.gate is not None:
            self.gate.wait(30)
        item = self._samples[min(self.polls, len(self._samples) - 1)]
        self.polls += 1
        if isinstance(item, SourceError):
            raise item
        return item

    def close(self) -> None:
        self.closed = True


@dataclass
class Exposition:
    """Families by name, and (sample name -> list of (labels, value))."""

    types: dict[str, str] = field(default_factory=dict)
    samples: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def parse(cls, text: str) -> Exposition:
        """Through prometheus_client's parser; samples keep the name they have on the wire (the
        parser calls a counter declared without `_total`, as dcgm-exporter's are, `NAME_total`)."""
        exposition = cls()
        declared = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
        for family in text_string_to_metric_families(text):
            exposition.types[family.name] = family.type
            bare_counter = family.type == "counter" and family.name in declared
            for sample in family.samples:
                name = family.name if bare_counter and sample.name == family.name + "_total" else sample.name
                exposition.samples[name].append((sample.labels, float(sample.value)))
        return exposition

    def value(self, name: str, **labels: str) -> float:
        matches = [v for got, v in self.samples.get(name, []) if all(got.get(k) == want for k, want in labels.items())]
        assert len(matches) == 1, f"{name}{labels}: {len(matches)} matching samples"
        return matches[0]


def fetch(
    url: str, *, headers: dict[str, str] | None = None, method: str = "GET", context=None,
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request, 4xx/5xx included."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def self_signed_certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway certificate and key for 127.0.0.1 (openssl CLI)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@contextmanager
def serving(source: TelemetrySource, **kwargs) -> Iterator[Agent]:
    """An agent on a free loopback port, polling every 0.05 s unless told otherwise; stopped after."""
    agent = Agent(source, ListenAddress("127.0.0.1", 0), interval_s=kwargs.pop("interval_s", 0.05), **kwargs)
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def address(agent: Agent) -> tuple[str, int]:
    return agent.server.server_address


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def read_response(sock: socket.socket, *, head_request: bool = False) -> RawResponse:
    """One response from `sock`, its body read by Content-Length (none for HEAD)."""
    response = http.client.HTTPResponse(sock, method="HEAD" if head_request else "GET")
    response.begin()
    body = response.read()
    return RawResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, body)


def closed_by_peer(sock: socket.socket, timeout_s: float = 10.0) -> bool:
    """True when the other end closes (or resets) `sock` within `timeout_s` without sending more."""
    sock.settimeout(timeout_s)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def trickling_clients(host: str, port: int, count: int, line_bytes: int) -> list[socket.socket]:
    """`count` connections that each began a request and sent one long header line without its end,
    as a slowloris or an oversized-header attacker leaves them."""
    clients = []
    for _ in range(count):
        sock = socket.create_connection((host, port), timeout=10)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * line_bytes)
        clients.append(sock)
    return clients


def rss_bytes(pid: int) -> int:
    """Resident set size of process `pid`, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")

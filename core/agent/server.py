"""The agent's HTTP endpoint: `/metrics` and `/health`, and nothing else.

Safe by default: it listens on 127.0.0.1 unless another address is given explicitly, every
other path is 404, every method but GET/HEAD is 405. TLS and basic auth are optional.

Built to hold under hundreds of scrapers and hostile clients on one event loop thread: a
connection costs a few kilobytes, not a thread. Every request head is read under the limits of
core.agent.http_head (before authentication), the head must arrive within HEAD_TIMEOUT_S
(slowloris), a response the client does not read is dropped after WRITE_TIMEOUT_S, and past
MAX_CONNECTIONS new connections are closed at once. Connections are HTTP/1.1 keep-alive (as
Prometheus expects) and stay open for IDLE_TIMEOUT_S between requests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

from gpuops import __version__
from gpuops.core.agent.basic_auth import BasicAuth
from gpuops.core.agent.exposition import CONTENT_TYPE, RenderedMetrics
from gpuops.core.agent.http_head import MAX_LINE_BYTES, BadRequest, RequestHead, read_headers, read_request_line
from gpuops.core.logonce import LastingProblem

log = logging.getLogger("gpuops.agent")

DEFAULT_LISTEN = "127.0.0.1:9400"  # dcgm-exporter's port, on loopback only
METRICS_PATH = "/metrics"
HEALTH_PATH = "/health"
SERVER_NAME = f"gpuops-agent/{__version__}"
LISTEN_BACKLOG = 1024  # hundreds of scrapers connecting at once (the kernel caps it at somaxconn)
MAX_CONNECTIONS = 1024
HEAD_TIMEOUT_S = 10.0  # a request head (and a TLS handshake) must be complete within this
IDLE_TIMEOUT_S = 90.0  # a kept-alive connection waits this long for its next request (Go's idle default)
WRITE_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
_TEXT = "text/plain; charset=utf-8"


class ListenAddressError(ValueError):
    """A --listen value that is not HOST:PORT; the message says what is wrong."""


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> ListenAddress:
        """"127.0.0.1:9400", "[::1]:9400", "0.0.0.0:9400". The host is required: listening on
        every interface has to be asked for by writing 0.0.0.0 or [::]."""
        host, sep, port_text = text.strip().rpartition(":")
        if not sep or not host:
            raise ListenAddressError(
                f"bad listen address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9400 "
                "(write 0.0.0.0:9400 to listen on every interface)"
            )
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if host != "localhost":
                raise ListenAddressError(f"bad listen address {text!r}: {host!r} is not an IP address") from None
        try:
            port = int(port_text)
        except ValueError:
            raise ListenAddressError(f"bad listen address {text!r}: the port must be a number") from None
        if not 0 <= port <= 65535:
            raise ListenAddressError(f"bad listen address {text!r}: the port must be 0-65535")
        return cls(host, port)


def server_tls_context(cert_file: str | Path, key_file: str | Path) -> ssl.SSLContext:
    """TLS 1.2+ server context; raises ValueError naming the file when the pair is unusable."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot use TLS certificate {cert_file} with key {key_file}: {exc}") from None
    return context


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an Accept-Encoding value allows gzip (RFC 9110 12.5.3: `gzip`, or `*`, with q > 0)."""
    weights: dict[str, float] = {}
    for item in (accept_encoding or "").split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights.setdefault(coding.lower(), weight)
    return weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0))) > 0


@dataclass(frozen=True)
class _Response:
    status: HTTPStatus
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = _TEXT


class MetricsServer:
    """Serves `metrics()` at /metrics and `problem()` at /health on its own thread (`start()` / `stop()`).

    `metrics` and `problem` are called on the server's thread only. The listening socket is
    bound in the constructor, so a busy port fails there (OSError) and `url` is known at once.
    """

    def __init__(
        self,
        listen: ListenAddress,
        *,
        metrics: Callable[[], RenderedMetrics],
        problem: Callable[[], str | None],
        tls: ssl.SSLContext | None = None,
        basic_auth: BasicAuth | None = None,
    ) -> None:
        family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
        self._socket = socket.create_server((listen.host, listen.port), family=family, backlog=LISTEN_BACKLOG)
        self.server_address: tuple[str, int] = self._socket.getsockname()[:2]
        self._metrics = metrics
        self._problem = problem
        self._tls = tls
        self._basic_auth = basic_auth
        self._loop = asyncio.new_event_loop()
        self._open: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._refusing = LastingProblem(log, logging.WARNING)
        self._thread = threading.Thread(target=self._serve, name="gpuops-agent-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address
        shown = f"[{host}]" if ":" in str(host) else host
        return f"{'https' if self._tls else 'http'}://{shown}:{port}{METRICS_PATH}"

    @property
    def connections(self) -> int:
        """Connections open now (for tests and benchmarks)."""
        return len(self._open)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(STOP_TIMEOUT_S + 1.0)
        else:
            self._socket.close()
            self._loop.close()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(
            self._connection, sock=self._socket, backlog=LISTEN_BACKLOG, limit=MAX_LINE_BYTES,
            ssl=self._tls, ssl_handshake_timeout=HEAD_TIMEOUT_S if self._tls else None,
        ))
        try:
            self._loop.run_forever()
        finally:
            server.close()
            open_now = dict(self._open)  # each connection leaves self._open as it ends
            for writer in open_now.values():
                writer.transport.abort()  # its reads see the end, its writes fail: it ends on its own
            if open_now:
                self._loop.run_until_complete(asyncio.wait(open_now, timeout=STOP_TIMEOUT_S))
            self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._open) >= MAX_CONNECTIONS:
            self._refusing.occur(f"{MAX_CONNECTIONS} connections open: refusing new ones until some close")
            writer.transport.abort()
            return
        self._refusing.resolve()
        task = asyncio.current_task()
        assert task is not None
        self._open[task] = writer
        writer.transport.set_write_buffer_limits(high=0)  # drain() waits until the kernel has it all
        try:
            await self._exchange(reader, writer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            log.debug("connection from %s failed", writer.get_extra_info("peername"), exc_info=True)
        finally:
            del self._open[task]
            writer.transport.abort()  # everything owed was drained; never linger on a dead client

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Requests on one connection until it closes, times out or cannot carry another."""
        first = True
        while True:
            try:
                async with asyncio.timeout(HEAD_TIMEOUT_S if first else IDLE_TIMEOUT_S):
                    started = await read_request_line(reader)
                if started is None:
                    return
                async with asyncio.timeout(HEAD_TIMEOUT_S):
                    head = await read_headers(reader, *started)
            except BadRequest as refused:
                await self._send(writer, _Response(refused.status, f"{refused.reason}\n".encode()), None, False)
                return
            except TimeoutError:
                if first:  # a connection that never sent a whole request (slowloris)
                    await self._send(writer, _Response(HTTPStatus.REQUEST_TIMEOUT, b"request timeout\n"), None, False)
                return
            if head is None:
                return
            keep_alive = head.keep_alive and not head.has_body
            await self._send(writer, self._answer(head), head, keep_alive)
            if not keep_alive:
                return
            first = False

    def _answer(self, head: RequestHead) -> _Response:
        if self._basic_auth is not None and not self._basic_auth.check(head.header("authorization")):
            return _Response(HTTPStatus.UNAUTHORIZED, b"unauthorized\n", (("WWW-Authenticate", 'Basic realm="gpuops"'),))
        if head.method not in ("GET", "HEAD"):
            return _Response(HTTPStatus.METHOD_NOT_ALLOWED, b"method not allowed\n", (("Allow", "GET, HEAD"),))
        path = urlsplit(head.target).path
        if path == METRICS_PATH:
            rendered = self._metrics()
            vary = ("Vary", "Accept-Encoding")
            if accepts_gzip(head.header("accept-encoding")):
                return _Response(HTTPStatus.OK, rendered.gzipped(), (("Content-Encoding", "gzip"), vary), CONTENT_TYPE)
            return _Response(HTTPStatus.OK, rendered.plain, (vary,), CONTENT_TYPE)
        if path == HEALTH_PATH:
            problem = self._problem()
            if problem is None:
                return _Response(HTTPStatus.OK, b"OK\n")
            return _Response(HTTPStatus.SERVICE_UNAVAILABLE, f"KO: {problem}\n".encode())
        return _Response(HTTPStatus.NOT_FOUND, b"not found\n")

    async def _send(self, writer: asyncio.StreamWriter, response: _Response, head: RequestHead | None, keep_alive: bool) -> None:
        lines = [
            f"HTTP/1.1 {response.status.value} {response.status.phrase}",
            f"Server: {SERVER_NAME}",
            f"Date: {formatdate(usegmt=True)}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            *(f"{name}: {value}" for name, value in response.headers),
        ]
        if not keep_alive:
            lines.append("Connection: close")
        elif head is not None and head.version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if head is None or head.method != "HEAD":
            data += response.body
        writer.write(data)
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await writer.drain()

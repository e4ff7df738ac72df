"""The agent's HTTP endpoint: `/metrics` and nothing else.

Safe by default: it listens on 127.0.0.1 unless another address is given explicitly, every
other path is 404, every method but GET/HEAD is 405, and the server names no software version.
TLS and basic auth are optional. The TLS handshake runs on the request's own thread, so a
slow client cannot hold up the others; each connection has a time limit.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from gpuops.core.agent.basic_auth import BasicAuth

log = logging.getLogger("gpuops.agent")

DEFAULT_LISTEN = "127.0.0.1:9400"  # dcgm-exporter's port, on loopback only
METRICS_PATH = "/metrics"
CONNECTION_TIMEOUT_S = 10.0
# The classic text format, as dcgm-exporter serves it; every Prometheus version reads it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ListenAddressError(ValueError):
    """A --listen value that is not HOST:PORT; the message says what is wrong."""


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> "ListenAddress":
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


class _MetricsHandler(BaseHTTPRequestHandler):
    server: "MetricsServer"
    server_version = "gpuops-agent"
    sys_version = ""
    timeout = CONNECTION_TIMEOUT_S

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(send_body=False)

    def _refuse_method(self) -> None:
        if self._authorized():
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"method not allowed\n", extra={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method  # noqa: N815

    def _authorized(self) -> bool:
        auth = self.server.basic_auth
        if auth is None or auth.check(self.headers.get("Authorization")):
            return True
        self._send(
            HTTPStatus.UNAUTHORIZED, b"unauthorized\n", extra={"WWW-Authenticate": 'Basic realm="gpuops"'}
        )
        return False

    def _answer(self, send_body: bool) -> None:
        if not self._authorized():
            return
        if urlsplit(self.path).path != METRICS_PATH:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", send_body=send_body)
            return
        body = generate_latest(self.server.registry)
        self._send(HTTPStatus.OK, body, content_type=CONTENT_TYPE, send_body=send_body)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        *,
        content_type: str = "text/plain; charset=utf-8",
        extra: dict[str, str] | None = None,
        send_body: bool = True,
    ) -> None:
        if status != HTTPStatus.OK:
            self.close_connection = True  # any request body is left unread: do not reuse the connection
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
        log.debug("%s %s", self.address_string(), format % args)


class MetricsServer(ThreadingHTTPServer):
    """Serves `registry` at /metrics on its own daemon thread (`start()` / `stop()`)."""

    daemon_threads = True
    protocol_version = "HTTP/1.1"  # keep-alive, as Prometheus expects

    def __init__(
        self,
        listen: ListenAddress,
        registry: CollectorRegistry,
        *,
        tls: ssl.SSLContext | None = None,
        basic_auth: BasicAuth | None = None,
    ) -> None:
        if ":" in listen.host:
            self.address_family = socket.AF_INET6
        super().__init__((listen.host, listen.port), _MetricsHandler)
        self.registry = registry
        self.basic_auth = basic_auth
        self.tls = tls is not None
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self._thread = threading.Thread(target=self.serve_forever, name="gpuops-agent-http", daemon=True)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that drops the connection or fails the TLS handshake is its own problem."""
        log.debug("connection from %s failed", client_address, exc_info=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"{'https' if self.tls else 'http'}://{shown}:{port}{METRICS_PATH}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(CONNECTION_TIMEOUT_S)

"""Bounded HTTP GETs for the network sources (scrape targets, the Prometheus API).

Standard library only. Each worker thread keeps its keep-alive connections, so polling a
thousand endpoints every second does not pay a TCP (and TLS) handshake per endpoint per poll.
Every request has a total deadline and a body-size cap: a slow or endless answer costs one
target a timeout, never the poll. The deadline is enforced by a watchdog thread that shuts the
socket down when it passes (a socket timeout alone restarts at every byte, so a target sending one
byte a second would never time out), and `close()` shuts down every request still running, so a
hung peer never keeps a thread, or the process, alive.
"""

from __future__ import annotations

import base64
import heapq
import http.client
import itertools
import os
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_MAX_BYTES = 64 * 2**20
_CONNECTIONS_PER_THREAD = 256
_CHUNK = 256 * 1024


class FetchError(Exception):
    """One request failed; the message is a short reason ("timed out after 2.0 s", "HTTP 404 Not Found").
    `body` is the answer of a non-200 response (APIs explain themselves there)."""

    def __init__(self, message: str, body: bytes = b"") -> None:
        super().__init__(message)
        self.body = body


def _read_secret(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read credentials file {path}: {exc}") from None


@dataclass(frozen=True)
class HttpOptions:
    """How to reach an endpoint: TLS trust and credentials (never logged or shown)."""

    ca_file: str | None = None
    insecure: bool = False
    bearer_token: str | None = None
    basic_user: str | None = None
    basic_password: str | None = None

    def __repr__(self) -> str:  # keep credentials out of logs and tracebacks
        return f"HttpOptions(ca_file={self.ca_file!r}, insecure={self.insecure}, auth={self.auth_kind})"

    @property
    def auth_kind(self) -> str:
        return "bearer" if self.bearer_token else "basic" if self.basic_user else "none"

    @classmethod
    def from_env(cls, prefix: str, environ: Mapping[str, str] | None = None, **overrides: str | None) -> HttpOptions:
        """Options from `<prefix>_CA_FILE`, `_INSECURE` (1/true), `_BEARER_TOKEN(_FILE)`,
        `_USERNAME`, `_PASSWORD(_FILE)`; keyword overrides (same names, lower case) win."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = overrides.get(name.lower())
            return value if value is not None else (env.get(f"{prefix}_{name}") or None)

        token = get("BEARER_TOKEN")
        if token is None and get("BEARER_TOKEN_FILE"):
            token = _read_secret(get("BEARER_TOKEN_FILE") or "")
        password = get("PASSWORD")
        if password is None and get("PASSWORD_FILE"):
            password = _read_secret(get("PASSWORD_FILE") or "")
        user = get("USERNAME")
        if password is not None and user is None:
            raise ValueError(f"a password was given for {prefix} but no username ({prefix}_USERNAME)")
        if token and user:
            raise ValueError(f"give either a bearer token or a username for {prefix}, not both")
        insecure = (get("INSECURE") or "").lower() in {"1", "true", "yes"}
        ca_file = get("CA_FILE")
        if ca_file is not None and not Path(ca_file).is_file():
            raise ValueError(f"CA file {ca_file} does not exist")
        return cls(ca_file=ca_file, insecure=insecure, bearer_token=token, basic_user=user, basic_password=password)

    def headers(self) -> dict[str, str]:
        if self.bearer_token:
            return {"Authorization": f"Bearer {self.bearer_token}"}
        if self.basic_user is not None:
            pair = f"{self.basic_user}:{self.basic_password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        return {}

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


class _Watchdog:
    """Shuts down the socket of every request still running at its deadline (one daemon thread
    for all of a fetcher's requests, started on first use)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._running: dict[int, http.client.HTTPConnection] = {}
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, connection: http.client.HTTPConnection, deadline: float) -> int:
        with self._cond:
            token = next(self._tokens)
            self._running[token] = connection
            if not self._heap or deadline < self._heap[0][0]:
                self._cond.notify()
            heapq.heappush(self._heap, (deadline, token))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gpuops-http-deadlines", daemon=True)
                self._thread.start()
            return token

    def done(self, token: int) -> None:
        with self._cond:
            self._running.pop(token, None)

    def close(self) -> None:
        """Abort every running request now and stop the thread."""
        with self._cond:
            self._closed = True
            for connection in self._running.values():
                _abort(connection)
            self._running.clear()
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    _, token = heapq.heappop(self._heap)
                    connection = self._running.pop(token, None)
                    if connection is not None:
                        _abort(connection)
                self._cond.wait(self._heap[0][0] - now if self._heap else None)


def _abort(connection: http.client.HTTPConnection) -> None:
    """Wake a thread blocked on this connection: shutdown (unlike close) interrupts a blocked recv.
    At the plain-socket level, so a TLS socket in use by another thread is not touched."""
    sock = connection.sock
    if sock is not None:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


class HttpFetcher:
    """GET and POST with keep-alive per worker thread. Safe to share between threads; `close()`
    aborts running requests and ends all connections."""

    def __init__(
        self,
        options: HttpOptions | None = None,
        *,
        timeout_s: float = 2.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.options = options or HttpOptions()
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self._headers = {"Accept": "text/plain;version=0.0.4, application/json;q=0.9, */*;q=0.1", **self.options.headers()}
        self._ssl = self.options.ssl_context()
        self._local = threading.local()
        self._all: set[http.client.HTTPConnection] = set()
        self._all_lock = threading.Lock()
        self._watchdog = _Watchdog()

    def get(self, url: str) -> bytes:
        """The body of a 200 answer; raises FetchError otherwise."""
        return self.request("GET", url)

    def post(self, url: str, body: bytes, content_type: str) -> bytes:
        """POST `body`; the answer of a 2xx; raises FetchError otherwise."""
        return self.request("POST", url, body, {"Content-Type": content_type})

    def request(self, method: str, url: str, body: bytes | None = None, headers: Mapping[str, str] | None = None) -> bytes:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError(f"not an http(s) URL: {url}")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        deadline = time.monotonic() + self.timeout_s
        key = (parts.scheme, parts.netloc)
        for attempt in range(2):  # a kept-alive connection the server already closed gets one retry
            connection, reused = self._connection(key, parts.scheme, parts.hostname, parts.port)
            try:
                return self._request(connection, method, target, body, headers or {}, deadline)
            except FetchError:
                self._discard(key, connection)
                raise
            except (OSError, http.client.HTTPException) as exc:
                self._discard(key, connection)
                if isinstance(exc, TimeoutError) or time.monotonic() >= deadline:
                    raise FetchError(f"timed out after {self.timeout_s:g} s") from None
                if (
                    reused
                    and attempt == 0
                    and isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError))
                ):
                    continue
                raise FetchError(_describe(exc)) from None
        raise FetchError("connection closed by the server")

    def close(self) -> None:
        self._watchdog.close()
        with self._all_lock:
            connections, self._all = self._all, set()
        for connection in connections:
            connection.close()

    def _request(
        self, connection: http.client.HTTPConnection, method: str, target: str, body: bytes | None,
        headers: Mapping[str, str], deadline: float,
    ) -> bytes:
        token = self._watchdog.watch(connection, deadline)
        try:
            return self._exchange(connection, method, target, body, headers, deadline)
        finally:
            self._watchdog.done(token)

    def _exchange(
        self, connection: http.client.HTTPConnection, method: str, target: str, body: bytes | None,
        headers: Mapping[str, str], deadline: float,
    ) -> bytes:
        connection.timeout = max(0.01, deadline - time.monotonic())
        if connection.sock is not None:
            connection.sock.settimeout(connection.timeout)
        connection.request(method, target, body=body, headers={**self._headers, **headers})
        response = connection.getresponse()
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if connection.sock is not None:
                connection.sock.settimeout(remaining)
            chunk = response.read(_CHUNK)  # read(), unlike read1(), frees the connection at the end
            if not chunk:
                break
            size += len(chunk)
            if size > self.max_bytes:
                raise FetchError(f"answer larger than {self.max_bytes // 2**20} MiB")
            chunks.append(chunk)
        if time.monotonic() >= deadline:  # the watchdog cut it: an answer read to EOF may be short
            raise TimeoutError
        if not 200 <= response.status < 300 or (method == "GET" and response.status != 200):
            raise FetchError(f"HTTP {response.status} {response.reason}".rstrip(), b"".join(chunks))
        if response.will_close:
            self._forget(connection)
        return b"".join(chunks)

    def _pool(self) -> OrderedDict[tuple[str, str], http.client.HTTPConnection]:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = OrderedDict()
        return pool

    def _connection(
        self, key: tuple[str, str], scheme: str, host: str, port: int | None
    ) -> tuple[http.client.HTTPConnection, bool]:
        pool = self._pool()
        connection = pool.get(key)
        if connection is not None and connection.sock is not None:
            pool.move_to_end(key)
            return connection, True
        if scheme == "https":
            connection = http.client.HTTPSConnection(host, port, timeout=self.timeout_s, context=self._ssl)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self.timeout_s)
        pool[key] = connection
        with self._all_lock:
            self._all.add(connection)
        while len(pool) > _CONNECTIONS_PER_THREAD:
            _, oldest = pool.popitem(last=False)
            self._forget(oldest)
        return connection, False

    def _discard(self, key: tuple[str, str], connection: http.client.HTTPConnection) -> None:
        pool = self._pool()
        if pool.get(key) is connection:
            del pool[key]
        self._forget(connection)

    def _forget(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        with self._all_lock:
            self._all.discard(connection)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "connection closed without an answer"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__

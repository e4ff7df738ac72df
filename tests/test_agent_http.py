"""The agent's HTTP side through real sockets on 127.0.0.1: keep-alive, gzip, /health, the Server
header, and hostile clients (oversized heads, slowloris, floods of connections)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import gpuops
from gpuops.core.agent import poller as poller_module
from gpuops.core.agent import server as server_module
from gpuops.core.agent.basic_auth import BasicAuth
from gpuops.core.agent.http_head import MAX_HEAD_BYTES, MAX_HEADERS, MAX_LINE_BYTES
from gpuops.core.agent.server import LISTEN_BACKLOG, accepts_gzip
from gpuops.core.sources.base import SourceError
from tests.agent_helpers import (
    PlaybackSource,
    address,
    closed_by_peer,
    fetch,
    read_response,
    rss_bytes,
    serving,
    trickling_clients,
)
from tests.samples import make_sample
from tests.servers import wait_until

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "s3cret"
AUTH = BasicAuth({"ops": hashlib.sha256(PASSWORD.encode()).digest()})
CREDENTIALS = "Basic " + base64.b64encode(f"ops:{PASSWORD}".encode()).decode()


def _connect(agent) -> socket.socket:
    return socket.create_connection(address(agent), timeout=10)


def _get(sock: socket.socket, path: str = "/metrics", *, version: str = "HTTP/1.1", extra: str = "") -> None:
    sock.sendall(f"GET {path} {version}\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())


def test_http11_keeps_the_connection_for_many_scrapes() -> None:
    with serving(PlaybackSource([make_sample(8)])) as agent:
        connection = http.client.HTTPConnection(*address(agent), timeout=10)
        ports = set()
        for _ in range(5):
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            assert response.status == 200 and not response.will_close
            assert b"DCGM_FI_DEV_GPU_TEMP" in response.read()
            ports.add(connection.sock.getsockname()[1])
        assert len(ports) == 1
        assert agent.server.connections == 1
        connection.close()


def test_http10_closes_unless_asked_to_keep_alive() -> None:
    with serving(PlaybackSource([make_sample(1)])) as agent:
        with _connect(agent) as sock:
            _get(sock, version="HTTP/1.0")
            response = read_response(sock)
            assert response.status == 200 and response.headers["connection"] == "close"
            assert closed_by_peer(sock)
        with _connect(agent) as sock:
            for _ in range(2):
                _get(sock, version="HTTP/1.0", extra="Connection: keep-alive\r\n")
                response = read_response(sock)
                assert response.status == 200 and response.headers["connection"] == "keep-alive"
        with _connect(agent) as sock:
            _get(sock, extra="Connection: close\r\n")
            assert read_response(sock).headers["connection"] == "close"
            assert closed_by_peer(sock)


def test_an_idle_kept_alive_connection_is_closed_after_the_idle_timeout(monkeypatch) -> None:
    monkeypatch.setattr(server_module, "IDLE_TIMEOUT_S", 0.5)
    with serving(PlaybackSource([make_sample(1)])) as agent, _connect(agent) as sock:
        _get(sock)
        assert read_response(sock).status == 200
        assert closed_by_peer(sock, timeout_s=5.0)  # closed quietly: no unsolicited 408 on an idle line
    assert agent.server.connections == 0


def test_gzip_when_the_scraper_asks_for_it() -> None:
    with serving(PlaybackSource([make_sample(8)])) as agent:
        status, headers, plain = fetch(agent.url)
        assert status == 200 and "Content-Encoding" not in headers and headers["Vary"] == "Accept-Encoding"
        with _connect(agent) as sock:
            _get(sock, extra="Accept-Encoding: gzip\r\n")
            zipped = read_response(sock)
            sock.sendall(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
            head = read_response(sock, head_request=True)
        assert zipped.headers["content-encoding"] == "gzip"
        assert gzip.decompress(zipped.body) == plain
        assert len(zipped.body) * 4 < len(plain)
        assert head.body == b"" and int(head.headers["content-length"]) == len(zipped.body)


@pytest.mark.parametrize(
    ("header", "gzip_ok"),
    [
        ("gzip", True), ("gzip, deflate, br", True), ("deflate;q=1, gzip;q=0.5", True), ("*", True),
        ("x-gzip", True), (None, False), ("", False), ("identity", False), ("gzip;q=0", False),
        ("gzip;q=0, *", False), ("br, *;q=0", False), ("GZIP", True), ("gzip;q=bogus", False),
    ],
)
def test_accept_encoding_is_read_as_rfc_9110_says(header: str | None, gzip_ok: bool) -> None:
    assert accepts_gzip(header) is gzip_ok


def test_server_header_names_the_gpuops_version_and_nothing_else() -> None:
    with serving(PlaybackSource([make_sample(1)])) as agent:
        for url in (agent.url, agent.url.replace("/metrics", "/health"), agent.url.replace("/metrics", "/nope")):
            assert fetch(url)[1]["Server"] == f"gpuops-agent/{gpuops.__version__}"


def test_health_is_200_while_the_source_answers_and_503_when_it_fails() -> None:
    health = "/health"
    with serving(PlaybackSource([make_sample(2)])) as agent:
        status, _, body = fetch(agent.url.replace("/metrics", health))
        assert (status, body) == (200, b"OK\n")
    with serving(PlaybackSource([SourceError("NVML: driver not loaded")])) as agent:
        status, _, body = fetch(agent.url.replace("/metrics", health))
        assert status == 503 and body == b"KO: the last poll failed: NVML: driver not loaded\n"


def test_health_is_503_when_a_poll_hangs_although_metrics_still_serve(monkeypatch) -> None:
    monkeypatch.setattr(poller_module, "HUNG_POLL_MIN_S", 0.3)
    source = PlaybackSource([make_sample(2)])
    with serving(source) as agent:
        health = agent.url.replace("/metrics", "/health")
        assert fetch(health)[0] == 200
        source.gate = threading.Event()  # the next poll now hangs, as in a stuck driver call
        try:
            wait_until("/health to report the hung source", lambda: fetch(health)[0] == 503, 10.0, interval_s=0.1)
            assert b"has not answered for" in fetch(health)[2]
            assert fetch(agent.url)[0] == 200
        finally:
            source.gate.set()
        wait_until("/health to recover", lambda: fetch(health)[0] == 200, 10.0, interval_s=0.1)


def test_health_needs_the_credentials_when_basic_auth_is_on() -> None:
    with serving(PlaybackSource([make_sample(1)]), basic_auth=AUTH) as agent:
        health = agent.url.replace("/metrics", "/health")
        assert fetch(health)[0] == 401
        assert fetch(health, headers={"Authorization": CREDENTIALS})[0] == 200


FILLER = "X-Filler: " + "a" * 100 + "\r\n"
BIG_FIELD = "X-Big: " + "a" * 4000 + "\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (f"GET /metrics HTTP/1.1\r\n{FILLER * (MAX_HEADERS + 1)}\r\n".encode(), 431),
        (f"GET /metrics HTTP/1.1\r\nX-Long: {'a' * MAX_LINE_BYTES}\r\n\r\n".encode(), 431),
        (f"GET /{'a' * MAX_LINE_BYTES} HTTP/1.1\r\n\r\n".encode(), 414),
        (f"GET /metrics HTTP/1.1\r\n{BIG_FIELD * (MAX_HEAD_BYTES // 4000 + 1)}\r\n".encode(), 431),
        (b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\n folded: continuation\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
        (b"GET /metrics\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
        (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
        (b"GET /metrics FTP/1.0\r\n\r\n", 400),
    ],
    ids=["too-many-headers", "header-line-too-long", "request-line-too-long", "head-too-big", "no-colon",
         "obs-fold", "space-in-name", "no-version", "tls-to-plain-port", "http2", "not-http"],
)
def test_bad_heads_are_refused_before_authentication_and_the_connection_closed(request_bytes: bytes, status: int) -> None:
    with serving(PlaybackSource([make_sample(1)]), basic_auth=AUTH) as agent, _connect(agent) as sock:
        sock.sendall(request_bytes)
        response = read_response(sock)
        assert response.status == status  # not 401: the limits come before the credentials
        assert response.headers["connection"] == "close"
        assert closed_by_peer(sock)


def test_limits_leave_room_for_real_scrapers() -> None:
    """A head just inside every limit is served (Prometheus sends about 300 bytes)."""
    headers = "".join(f"X-H{i}: {'a' * 150}\r\n" for i in range(MAX_HEADERS - 1))
    assert len(headers) < MAX_HEAD_BYTES - 100
    with serving(PlaybackSource([make_sample(1)])) as agent, _connect(agent) as sock:
        _get(sock, extra=headers)
        assert read_response(sock).status == 200


def test_a_request_with_a_body_is_answered_and_the_connection_closed() -> None:
    with serving(PlaybackSource([make_sample(1)])) as agent, _connect(agent) as sock:
        sock.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        response = read_response(sock)
        assert response.status == 405 and response.headers["allow"] == "GET, HEAD"
        assert closed_by_peer(sock)


def test_a_slowloris_client_is_cut_off_at_the_head_deadline(monkeypatch) -> None:
    monkeypatch.setattr(server_module, "HEAD_TIMEOUT_S", 1.0)
    with serving(PlaybackSource([make_sample(1)])) as agent, _connect(agent) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\n")
        sent = 0
        started = time.monotonic()
        try:
            while time.monotonic() - started < 10.0:  # one header byte every 0.1 s, never finishing
                sock.sendall(b"X-Slow: a\r\n"[sent % 11: sent % 11 + 1])
                sent += 1
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = read_response(sock)
        assert response.status == 408
        assert closed_by_peer(sock)
        assert 5 < sent < 100  # it was still sending when it was cut off, long before 10 s
    assert agent.server.connections == 0


def test_a_connection_that_never_sends_is_closed_at_the_head_deadline(monkeypatch) -> None:
    monkeypatch.setattr(server_module, "HEAD_TIMEOUT_S", 0.5)
    with serving(PlaybackSource([make_sample(1)])) as agent, _connect(agent) as sock:
        assert read_response(sock).status == 408
        assert closed_by_peer(sock)


def test_slow_clients_do_not_hold_up_a_scrape() -> None:
    with serving(PlaybackSource([make_sample(8)])) as agent:
        clients = trickling_clients(*address(agent), count=200, line_bytes=1000)
        try:
            wait_until("200 slow connections to be accepted", lambda: agent.server.connections >= 200, 10.0)
            status, _, body = fetch(agent.url)
            assert status == 200 and b"DCGM_FI_DEV_GPU_TEMP" in body
        finally:
            for sock in clients:
                sock.close()
        wait_until("the slow connections to be released", lambda: agent.server.connections == 0, 10.0)


def test_past_the_connection_cap_new_connections_are_closed_at_once(monkeypatch) -> None:
    monkeypatch.setattr(server_module, "MAX_CONNECTIONS", 5)
    with serving(PlaybackSource([make_sample(1)])) as agent:
        held = trickling_clients(*address(agent), count=5, line_bytes=10)
        try:
            wait_until("5 connections", lambda: agent.server.connections == 5, 10.0)
            with _connect(agent) as extra:
                assert closed_by_peer(extra, timeout_s=5.0)
            held.pop().close()
            wait_until("a free slot", lambda: agent.server.connections == 4, 10.0)
            assert fetch(agent.url)[0] == 200
        finally:
            for sock in held:
                sock.close()


def test_the_listen_backlog_is_sized_for_hundreds_of_scrapers() -> None:
    with serving(PlaybackSource([make_sample(1)])) as agent:
        port = address(agent)[1]
        listing = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    backlog = int(listing.split()[2])  # Send-Q of a listening socket is its backlog
    assert backlog == min(LISTEN_BACKLOG, int(Path("/proc/sys/net/core/somaxconn").read_text()))
    assert backlog >= 512


def test_memory_stays_bounded_under_200_oversized_slow_connections() -> None:
    """The issue's attack, through a real `gpuops agent` process: 200 connections each trickling
    header lines of 60 KB took the old agent from 67 MB to over 1 GB."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gpuops", "agent", "--source", "demo:8", "--listen", "127.0.0.1:0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
        assert match, line + (process.stderr.read() if process.stderr else "")
        port = int(match.group(1))
        fetch(f"http://127.0.0.1:{port}/metrics")
        baseline = rss_bytes(process.pid)
        clients = trickling_clients("127.0.0.1", port, count=200, line_bytes=7000)
        peak = baseline
        try:
            for _ in range(3):  # more of every line; the server refuses each at its 8 KB limit
                for sock in clients:
                    try:
                        sock.sendall(b"b" * 20_000)
                    except OSError:
                        pass
                peak = max(peak, rss_bytes(process.pid))
            assert fetch(f"http://127.0.0.1:{port}/metrics")[0] == 200
        finally:
            for sock in clients:
                sock.close()
        time.sleep(0.5)
        after = rss_bytes(process.pid)
        assert peak - baseline < 40 * 2**20, (baseline, peak)
        assert after - baseline < 20 * 2**20, (baseline, after)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)

"""Everything ends when asked, with real processes and real sockets: a scrape target that
trickles one byte a second, or accepts and never answers, never keeps `gpuops status` past its
poll deadline nor `gpuops collect` past SIGTERM; neither does an Alertmanager that accepts the
alerts' POST and never answers. The bounds measured here are the functional deadlines (the poll
deadline, SIGTERM within 2 s), not speed figures."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpuops.core.sources.scrape import DEFAULT_TIMEOUT_S, POLL_DEADLINE_TIMEOUTS
from tests.local_http import Answer, LocalServer, static_routes
from tests.servers import wait_until

SIGTERM_LIMIT_S = 2.0
#: Starting Python and importing gpuops, on a busy 2-core machine, on top of the poll deadline.
STARTUP_MARGIN_S = 4.0
LABELS = (
    'gpu="0",UUID="GPU-5a1e0000-0000-4000-8000-000000000001",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",'
    'Hostname="alpha"'
)


class StuckServer:
    """Accepts every connection on 127.0.0.1 and then either trickles an endless response head,
    one byte a second (`trickle`), or never sends anything (`silent`)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.accepted = 0
        self._closing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="stuck-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._connections.append(conn)
            self.accepted += 1
            if self.mode == "trickle":
                threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nX-Slow: "
        i = 0
        while not self._closing.wait(1.0):
            try:
                conn.send(head[i:i + 1] if i < len(head) else b"a")
            except OSError:
                return
            i += 1

    def close(self) -> None:
        self._closing.set()
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._listener.close()
        for conn in self._connections:
            conn.close()
        self._thread.join(5)


@pytest.fixture(params=["trickle", "silent"])
def stuck(request) -> Iterator[StuckServer]:
    server = StuckServer(request.param)
    yield server
    server.close()


def gpuops_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gpuops", *args]


def sigterm_exit_s(process: subprocess.Popen) -> tuple[float, int]:
    """Send SIGTERM and measure how long `process` takes to exit (killed after 10 s)."""
    asked = time.monotonic()
    process.terminate()
    try:
        code = process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("still running 10 s after SIGTERM")
    return time.monotonic() - asked, code


def test_status_ends_at_its_deadline_with_one_clear_line(stuck: StuckServer) -> None:
    started = time.monotonic()
    result = subprocess.run(
        gpuops_command("status", "--source", f"scrape:{stuck.url}/metrics"), capture_output=True, text=True, timeout=60
    )
    elapsed = time.monotonic() - started
    assert stuck.accepted >= 1
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpuops: ") and f"timed out after {DEFAULT_TIMEOUT_S:g} s" in lines[0], lines
    assert elapsed < DEFAULT_TIMEOUT_S * POLL_DEADLINE_TIMEOUTS + STARTUP_MARGIN_S, elapsed


def test_collect_exits_soon_after_sigterm_while_a_scrape_hangs(stuck: StuckServer, tmp_path: Path) -> None:
    log = tmp_path / "collect.log"
    process = subprocess.Popen(
        gpuops_command(
            "collect", "--interval", "1", "--source", f"scrape:{stuck.url}/metrics", "--db", str(tmp_path / "h.sqlite")
        ),
        stdout=subprocess.DEVNULL, stderr=log.open("w"),
    )
    try:
        wait_until("the collector to reach the stuck target", lambda: stuck.accepted >= 1, 20)
        time.sleep(0.3)  # well inside the request's 2 s timeout: the poll is waiting on it
        took, code = sigterm_exit_s(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    stderr = log.read_text()
    assert code == 0, stderr
    assert "stopped" in stderr
    assert took < SIGTERM_LIMIT_S, f"exited {took:.2f} s after SIGTERM"


def test_collect_exits_soon_after_sigterm_while_alertmanager_hangs(tmp_path: Path) -> None:
    """A GPU with an uncorrectable ECC error fires at the first poll, so the forwarder POSTs to an
    Alertmanager that accepts and never answers; SIGTERM comes while that POST waits."""
    target = LocalServer(static_routes({"/metrics": Answer(
        f"DCGM_FI_DEV_GPU_TEMP{{{LABELS}}} 40\nDCGM_FI_DEV_ECC_DBE_VOL_TOTAL{{{LABELS}}} 2\n".encode()
    )}))
    alertmanager = StuckServer("silent")
    log = tmp_path / "collect.log"
    process = subprocess.Popen(
        gpuops_command(
            "collect", "--interval", "0.5", "--source", f"scrape:{target.base}/metrics", "--db", str(tmp_path / "h.sqlite"),
            "--alertmanager", alertmanager.url,
        ),
        stdout=subprocess.DEVNULL, stderr=log.open("w"),
    )
    try:
        wait_until("the alerts' POST to the hung Alertmanager", lambda: alertmanager.accepted >= 1, 20)
        time.sleep(0.5)  # the POST is waiting for an answer (its timeout is 5 s)
        took, code = sigterm_exit_s(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        target.stop()
        alertmanager.close()
    stderr = log.read_text()
    assert code == 0, stderr
    assert took < SIGTERM_LIMIT_S, f"exited {took:.2f} s after SIGTERM"

"""Memory of `gpuops agent` under hostile clients (issue 12, item 5).

A real `gpuops agent --source demo:8` on loopback; its resident set size (VmRSS) is read from
/proc at baseline (after a few scrapes), while 200 slowloris connections trickle header lines
under every limit, while 200 connections send oversized header lines (refused at the 8 KB line
limit), and a second after they have all closed. A scrape is timed while the 200 slow
connections are open, to show they do not hold it up. The old agent went from 67 MB to 1.28 GB
under 60 such connections and kept 237 MB afterwards.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.agent_helpers import fetch, rss_bytes, trickling_clients

CLIENTS = 200
SLOW_ROUNDS = 10  # one more header line per connection each round
SLOW_ROUND_S = 0.5
MIB = 2**20
REPO = Path(__file__).resolve().parent.parent


def _start_agent() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "gpuops", "agent", "--source", "demo:8", "--listen", "127.0.0.1:0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+/metrics", line)
    if match is None:
        process.kill()
        raise RuntimeError(f"gpuops agent did not say where it listens: {line!r}")
    return process, match.group(0)


def _send_all(clients: list[socket.socket], data: bytes) -> None:
    for sock in clients:
        try:
            sock.sendall(data)
        except OSError:
            pass  # refused and closed by the agent, as it should


def _scrape_s(url: str) -> float:
    started = time.perf_counter()
    status, _headers, _body = fetch(url)
    if status != 200:
        raise RuntimeError(f"scrape answered {status}")
    return time.perf_counter() - started


def run() -> list[dict]:
    process, url = _start_agent()
    host, port = "127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])
    try:
        for _ in range(20):
            fetch(url)
        baseline = rss_bytes(process.pid)
        quiet_scrape = statistics.median(_scrape_s(url) for _ in range(10))

        slow = trickling_clients(host, port, CLIENTS, line_bytes=100)
        slow_peak, loaded_scrapes = baseline, []
        try:
            for k in range(SLOW_ROUNDS):
                _send_all(slow, f"\r\nX-Slow-{k}: ".encode() + b"s" * 100)
                slow_peak = max(slow_peak, rss_bytes(process.pid))
                loaded_scrapes.append(_scrape_s(url))
                time.sleep(SLOW_ROUND_S)
        finally:
            for sock in slow:
                sock.close()

        big = trickling_clients(host, port, CLIENTS, line_bytes=7000)
        big_peak = baseline
        try:
            for _ in range(3):  # 60 KB more of the same line: the agent refuses it at its limit
                _send_all(big, b"b" * 20_000)
                big_peak = max(big_peak, rss_bytes(process.pid))
        finally:
            for sock in big:
                sock.close()
        time.sleep(1.0)
        after = rss_bytes(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)

    def row(measure: str, value: float, target: str, **extra: object) -> dict:
        return {"measure": measure, "value": round(value, 1), "unit": "MiB", "target": target, **extra}

    return [
        row("agent RSS at baseline (demo:8, after 20 scrapes)", baseline / MIB, "measure and report"),
        row(f"agent RSS peak, {CLIENTS} slowloris connections open", slow_peak / MIB, "baseline + < 40",
            growth_mib=round((slow_peak - baseline) / MIB, 1)),
        row(f"agent RSS peak, {CLIENTS} oversized-header connections", big_peak / MIB, "baseline + < 40",
            growth_mib=round((big_peak - baseline) / MIB, 1)),
        row("agent RSS 1 s after they all closed", after / MIB, "baseline + < 20", growth_mib=round((after - baseline) / MIB, 1)),
        {"measure": "scrape time, median, no other client", "value": round(quiet_scrape * 1000, 1), "unit": "ms",
         "target": "measure and report"},
        {"measure": f"scrape time, median, {CLIENTS} slowloris connections open", "value":
         round(statistics.median(loaded_scrapes) * 1000, 1), "unit": "ms", "target": "measure and report"},
    ]

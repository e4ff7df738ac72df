"""One active collector per team database: the advisory lock goes to one process, and to a
standby once the active one is killed with SIGKILL (a real server ends its session)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest

from gpuops.core.team.leader import Leadership
from tests.postgres_server import PostgresServer, running_postgres, server_bindir

pytestmark = pytest.mark.skipif(server_bindir() is None, reason="needs Debian's postgresql package (scripts/dev.sh installs it)")
TAKEOVER_WITHIN_S = 30.0  # generous; a standby retries once per poll

_HOLDER = """
import sys, time, psycopg
from gpuops.core.team.leader import Leadership
leadership = Leadership(lambda: psycopg.connect(sys.argv[1], autocommit=True))
assert leadership.check()
print("active", flush=True)
time.sleep(600)
"""


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with running_postgres() as running:
        yield running


def test_one_collector_is_active_and_a_standby_takes_over_after_kill_9(server: PostgresServer) -> None:
    url = server.create_database("leader")
    active = subprocess.Popen([sys.executable, "-c", _HOLDER, url], stdout=subprocess.PIPE, text=True)
    try:
        assert active.stdout is not None and active.stdout.readline().strip() == "active"
        standby = Leadership(lambda: psycopg.connect(url, autocommit=True))
        assert standby.check() is False  # the other one holds it
        assert standby.check() is False
        os.kill(active.pid, signal.SIGKILL)
        active.wait()
        deadline = time.monotonic() + TAKEOVER_WITHIN_S
        while not standby.check():
            assert time.monotonic() < deadline, "the standby never took the lock over"
            time.sleep(0.1)
        third = Leadership(lambda: psycopg.connect(url, autocommit=True))
        assert third.check() is False  # exactly one active
        third.close()
        standby.close()
    finally:
        active.kill()
        active.wait()

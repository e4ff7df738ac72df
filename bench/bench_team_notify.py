"""How soon a change made at one console is seen at another, through a team database (issue 17:
within 2 s, without polling). A throwaway PostgreSQL server (tests/postgres_server.py); desk A
acknowledges, silences or puts a node in maintenance, 100 changes in turn, each committed through
the alert store; desk B's ChangeListener (its own connection, LISTEN gpuops_changes) hears it.
Measured: wall time from just before desk A's write until desk B's callback, median and worst.
"""

from __future__ import annotations

import queue
import statistics
import time

CHANGES = 100
TARGET_S = 2.0
NOW = 1_800_000_000.0


def run() -> list[dict]:
    import psycopg

    from gpuops.core.alerts.persistence import AlertStore
    from gpuops.core.team.notify import ChangeListener
    from gpuops.core.team.schema import migrate
    from tests.postgres_server import running_postgres

    with running_postgres() as server:
        url = server.create_database("bench_notify")
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
        heard: queue.Queue[float] = queue.Queue()
        listener = ChangeListener(lambda _tables: heard.put(time.perf_counter()),
                                  connect=lambda: psycopg.connect(url, autocommit=True))
        listener.start()
        listener.wait_listening(10.0)
        desk_a = AlertStore(psycopg.connect(url, autocommit=True))
        delays_s = []
        for i in range(CHANGES):
            started = time.perf_counter()
            if i % 2:
                desk_a.add_silence([f"node=n{i}"], NOW, NOW + 60, "bench", NOW, author="bench")
            else:
                desk_a.start_maintenance(f"n{i}", NOW, "bench", author="bench")
            delays_s.append(heard.get(timeout=10.0) - started)
        listener.close()
        desk_a.conn.close()
    detail = {"changes": CHANGES}
    return [
        {"measure": "team change seen at another console, median", "value": statistics.median(delays_s) * 1000,
         "unit": "ms", "target": f"<= {TARGET_S * 1000:g}", **detail},
        {"measure": "team change seen at another console, worst", "value": max(delays_s) * 1000,
         "unit": "ms", "target": f"<= {TARGET_S * 1000:g}", **detail},
    ]

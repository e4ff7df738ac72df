"""Two processes writing the team book at the same moment (issue 17 item 3, at the database
level): the database lets exactly one of them hold a GPU, and counts a contract's GPUs one
transaction after the other, whatever the timing."""

from __future__ import annotations

import multiprocessing

import psycopg
import pytest

from gpuops.core.team.connection import connect, parse_team_db
from gpuops.core.team.schema import migrate

DAY_MS = 86_400_000


def _allocate_at_once(url: str, gpu: str, barrier, results) -> None:
    """One desk: wait for the other, then allocate `gpu` to contract 1 and commit."""
    with psycopg.connect(url) as conn:
        barrier.wait(30)
        try:
            conn.execute("INSERT INTO allocations (contract_id, gpu_uuid, start_ms, end_ms) VALUES (1, %s, 0, %s)",
                         (gpu, DAY_MS))
            conn.commit()
            results.put("won")
        except psycopg.errors.IntegrityError as exc:
            results.put(type(exc).__name__)


def _race(url: str, gpus: tuple[str, str]) -> list[str]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    desks = [ctx.Process(target=_allocate_at_once, args=(url, gpu, barrier, results)) for gpu in gpus]
    for desk in desks:
        desk.start()
    outcome = sorted(results.get(timeout=60) for _ in desks)
    for desk in desks:
        desk.join(30)
    return outcome


def _book(url: str, gpu_count: int) -> None:
    with connect(parse_team_db(url), autocommit=True) as c:
        migrate(c)
        c.execute("INSERT INTO customers (id, name) VALUES (1, 'acme')")
        c.execute(
            "INSERT INTO contracts (id, customer_id, name, type, gpu_model, gpu_count, start_ms, end_ms, price_per_gpu_hour)"
            " VALUES (1, 1, 'c1', 'reserved', 'H100', %s, 0, %s, 2.5)", (gpu_count, 10 * DAY_MS)
        )


def _allocations(url: str) -> int:
    with psycopg.connect(url) as c:
        return c.execute("SELECT count(*) FROM allocations").fetchone()[0]


def test_two_processes_allocating_one_gpu_exactly_one_wins(team_db_url):
    _book(team_db_url, gpu_count=4)
    assert _race(team_db_url, ("GPU-a", "GPU-a")) == ["ExclusionViolation", "won"]
    assert _allocations(team_db_url) == 1


def test_two_processes_filling_the_last_gpu_of_a_contract_exactly_one_wins(team_db_url):
    _book(team_db_url, gpu_count=1)
    assert _race(team_db_url, ("GPU-a", "GPU-b")) == ["CheckViolation", "won"]
    assert _allocations(team_db_url) == 1


def test_a_role_without_write_grants_cannot_change_the_book(postgres_server, team_db_url, tmp_path, monkeypatch):
    _book(team_db_url, gpu_count=1)
    postgres_server.create_role("wallboard", password="ro")
    dbname = team_db_url.split("@/", 1)[1].split("?", 1)[0]
    postgres_server.sql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO wallboard", dbname=dbname)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text("*:*:*:wallboard:ro\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    with connect(parse_team_db(team_db_url.replace("gpuops_test@", "wallboard@")), autocommit=True) as c:
        assert c.execute("SELECT name FROM customers").fetchall() == [("acme",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("INSERT INTO customers (name) VALUES ('intruder')")

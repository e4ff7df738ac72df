"""The team database's schema on a real PostgreSQL server (issue 17 items 2 and 8): migrations
are versioned and idempotent, and the database itself refuses a GPU held twice, an allocation
outside its contract and a contract over its GPU count, whoever writes."""

from __future__ import annotations

import psycopg
import pytest

from gpuops.core.team.connection import TeamDbError, connect, open_pool, parse_team_db, team_db_from
from gpuops.core.team.schema import MIGRATIONS, migrate, schema_version

DAY_MS = 86_400_000


@pytest.fixture
def conn(team_db_url):
    with connect(parse_team_db(team_db_url), autocommit=True) as c:
        migrate(c)
        c.execute("INSERT INTO customers (id, name) VALUES (1, 'acme')")
        c.execute(
            "INSERT INTO contracts (id, customer_id, name, type, gpu_model, gpu_count, start_ms, end_ms, price_per_gpu_hour)"
            " VALUES (1, 1, 'c1', 'reserved', 'H100', 2, 0, %s, 2.5)", (10 * DAY_MS,)
        )
        yield c


def test_migrate_is_versioned_and_runs_once(team_db_url):
    with connect(parse_team_db(team_db_url), autocommit=True) as c:
        assert schema_version(c) == 0
        assert migrate(c) == MIGRATIONS[-1][0]
        assert migrate(c) == MIGRATIONS[-1][0]
        assert c.execute("SELECT count(*) FROM schema_version").fetchone()[0] == len(MIGRATIONS)


def _allocate(c, gpu: str, start_ms: int, end_ms: int | None, contract_id: int = 1) -> None:
    c.execute("INSERT INTO allocations (contract_id, gpu_uuid, start_ms, end_ms) VALUES (%s, %s, %s, %s)",
              (contract_id, gpu, start_ms, end_ms))


def test_a_gpu_is_never_held_twice_over_overlapping_time(conn):
    _allocate(conn, "GPU-a", 0, 5 * DAY_MS)
    _allocate(conn, "GPU-a", 5 * DAY_MS, 6 * DAY_MS)  # half-open: touching is fine
    with pytest.raises(psycopg.errors.ExclusionViolation):
        _allocate(conn, "GPU-a", 4 * DAY_MS, None)


def test_allocation_inside_its_contract_and_within_its_count(conn):
    with pytest.raises(psycopg.errors.CheckViolation, match="outside its contract"):
        _allocate(conn, "GPU-a", 9 * DAY_MS, 11 * DAY_MS)
    _allocate(conn, "GPU-a", 0, 5 * DAY_MS)
    _allocate(conn, "GPU-b", 0, 5 * DAY_MS)
    with pytest.raises(psycopg.errors.CheckViolation, match="more than the 2 it bought"):
        _allocate(conn, "GPU-c", 4 * DAY_MS, 6 * DAY_MS)
    _allocate(conn, "GPU-c", 5 * DAY_MS, 6 * DAY_MS)
    with pytest.raises(psycopg.errors.CheckViolation, match="new count"):
        conn.execute("UPDATE contracts SET gpu_count = 1 WHERE id = 1")
    assert conn.execute("SELECT count(*) FROM allocations").fetchone()[0] == 3


def test_url_parsing_and_redaction():
    db = parse_team_db("postgresql://ops:s3cret@db.example/gpuops?sslmode=verify-full")
    assert "s3cret" not in db.redacted and "s3cret" not in str(db)
    assert db.redacted == "postgresql://ops:***@db.example/gpuops?sslmode=verify-full"
    assert "s3cret" not in parse_team_db("postgres://ops@db/gpuops?password=s3cret").redacted
    assert parse_team_db("postgresql:///gpuops?host=/run/postgresql").redacted == "postgresql:///gpuops?host=/run/postgresql"
    with pytest.raises(TeamDbError, match="postgresql://"):
        parse_team_db("mysql://db/gpuops")
    with pytest.raises(TeamDbError) as refused:
        parse_team_db("postgresql://ops:s3cret@db/gpuops?nosuchoption=1")
    assert "s3cret" not in str(refused.value)
    assert team_db_from(None, {"GPUOPS_TEAM_DB": "postgresql:///x"}).url == "postgresql:///x"
    assert team_db_from(None, {}) is None


def test_unreachable_server_is_one_clear_line(tmp_path):
    with pytest.raises(TeamDbError, match="cannot reach the team database postgresql:///gpuops"):
        open_pool(parse_team_db(f"postgresql:///gpuops?host={tmp_path}"), timeout_s=2)


def test_password_comes_from_pgpass(postgres_server, team_db_url, tmp_path, monkeypatch):
    postgres_server.create_role("desk2", password="from-pgpass")
    url = team_db_url.replace("gpuops_test@", "desk2@")
    with pytest.raises(TeamDbError, match="password"):
        open_pool(parse_team_db(url), timeout_s=3)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text("*:*:*:desk2:from-pgpass\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    pool = open_pool(parse_team_db(url), timeout_s=3)
    try:
        with pool.connection() as c:
            assert c.execute("SELECT current_user").fetchone()[0] == "desk2"
    finally:
        pool.close()

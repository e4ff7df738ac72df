"""`--team-db URL`: which PostgreSQL database holds the team's book, and how to reach it.

Passwords never travel in the URL we keep or print: libpq finds them itself (.pgpass,
PGPASSFILE, service files). A URL given with a password is accepted for connecting but its
`redacted` form is what logs and settings show. Query parameters (sslmode, host=/run/postgresql,
service, ...) pass through to libpq untouched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

ENV_VAR = "GPUOPS_TEAM_DB"
_SCHEMES = ("postgresql", "postgres")


class TeamDbError(Exception):
    """The team database URL is unusable, or the server refused us: one line for the operator."""


@dataclass(frozen=True, slots=True)
class TeamDb:
    """A validated team database URL. `url` goes to libpq only; `redacted` is for people."""

    url: str
    redacted: str

    def __str__(self) -> str:
        return self.redacted


def parse_team_db(url: str) -> TeamDb:
    """Check that `url` is a PostgreSQL URL libpq accepts; raises TeamDbError saying why not."""
    from psycopg.conninfo import conninfo_to_dict

    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in _SCHEMES:
        raise TeamDbError(f"--team-db wants a postgresql:// URL, not {_redact(text)!r}")
    try:
        conninfo_to_dict(text)
    except Exception as exc:  # psycopg.ProgrammingError: libpq's own parse error
        reason = _strip_password(str(exc), parts.password)
        raise TeamDbError(f"--team-db {_redact(text)!r} is not a valid PostgreSQL URL: {reason}") from None
    return TeamDb(text, _redact(text))


def team_db_from(option: str | None, environ: dict[str, str] | None = None) -> TeamDb | None:
    """The team database of a command: its --team-db, else GPUOPS_TEAM_DB, else None (local book)."""
    value = option if option is not None else (os.environ if environ is None else environ).get(ENV_VAR)
    return None if value is None or not value.strip() else parse_team_db(value)


def _redact(url: str) -> str:
    """`url` with any password (in the netloc or a password= parameter) replaced by ***."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        name = user.split(":", 1)[0]
        netloc = f"{name}:***@{host}"
    query = "&".join(
        f"{key}={'***' if key == 'password' else value}" for key, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    # Built by hand: urlunsplit drops the empty host of postgresql:///db?host=/run/postgresql.
    tail = (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    return f"{parts.scheme}://{netloc}{parts.path}{tail}"


def _strip_password(message: str, password: str | None) -> str:
    return message.replace(password, "***") if password else message


def open_pool(db: TeamDb, *, min_size: int = 1, max_size: int = 4, timeout_s: float = 10.0):
    """A psycopg_pool.ConnectionPool on `db`, opened and checked with one connection; raises
    TeamDbError naming the server (redacted) when it cannot be reached or refuses the login."""
    import psycopg
    from psycopg_pool import ConnectionPool, PoolTimeout

    pool = ConnectionPool(
        db.url, min_size=min_size, max_size=max_size, open=False, timeout=timeout_s,
        kwargs={"connect_timeout": max(1, round(timeout_s))}, name="gpuops-team",
    )
    try:
        pool.open(wait=True, timeout=timeout_s)
        with pool.connection() as conn:
            conn.execute("SELECT 1")
    except (PoolTimeout, psycopg.OperationalError) as exc:
        pool.close()
        detail = _last_connect_error(db) or str(exc)
        raise TeamDbError(f"cannot reach the team database {db.redacted}: {detail}") from None
    return pool


def connect(db: TeamDb, **kwargs):
    """One connection (migrations, the migrate command); TeamDbError as `open_pool`."""
    import psycopg

    try:
        return psycopg.connect(db.url, **kwargs)
    except psycopg.OperationalError as exc:
        raise TeamDbError(f"cannot reach the team database {db.redacted}: {_one_line(str(exc))}") from None


def _last_connect_error(db: TeamDb) -> str | None:
    """libpq's own reason for refusing (the pool only says it timed out)."""
    import psycopg

    try:
        psycopg.connect(db.url, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        return _one_line(str(exc))
    return None


def _one_line(message: str) -> str:
    return " ".join(message.split())

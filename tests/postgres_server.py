"""A throwaway PostgreSQL server for the team-database tests (issue 17 item 8): Debian's
postgresql binaries, initdb + postgres in a temporary folder, Unix socket only (no TCP port to
collide on). initdb refuses to run as root, which CI is: then the server runs as the package's
unprivileged `postgres` user, which owns the folder.

Missing binaries skip the tests on a developer's machine; in CI (CI=true) they fail instead,
since there the README's setup installs them."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import stop, wait_until

SUPERUSER = "gpuops_test"


def server_bindir() -> Path | None:
    """The folder holding initdb and postgres: `pg_config --bindir` if it has them, else the newest
    /usr/lib/postgresql/*/bin (Debian keeps them off PATH)."""
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        candidates.append(Path(out))
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    candidates += [Path(p) for p in debian]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    return None


def _as_server_user() -> list[str]:
    """The command prefix running a server binary: none for an ordinary user, runuser to the
    package's `postgres` user for root."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@dataclass(frozen=True)
class PostgresServer:
    socket_dir: Path
    port: int = 5432

    def url(self, dbname: str = "postgres", user: str = SUPERUSER) -> str:
        """A libpq URL reaching this server over its socket (no password in it)."""
        return f"postgresql://{user}@/{dbname}?host={self.socket_dir}&port={self.port}"

    def sql(self, statement: str, dbname: str = "postgres") -> None:
        """Run one statement as the superuser (autocommit: CREATE DATABASE needs it)."""
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]  # test-built SQL, not user input

    def create_database(self, name: str) -> str:
        """A fresh database with btree_gist (the allocation exclusion constraint needs it); its URL."""
        self.sql(f'CREATE DATABASE "{name}"')
        self.sql("CREATE EXTENSION IF NOT EXISTS btree_gist", dbname=name)
        return self.url(name)

    def create_role(self, name: str, *, password: str | None = None) -> None:
        """A login role with no grants (read-only tests grant it SELECT); with a password, it must
        authenticate (the server asks passwords of every role but the superuser)."""
        clause = f" PASSWORD '{password}'" if password is not None else ""
        self.sql(f'CREATE ROLE "{name}" LOGIN{clause}')


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a server in a temporary folder; stop it and remove the folder afterwards."""
    bindir = server_bindir()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL server binaries not found (install Debian's postgresql package)")
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="gpuops-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix = _as_server_user()
    if prefix:
        server = pwd.getpwnam("postgres")
        for path in (root, sock):
            os.chown(path, server.pw_uid, server.pw_gid)
    pwfile = root / "superuser-password"
    pwfile.write_text("unused-superuser-password\n")
    if prefix:
        os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
    # Every role but the superuser logs in with a password (scram), so the .pgpass test means something.
    subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth-local=trust", "-A", "trust",
         "--pwfile", str(pwfile), "-E", "UTF8", "--locale=C"],
        check=True, capture_output=True,
    )
    (data / "pg_hba.conf").write_text(
        f"local all {SUPERUSER} trust\nlocal all all scram-sha-256\n"
    )
    server_log = open(root / "server.log", "wb")
    process = subprocess.Popen(
        [*prefix, str(bindir / "postgres"), "-D", str(data), "-k", str(sock), "-c", "listen_addresses=",
         "-c", "fsync=off", "-c", "max_connections=60"],
        stdout=subprocess.DEVNULL, stderr=server_log,
    )
    try:
        server_ = PostgresServer(sock)
        wait_until("PostgreSQL to accept connections", lambda: _accepting(server_, process, root), 30)
        yield server_
    finally:
        stop(process)
        server_log.close()
        shutil.rmtree(root, ignore_errors=True)


def _accepting(server: PostgresServer, process: subprocess.Popen, root: Path) -> bool:
    import psycopg

    if process.poll() is not None:
        pytest.fail(f"PostgreSQL exited at start: {(root / 'server.log').read_text(errors='replace')[-2000:]}")
    try:
        psycopg.connect(server.url(), connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True

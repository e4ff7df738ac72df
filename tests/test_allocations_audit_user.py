"""The audit log's "who" is the OS's word: the name of the process's real uid and the host,
whatever USER and LOGNAME say."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import sys

from gpuops.core.allocations.repository import AllocationRepository
from tests.allocations_support import make_history, mixed_inventory

EXPECTED = f"{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"


def test_a_cli_change_is_recorded_as_the_real_uid_not_the_environment(tmp_path):
    db = make_history(tmp_path / "history.sqlite", mixed_inventory(8, 0))
    customers = tmp_path / "customers.csv"
    customers.write_text("name,contact,notes\nHelix AI,ops@helix.example,\n", encoding="utf-8")
    env = {**os.environ, "USER": "mallory", "LOGNAME": "mallory", "USERNAME": "mallory", "LNAME": "mallory"}
    done = subprocess.run(
        [sys.executable, "-m", "gpuops", "customers", "import", str(customers), "--db", str(db)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    repo = AllocationRepository.open(db, read_only=True)
    users = {entry.user for entry in repo.audit_log()}
    repo.close()
    assert users == {EXPECTED}
    assert "mallory" not in EXPECTED


def test_a_repository_opened_in_process_ignores_user_too(tmp_path, monkeypatch):
    monkeypatch.setenv("USER", "mallory")
    monkeypatch.setenv("LOGNAME", "mallory")
    repo = AllocationRepository.open(make_history(tmp_path / "history.sqlite", mixed_inventory(8, 0)))
    repo.add_customer("Helix AI")
    assert [entry.user for entry in repo.audit_log()] == [EXPECTED]
    repo.close()

"""`gpuops alerts ack|silence|silences|expire-silence|maintenance`: the console's alert actions
from the command line, each refusing bad input with one clear line and changing nothing, and
each recorded under the OS's word for who did it (the real uid's name @ host), never USER."""

from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gpuops.core.alerts.persistence import AlertStore
from gpuops.core.alerts.service import AlertService
from gpuops.core.store.connection import open_database
from tests.samples import make_sample

T0 = 1_763_798_400.0
N = 16
WHO = f"{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"
#: Names anyone can set: never taken as the author.
MALLORY = {"USER": "mallory", "LOGNAME": "mallory", "USERNAME": "mallory", "LNAME": "mallory"}


def gpuops(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **MALLORY}
    return subprocess.run([sys.executable, "-m", "gpuops", *args], capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def history(tmp_path: Path) -> Path:
    path = tmp_path / "history.sqlite"
    conn, _ = open_database(path, create=True)
    AlertService(conn, poll_interval_s=5.0).process(make_sample(N, ts=T0, values={"ecc_uncorrected_volatile": {9: 1}}), T0)
    conn.close()
    return path


def store_of(path: Path) -> AlertStore:
    conn, _ = open_database(path, create=False)
    return AlertStore(conn)


def test_ack_records_the_os_user_and_note(history: Path) -> None:
    [alert] = store_of(history).active_alerts()
    result = gpuops("alerts", "ack", str(alert.id), "--note", "RMA opened", "--db", str(history))
    assert result.returncode == 0, result.stderr
    acked = store_of(history).alert(alert.id)
    assert (acked.acknowledged_by, acked.ack_note) == (WHO, "RMA opened")
    missing = gpuops("alerts", "--db", str(history), "ack", "999")
    assert (missing.returncode, missing.stderr.strip()) == (1, "gpuops: no active alert 999 to acknowledge")


def test_silence_list_and_expire(history: Path) -> None:
    result = gpuops("alerts", "--db", str(history), "silence", "--match", "node=node01", "--match", "rule=~xid_.*",
                    "--for", "2h", "--comment", "firmware update")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("silence 1: node=node01 rule=~xid_.* until ")
    [silence] = store_of(history).silences()
    assert silence.ends_at - silence.starts_at == 7200 and silence.comment == "firmware update"
    listed = json.loads(gpuops("alerts", "silences", "--json", "--db", str(history)).stdout)
    assert [(s["id"], s["matchers"], s["author"]) for s in listed] == [(1, ["node=node01", "rule=~xid_.*"], WHO)]
    assert gpuops("alerts", "expire-silence", "1", "--db", str(history)).returncode == 0
    assert gpuops("alerts", "silences", "--db", str(history)).stdout.strip() == "no silences"
    again = gpuops("alerts", "expire-silence", "1", "--db", str(history))
    assert (again.returncode, again.stderr.strip()) == (1, "gpuops: no silence 1 in force")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--match", "colour=red", "--for", "1h"], "cannot match on label 'colour'"),
        (["--match", "node=~(", "--for", "1h"], "bad regex"),
        (["--match", "node=n1", "--for", "soon"], "bad duration 'soon'"),
    ],
)
def test_bad_silences_are_refused_and_store_nothing(history: Path, args: list[str], message: str) -> None:
    result = gpuops("alerts", "--db", str(history), "silence", *args, "--comment", "x")
    assert result.returncode == 2 and message in result.stderr
    assert store_of(history).silences() == []


def test_maintenance_start_mutes_at_the_next_poll_and_end_unmutes(history: Path) -> None:
    assert gpuops("alerts", "maintenance", "start", "node01", "--comment", "PSU swap", "--db", str(history)).returncode == 0
    store = store_of(history)
    assert (store.maintenance()["node01"].comment, store.maintenance()["node01"].author) == ("PSU swap", WHO)
    assert "mallory" not in WHO
    service = AlertService(store.conn, poll_interval_s=5.0)
    service.process(make_sample(N, ts=T0 + 5, values={"ecc_uncorrected_volatile": {9: 1}}), T0 + 5)
    [alert] = store.active_alerts()
    assert alert.silenced_by == "maintenance"
    assert gpuops("alerts", "maintenance", "end", "node01", "--db", str(history)).returncode == 0
    assert store.maintenance() == {}
    not_in = gpuops("alerts", "maintenance", "end", "node01", "--db", str(history))
    assert (not_in.returncode, not_in.stderr.strip()) == (1, "gpuops: node01 is not in maintenance")


def test_plain_listing_still_works_without_an_action(history: Path) -> None:
    result = gpuops("alerts", "--db", str(history), "--json")
    assert result.returncode == 0 and [a["rule"] for a in json.loads(result.stdout)] == ["ecc_uncorrectable"]

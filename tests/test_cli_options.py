"""Shared options (--db, --source, --seed, --topology, --read-only) mean the same before or after
the subcommand, for every subcommand that takes them, and are refused where they do not apply.
Each case observes the effect: which database was read or written, which fleet was polled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from gpuops.cli import main, parse_args
from gpuops.commands.window import launch_settings
from gpuops.core.sources.demo import DemoSource
from gpuops.core.store.paths import default_db_path
from tests.cli_support import GPUS

SEED = 5
POSITIONS = ("before", "after")


def arrange(position: str, options: list[str], command: list[str]) -> list[str]:
    return [*options, *command] if position == "before" else [*command, *options]


def gpuops(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gpuops", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def seeded_uuids() -> set[str]:
    with DemoSource(n_gpus=8, seed=SEED) as source:
        uuids = set(source.poll().uuids)
    with DemoSource(n_gpus=8, seed=0) as source:
        assert uuids.isdisjoint(source.poll().uuids)  # the seed is observable
    return uuids


@pytest.fixture
def topology(tmp_path: Path) -> Path:
    path = tmp_path / "topology.csv"
    path.write_text("node,site,rack,notes\nams1-r01-n01,hall-z,Z01,\n")
    return path


@pytest.mark.parametrize("position", POSITIONS)
def test_status_polls_the_source_seed_and_topology_given_anywhere(position, seeded_uuids, topology, capsys) -> None:
    options = ["--source", "demo:8", "--seed", str(SEED), "--topology", str(topology)]
    assert main(arrange(position, options, ["status", "--format", "json"])) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["source"] == "demo:8"
    assert {g["uuid"] for g in document["gpus"]} == seeded_uuids
    assert {g["site"] for g in document["gpus"] if g["node"] == "ams1-r01-n01"} == {"hall-z"}


@pytest.mark.parametrize("position", POSITIONS)
def test_export_snapshot_polls_the_source_seed_and_topology_given_anywhere(position, seeded_uuids, topology, tmp_path) -> None:
    out = tmp_path / "snapshot.json"
    options = ["--source", "demo:8", "--seed", str(SEED), "--topology", str(topology), "--db", str(tmp_path / "none.sqlite")]
    assert main(arrange(position, options, ["export", "--format", "json", "-o", str(out)])) == 0
    gpus = json.loads(out.read_text())["gpus"]
    assert {g["uuid"] for g in gpus} == seeded_uuids
    assert {g["site"] for g in gpus if g["node"] == "ams1-r01-n01"} == {"hall-z"}
    assert not (tmp_path / "none.sqlite").exists()  # a snapshot reads the history, never creates it


@pytest.mark.parametrize("position", POSITIONS)
def test_collect_writes_the_database_and_fleet_given_anywhere(position, seeded_uuids, topology, tmp_path) -> None:
    from gpuops.core.store import HistoryReader

    db = tmp_path / "chosen.sqlite"
    options = ["--db", str(db), "--source", "demo:8", "--seed", str(SEED), "--topology", str(topology)]
    result = gpuops(*arrange(position, options, ["collect", "--once"]))
    assert result.returncode == 0, result.stderr
    with HistoryReader(db) as reader:
        assert {g.uuid for g in reader.gpus()} == seeded_uuids
        assert reader.fleet_at(reader.time_range()[1]).gpus[0].site == "hall-z"
    assert not default_db_path().exists()


@pytest.mark.parametrize("position", POSITIONS)
def test_agent_serves_the_source_and_seed_given_anywhere(position, seeded_uuids) -> None:
    options = ["--source", "demo:8", "--seed", str(SEED)]
    child = subprocess.Popen(
        [sys.executable, "-m", "gpuops", *arrange(position, options, ["agent", "--listen", "127.0.0.1:0"])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = child.stdout.readline()  # "gpuops agent: serving http://127.0.0.1:PORT/metrics (source demo:8)"
        assert "(source demo:8)" in line, child.stderr.read() if child.poll() is not None else line
        url = line.split("serving ", 1)[1].split(" ", 1)[0]
        body = (
            urllib.request.urlopen(url if url.endswith("/metrics") else url.rstrip("/") + "/metrics", timeout=30).read().decode()
        )
        assert all(f'UUID="{uuid}"' in body for uuid in seeded_uuids)
    finally:
        child.terminate()
        child.wait(10)


@pytest.mark.parametrize("position", POSITIONS)
def test_window_launches_on_the_options_given_anywhere(position, tmp_path, topology) -> None:
    options = [
        "--source", "demo:8", "--seed", "7", "--topology", str(topology), "--db", str(tmp_path / "w.sqlite"), "--read-only",
    ]
    for command in (["window"], []):  # `gpuops [OPTIONS]` is `gpuops window [OPTIONS]`
        args = parse_args(arrange(position, options, [*command, "--interval", "2"]))
        assert launch_settings(args) == ("demo:8", 2.0, tmp_path / "w.sqlite")
        assert (args.command, args.seed, args.topology, args.read_only) == ("window", 7, topology, True)


BOOK_READS = {
    "customers export": (["customers", "export"], "Acme"),
    "allocations export": (["allocations", "export"], "Acme,train,reserved"),
    "contracts list": (["contracts", "list", "--format", "json"], '"customer": "Acme"'),
    "usage": (["usage", "--since", "2026-01-01", "--until", "2026-01-02", "--format", "csv"], "Acme,"),
    "audit export": (["audit", "export"], "customer"),
    "alerts": (["alerts", "--format", "json"], "[]"),
    "alerts silences": (["alerts", "silences"], "no silences"),
}


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("command", BOOK_READS, ids=list(BOOK_READS))
def test_book_commands_read_the_database_given_anywhere(command, position, book, capsys) -> None:
    argv, expected = BOOK_READS[command]
    assert main(arrange(position, ["--db", str(book)], argv)) == 0, capsys.readouterr().err
    assert expected in capsys.readouterr().out
    assert not default_db_path().exists()


@pytest.mark.parametrize("position", POSITIONS)
def test_history_export_reads_the_database_given_anywhere(position, book, tmp_path, capsys) -> None:
    out = tmp_path / "history.csv"
    argv = ["export", "--format", "csv", "--since", "2025-12-31", "--until", "2026-01-02", "-o", str(out)]
    assert main(arrange(position, ["--db", str(book)], argv)) == 0, capsys.readouterr().err
    rows = out.read_text().splitlines()
    assert rows[0].startswith("ts,uuid,node") and len(rows) == 1 + len(GPUS)


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--source", "demo:8", "customers", "export"], "--source"),
        (["customers", "export", "--seed", "3"], "--seed"),
        (["--db", "x.sqlite", "install-desktop"], "--db"),
        (["--topology", "t.csv", "alerts"], "--topology"),
        (["--read-only", "install-desktop"], "--read-only"),
        (["--interval", "2", "status"], "--interval"),
    ],
)
def test_an_option_the_command_does_not_take_is_a_usage_error(argv, option, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert option in err and "error" in err


def test_the_later_of_two_positions_wins_like_any_repeated_option(capsys) -> None:
    assert main(["--source", "demo:16", "status", "--source", "demo:8", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["gpus"]) == 8


def test_help_names_the_shared_options_at_the_top(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(flag in out for flag in ("--db", "--source", "--seed", "--topology", "--read-only"))
    assert "gpuops window" in out and os.linesep in out

"""The `gpuops` command line: version, help everywhere, and the `status --json` contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gpuops import __version__
from gpuops.cli import COMMAND_MODULES, build_parser

# The README documents these keys; scripts rely on them.
STATUS_GPU_KEYS = {
    "uuid", "index", "node", "name", "util_gpu_pct", "util_mem_pct", "mem_used_bytes",
    "mem_total_bytes", "temp_c", "power_w", "power_limit_w", "sm_clock_mhz", "mem_clock_mhz",
    "fan_pct", "pstate", "energy_j", "ecc_corrected_volatile", "ecc_uncorrected_volatile",
    "throttle_reasons", "processes", "state", "xid_events",
}


def gpuops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpuops", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )


def test_version() -> None:
    result = gpuops("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"gpuops {__version__}"


@pytest.mark.parametrize("command", [None, *COMMAND_MODULES])
def test_help_works_for_every_subcommand(command: str | None) -> None:
    result = gpuops(*([command] if command else []), "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: gpuops")


def test_every_registered_subcommand_is_in_the_parser() -> None:
    parser = build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert set(COMMAND_MODULES) <= set(choices)


def test_status_json_schema_on_the_simulated_fleet() -> None:
    result = gpuops("status", "--source", "demo:16", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["source"] == "demo:16"
    assert document["simulated"] is True
    assert isinstance(document["collected_at"], float)
    assert len(document["gpus"]) == 16
    for gpu in document["gpus"]:
        assert STATUS_GPU_KEYS <= gpu.keys()
        assert gpu["state"] in {"ok", "lost", "unknown"}
        assert isinstance(gpu["processes"], list)
        for process in gpu["processes"]:
            assert set(process) == {"pid", "name", "used_mem_bytes"}
        if gpu["state"] == "ok":
            assert isinstance(gpu["pstate"], int)
            assert isinstance(gpu["power_w"], float)
            assert isinstance(gpu["throttle_reasons"], list)
            assert all(isinstance(name, str) for name in gpu["throttle_reasons"])


def test_status_table_names_every_gpu() -> None:
    result = gpuops("status", "--source", "demo:16")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("NODE")
    assert len(lines) == 1 + 16


def test_status_auto_without_driver_says_simulated() -> None:
    # LD_LIBRARY_PATH cleared: no real or fake libnvidia-ml.so.1 can be found here.
    result = gpuops("status", "--source", "auto", env={"LD_LIBRARY_PATH": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "Simulated fleet: no NVIDIA driver found"


@pytest.mark.parametrize("spec", ["bogus", "demo:zero", "demo:0"])
def test_status_bad_source_fails_with_one_clear_line(spec: str) -> None:
    result = gpuops("status", "--source", spec, "--json")
    assert result.returncode != 0
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.startswith("gpuops:")]
    assert len(lines) == 1 and spec in lines[0]


def test_status_topology_places_nodes_and_leaves_the_rest_unassigned(tmp_path) -> None:
    nodes = sorted({gpu["node"] for gpu in json.loads(gpuops("status", "--source", "demo:16", "--json").stdout)["gpus"]})
    topology = tmp_path / "topology.csv"
    topology.write_text(f"node,site,rack,notes\n{nodes[0]},hall-a,A07,by the door\n")
    result = gpuops("status", "--source", "demo:16", "--json", "--topology", str(topology))
    assert result.returncode == 0, result.stderr
    placed = {(gpu["node"], gpu["site"], gpu["rack"]) for gpu in json.loads(result.stdout)["gpus"]}
    assert placed == {(nodes[0], "hall-a", "A07"), (nodes[1], "unassigned", None)}


def test_status_unreadable_topology_is_one_clear_line(tmp_path) -> None:
    result = gpuops("status", "--source", "demo:16", "--topology", str(tmp_path / "missing.csv"))
    assert result.returncode == 1
    assert result.stderr.strip().startswith("gpuops: cannot read topology file")

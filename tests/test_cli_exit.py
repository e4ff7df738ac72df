"""Exit statuses scripts can trust: no GPU or every target down is 1, some targets down is 0 with
`errors` filled (1 with --strict); a closed pipe ends quietly with 0; the console without a
display prints one line and exits 1 instead of Qt's abort."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gpuops.commands.window import display_problem
from tests.local_http import Answer, LocalServer, static_routes

LABELS = 'gpu="0",UUID="GPU-{u}",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="{node}"'


def gpuops(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpuops", *args], capture_output=True, text=True, timeout=timeout, env=env or dict(os.environ)
    )


def gpuops_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("gpuops:")]


@pytest.fixture
def dead_target() -> str:
    """An address on loopback where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/metrics"


@pytest.fixture
def live_target():
    answers = {"/metrics": Answer(f"DCGM_FI_DEV_GPU_TEMP{{{LABELS.format(u='aaaa', node='alpha')}}} 40\n".encode())}
    server = LocalServer(static_routes(answers))
    yield f"{server.base}/metrics"
    server.stop()


@pytest.mark.parametrize("output", [["--format", "json"], []], ids=["json", "table"])
def test_status_with_every_target_down_exits_1(dead_target, output) -> None:
    result = gpuops("status", "--source", f"scrape:{dead_target}", *output)
    assert result.returncode == 1
    [line] = gpuops_lines(result)
    assert "no GPU found" in line and "connection refused" in line
    if output:  # the document is still printed for the script to read
        assert json.loads(result.stdout)["gpus"] == []


def test_status_with_some_targets_down_exits_0_with_errors_and_1_when_strict(dead_target, live_target) -> None:
    spec = f"scrape:{live_target},{dead_target}"
    result = gpuops("status", "--source", spec, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [g["uuid"] for g in document["gpus"]] == ["GPU-aaaa"]
    assert len(document["errors"]) == 1 and dead_target in document["errors"][0]
    strict = gpuops("status", "--source", spec, "--json", "--strict")
    assert strict.returncode == 1
    assert "--strict" in gpuops_lines(strict)[0]


def test_export_snapshot_of_a_dead_fleet_exits_1_and_writes_nothing(dead_target, tmp_path) -> None:
    out = tmp_path / "fleet.json"
    result = gpuops(
        "export", "--format", "json", "--source", f"scrape:{dead_target}", "--db", str(tmp_path / "h.sqlite"), "-o", str(out)
    )
    assert result.returncode == 1 and "no GPU found" in result.stderr
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one, nor a history


def test_export_snapshot_with_some_targets_down_exits_0_and_1_when_strict(dead_target, live_target, tmp_path) -> None:
    spec = f"scrape:{live_target},{dead_target}"
    out = tmp_path / "fleet.json"
    db = str(tmp_path / "h.sqlite")
    assert gpuops("export", "--format", "json", "--source", spec, "--db", db, "-o", str(out)).returncode == 0
    assert len(json.loads(out.read_text())["errors"]) == 1
    strict = gpuops("export", "--format", "json", "--source", spec, "--db", db, "-o", str(tmp_path / "b.json"), "--strict")
    assert strict.returncode == 1 and not (tmp_path / "b.json").exists()


def test_collect_once_exits_like_status(dead_target, live_target, tmp_path) -> None:
    db = str(tmp_path / "h.sqlite")
    down = gpuops("collect", "--once", "--source", f"scrape:{dead_target}", "--db", db)
    assert down.returncode == 1
    assert down.stderr.splitlines()[-1].startswith("gpuops: no GPU found"), down.stderr
    partly = f"scrape:{live_target},{dead_target}"
    assert gpuops("collect", "--once", "--source", partly, "--db", db).returncode == 0
    assert gpuops("collect", "--once", "--strict", "--source", partly, "--db", db).returncode == 1
    lonely_strict = gpuops("collect", "--strict", "--source", "demo:8", "--db", db)
    assert lonely_strict.returncode == 2 and "--strict goes with --once" in lonely_strict.stderr


def test_a_closed_pipe_ends_quietly_with_status_0() -> None:
    command = f"{sys.executable} -m gpuops status --source demo:2000 | head -1; exit ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert result.stdout.startswith("NODE") and result.stdout.count("\n") == 1
    assert result.stderr == ""


def _no_display_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    return {**env, **extra}


@pytest.mark.parametrize("command", [[], ["window"], ["--source", "demo:8"]], ids=["bare", "window", "with-options"])
def test_the_console_without_a_display_is_one_line_and_exit_1(command) -> None:
    result = gpuops(*command, env=_no_display_env())
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "no display" in line and all(f"gpuops {name}" in line for name in ("status", "collect", "export"))


def test_the_console_on_a_display_that_cannot_be_opened_is_one_line_and_exit_1() -> None:
    assert not Path("/tmp/.X11-unix/X99").exists(), "an X server runs on :99 here"
    result = gpuops("window", env=_no_display_env(DISPLAY=":99"))
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "cannot open the display DISPLAY=:99" in line and "gpuops status" in line


def test_an_explicit_platform_that_needs_no_display_is_trusted() -> None:
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}) is None
    assert display_problem({"QT_QPA_PLATFORM": "minimal"}) is None
    assert display_problem({"QT_QPA_PLATFORM": "xcb"}) == "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    assert display_problem({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":99"}) == "cannot open the display DISPLAY=:99"


def test_a_snapshot_picture_needs_no_display(tmp_path) -> None:
    out = tmp_path / "fleet.png"
    result = gpuops("export", "--format", "png", "--source", "demo:8", "--db", str(tmp_path / "h.sqlite"), "-o", str(out),
                    env=_no_display_env(DISPLAY=":99"))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(b"\x89PNG")

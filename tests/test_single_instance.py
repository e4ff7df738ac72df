"""One console per user, with real processes: a second launch raises the first window and exits;
--new-instance opens another; a socket left by a killed console does not block the next one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

LISTENING = "single instance: listening on"
RAISED = "raised the window: gpuops was launched again"
#: Generous bounds: two cores shared with other test runs; Qt and pyqtgraph take seconds to load.
START_TIMEOUT_S = 60.0


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    environment = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    environment.update(QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(runtime), XDG_CONFIG_HOME=str(tmp_path / "config"))
    return environment


class Console:
    """A `gpuops` process whose stderr goes to a file the test reads while it runs."""

    def __init__(self, tmp_path: Path, env: dict[str, str], name: str, *args: str) -> None:
        self.log_path = tmp_path / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gpuops", "-v", "--source", "demo:8", *args],
            stdout=subprocess.DEVNULL, stderr=self._log, env=env,
        )

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, needle: str, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while needle not in self.text():
            if self.process.poll() is not None:
                pytest.fail(f"gpuops exited ({self.process.returncode}) before logging {needle!r}:\n{self.text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {needle!r} within {timeout_s:.0f} s:\n{self.text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        self._log.close()


@pytest.fixture
def consoles(tmp_path, env):
    started: list[Console] = []

    def start(name: str, *args: str) -> Console:
        console = Console(tmp_path, env, name, *args)
        started.append(console)
        return console

    yield start
    for console in started:
        console.stop()


def launch_again(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpuops", "--source", "demo:8", *args],
        capture_output=True, text=True, env=env, timeout=START_TIMEOUT_S,
    )


def test_second_launch_raises_the_running_window_and_exits(consoles, env):
    first = consoles("first")
    first.wait_for(LISTENING)

    second = launch_again(env)
    assert second.returncode == 0, second.stderr
    assert "already open" in second.stderr
    first.wait_for(RAISED, timeout_s=10)
    assert first.process.poll() is None, "the running console must keep running"

    third = launch_again(env)
    assert third.returncode == 0
    first.wait_for(RAISED, timeout_s=10)
    deadline = time.monotonic() + 10
    while first.text().count(RAISED) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert first.text().count(RAISED) == 2, "each launch raises the window once"


def test_new_instance_opens_another_window(consoles):
    first = consoles("first")
    first.wait_for(LISTENING)
    other = consoles("other", "--new-instance")
    other.wait_for("a new instance was asked for")
    time.sleep(3)  # long enough to have asked the first console, had it not been told not to
    assert other.process.poll() is None, f"--new-instance must keep its own window open:\n{other.text()}"
    assert RAISED not in first.text()


def test_a_stale_socket_from_a_killed_console_is_replaced(consoles, env):
    crashed = consoles("crashed")
    crashed.wait_for(LISTENING)
    crashed.process.send_signal(signal.SIGKILL)
    crashed.process.wait(timeout=30)
    assert any(Path(env["XDG_RUNTIME_DIR"]).iterdir()), "the killed console's socket should be left behind"

    successor = consoles("successor")
    successor.wait_for(LISTENING)
    assert successor.process.poll() is None

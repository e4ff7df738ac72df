"""One console per user and display, with real processes: a second launch on the same display
raises the first window and exits; a launch on another display opens its own; --new-instance
opens another; a socket left by a killed console does not block the next one."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpuops.gui.app.single_instance import display_key, server_name

LISTENING = "single instance: listening on"
RAISED = "raised the window: gpuops was launched again"
#: Generous bounds: two cores shared with other test runs; Qt and pyqtgraph take seconds to load.
START_TIMEOUT_S = 60.0


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    environment = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_ID")}
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

    def start(name: str, *args: str, environment: dict[str, str] | None = None) -> Console:
        console = Console(tmp_path, environment or env, name, *args)
        started.append(console)
        return console

    yield start
    for console in started:
        console.stop()


def on_display(env: dict[str, str], display: str) -> dict[str, str]:
    return {**env, "DISPLAY": display}


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


def test_a_launch_on_another_display_opens_its_own_window(consoles, env):
    first = consoles("first", environment=on_display(env, ":1"))
    other = consoles("other", environment=on_display(env, ":2"))
    first.wait_for(LISTENING)
    other.wait_for(LISTENING)
    time.sleep(1)
    assert other.process.poll() is None, f"a console on another display must keep its own window:\n{other.text()}"
    assert RAISED not in first.text() and RAISED not in other.text()
    sockets = sorted(p.name for p in Path(env["XDG_RUNTIME_DIR"]).iterdir())
    assert sockets == ["gpuops-console-x11-1.sock", "gpuops-console-x11-2.sock"]

    again = launch_again(on_display(env, ":1.0"))  # screen 0 of display 1: the first console's display
    assert again.returncode == 0, again.stderr
    assert "already open" in again.stderr
    first.wait_for(RAISED, timeout_s=10)
    assert RAISED not in other.text(), "only the console on the launch's own display is raised"


@pytest.mark.parametrize(("environ", "key"), [
    ({"DISPLAY": ":0"}, "x11-0"),
    ({"DISPLAY": ":0.1"}, "x11-0"),  # another screen of the same X server
    ({"DISPLAY": "unix:0"}, "x11-0"),
    ({"DISPLAY": "localhost:10.0"}, "x11-localhost-10"),  # ssh -X: another display
    ({"DISPLAY": ":1", "WAYLAND_DISPLAY": "wayland-0"}, "wayland-0"),  # XWayland is the compositor's
    ({"WAYLAND_DISPLAY": "/run/user/7/wayland-1", "XDG_RUNTIME_DIR": "/run/user/7"}, "wayland-1"),
    ({"XDG_SESSION_ID": "c4"}, "session-c4"),  # no display: the login session stands for it
    ({"DISPLAY": ":0", "XDG_SESSION_ID": "c4"}, "x11-0"),  # an ssh shell on :0 finds the desktop's console
    ({}, "none"),
])
def test_display_key_names_the_display_not_the_screen(environ, key):
    assert display_key(environ) == key


def test_display_keys_that_need_replaced_characters_stay_distinct_and_safe():
    displays = ("[::1]:3", "[::2]:3", "/tmp/launch-a/org.xquartz:0", "/tmp/launch_a/org.xquartz:0")
    keys = {display_key({"DISPLAY": d}) for d in displays}
    assert len(keys) == 4
    assert all(re.fullmatch(r"[A-Za-z0-9._-]{1,48}", k) for k in keys), keys


def test_server_name_is_per_user_and_display(tmp_path):
    assert server_name({"XDG_RUNTIME_DIR": str(tmp_path), "DISPLAY": ":3"}) == str(tmp_path / "gpuops-console-x11-3.sock")
    assert server_name({"DISPLAY": ":3"}) == f"gpuops-console-{os.getuid()}-x11-3"

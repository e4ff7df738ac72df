"""`gpuops status` as a person uses it, the real command in a child process: colour and `--watch` in
a pseudo-terminal (Ctrl-C is SIGINT), plain text when piped, filters, `--wide`, `--processes` on the
fake NVML driver, and the JSON document's health keys."""

from __future__ import annotations

import errno
import json
import os
import pty
import pwd
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fake_nvml.control import FOREIGN_PID, subprocess_env
from tests.servers import wait_until

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
COLOUR = re.compile(r"\x1b\[[0-9;]*m")
COMMAND = [sys.executable, "-m", "gpuops", "status"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    return {**env, "TERM": "xterm-256color", **extra}


class Terminal:
    """The command on a pseudo-terminal: its output as the terminal received it."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen([*COMMAND, *args], stdin=slave, stdout=slave, stderr=slave, env=env)
        os.close(slave)
        self.output = b""

    def read_until(self, done, limit_s: float = 60) -> bytes:
        deadline = time.monotonic() + limit_s
        while not done(self.output):
            if time.monotonic() > deadline:
                pytest.fail(f"gave up waiting; terminal shows {self.output[-2000:]!r}")
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError as exc:  # EIO: the child closed the terminal (exited)
                    if exc.errno != errno.EIO:
                        raise
                    chunk = b""
                if not chunk:
                    break
                self.output += chunk
        return self.output

    def finish(self, limit_s: float = 30) -> int:
        self.read_until(lambda _: False, limit_s)
        code = self.process.wait(limit_s)
        os.close(self.master)
        return code


def test_on_a_terminal_the_table_is_coloured_by_health() -> None:
    term = Terminal(["--source", "demo:2000", "--health", "critical,ok"], _env())
    assert term.finish() == 0
    text = term.output.decode()
    assert "\x1b[1;31mcritical: " in text and "\x1b[32mok\x1b[0m" in text
    assert "\x1b[33mwarning" not in text  # filtered out
    assert "\x1b[31m" in text and "\x1b[32m" in text  # load: heavy and light utilization


@pytest.mark.parametrize("how", ["NO_COLOR", "--no-color"])
def test_no_color_on_a_terminal(how) -> None:
    env = _env(NO_COLOR="1") if how == "NO_COLOR" else _env()
    term = Terminal(["--source", "demo:64", *([how] if how.startswith("--") else [])], env)
    assert term.finish() == 0
    assert b"NODE" in term.output and not COLOUR.search(term.output.decode())


def test_piped_there_is_no_colour_and_every_line_fits_100_columns() -> None:
    result = subprocess.run([*COMMAND, "--source", "demo:2000"], capture_output=True, text=True, env=_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    assert not ANSI.search(result.stdout)
    lines = result.stdout.splitlines()
    assert len(lines) == 2001 and max(len(line) for line in lines) <= 100
    assert "critical: GPU lost" in result.stdout  # the health column says why
    wide = subprocess.run([*COMMAND, "--source", "demo:2000", "--wide"], capture_output=True, text=True, env=_env(), timeout=120)
    assert wide.returncode == 0 and max(len(line) for line in wide.stdout.splitlines()) > 100
    assert "critical: GPU lost (fell off the bus)" in wide.stdout and "…" not in wide.stdout


def test_watch_redraws_in_place_until_ctrl_c_and_exits_0() -> None:
    term = Terminal(["--source", "demo:16", "--watch", "0.2"], _env())
    term.read_until(lambda out: out.count(b"Ctrl-C to stop") >= 3)
    term.process.send_signal(signal.SIGINT)
    assert term.finish() == 0
    text = term.output.decode()
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    assert text.startswith("\x1b[H\x1b[2J")  # the first frame clears the screen
    frames = text.split("\x1b[H")[1:]
    assert len(frames) >= 3 and all(not f.startswith("\x1b[2J") for f in frames[1:])  # later ones overwrite
    for frame in frames[:3]:
        rows = [line for line in ANSI.sub("", frame).splitlines() if line.strip()]
        assert "demo:16" in rows[0] and rows[1].startswith("NODE") and len(rows) == 2 + 16


def test_watch_cuts_a_frame_to_the_terminal_height_so_redraws_stay_in_place() -> None:
    term = Terminal(["--source", "demo:64", "-i", "0.2"], _env(LINES="12", COLUMNS="120"))
    term.read_until(lambda out: out.count(b"Ctrl-C to stop") >= 2)
    term.process.send_signal(signal.SIGINT)
    assert term.finish() == 0
    frame = ANSI.sub("", term.output.decode().split("\x1b[H")[2])
    lines = frame.splitlines()
    assert len(lines) == 11 and lines[1].startswith("NODE")
    assert lines[-1] == f"… {64 + 2 - 10} more lines: narrow with --node, --gpu or --health"


def test_ctrl_c_while_a_slow_driver_opens_is_a_clean_stop_too(fake_nvml_library: Path) -> None:
    env = subprocess_env(fake_nvml_library, "eight", latency_ms=50, base=_env())  # every NVML call takes 50 ms
    term = Terminal(["--source", "nvml", "--watch", "1"], env)
    maps = Path(f"/proc/{term.process.pid}/maps")
    wait_until("the driver to be loaded", lambda: "libnvidia-ml" in maps.read_text(), 60)  # Python is up, NVML opening
    term.process.send_signal(signal.SIGINT)
    assert term.finish() == 0
    assert b"Ctrl-C to stop" not in term.output  # stopped before the first frame
    assert b"Traceback" not in term.output and b"KeyboardInterrupt" not in term.output


def test_watch_piped_prints_frame_after_frame_and_ctrl_c_is_quiet() -> None:
    process = subprocess.Popen([*COMMAND, "--source", "demo:8", "-i", "0.1"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=_env())
    seen = b""
    while seen.count(b"Ctrl-C to stop") < 2:
        line = process.stdout.readline()  # type: ignore[union-attr]  # stdout=PIPE
        assert line, f"the watch ended early: {process.stderr.read()!r}"  # type: ignore[union-attr]  # stderr=PIPE
        seen += line
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0 and b"Traceback" not in err
    assert not ANSI.search((seen + out).decode())


def test_watch_takes_a_default_interval_and_refuses_json() -> None:
    refused = subprocess.run([*COMMAND, "--source", "demo:8", "--watch", "--json"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--watch" in refused.stderr
    bad = subprocess.run([*COMMAND, "--source", "demo:8", "-i", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "outside" in bad.stderr
    term = Terminal(["--source", "demo:8", "-i"], _env())  # -i alone: every second, like gpustat
    term.read_until(lambda out: b"every 1 s" in out)
    term.process.send_signal(signal.SIGINT)
    assert term.finish() == 0


def _json(*args: str, env: dict[str, str] | None = None) -> dict:
    result = subprocess.run([*COMMAND, *args, "--json"], capture_output=True, text=True, env=env or _env(), timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_filters_apply_to_json_with_the_health_of_each_gpu() -> None:
    everything = _json("--source", "demo:2000")["gpus"]
    assert all(g["health"] in ("ok", "warning", "critical") for g in everything)
    assert all((g["health_reason"] is None) == (g["health"] == "ok") for g in everything)
    critical = _json("--source", "demo:2000", "--health", "critical")["gpus"]
    assert critical and all(g["health"] == "critical" for g in critical)
    lost = {g["uuid"] for g in everything if g["state"] == "lost"}  # the simulated fleet's values move; its lost GPUs stay
    assert lost and lost <= {g["uuid"] for g in critical} < {g["uuid"] for g in everything}
    node = everything[100]["node"]
    picked = _json("--source", "demo:2000", "--node", node, "--gpu", "1,2")["gpus"]
    assert [(g["node"], g["index"]) for g in picked] == [(node, 1), (node, 2)]
    by_uuid = _json("--source", "demo:2000", "--gpu", everything[7]["uuid"][:13])["gpus"]
    assert [g["uuid"] for g in by_uuid] == [everything[7]["uuid"]]


def test_a_filter_that_matches_nothing_says_so_and_is_not_a_failure() -> None:
    result = subprocess.run([*COMMAND, "--source", "demo:64", "--node", "nowhere-*"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.strip() == "no GPU of 64 matches --node nowhere-*"
    refused = subprocess.run([*COMMAND, "--source", "demo:64", "--health", "sick"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "'sick' is not a health" in refused.stderr


def test_processes_per_gpu_with_user_and_an_empty_name_in_another_pid_namespace(fake_nvml_library: Path) -> None:
    env = subprocess_env(fake_nvml_library, "default", base=_env())
    process = subprocess.Popen([*COMMAND, "--source", "nvml", "--processes"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    lines = out.splitlines()
    assert lines[1].split() == ["PID", "USER", "GPU", "MEM", "PROCESS"]
    gpu0 = lines.index(next(line for line in lines if line.split()[1:2] == ["0"]))
    own, foreign = lines[gpu0 + 1].split(), lines[gpu0 + 2].split()
    me = pwd.getpwuid(os.getuid()).pw_name
    # The fake driver reports the process that loaded it (this gpuops) and one of a container.
    assert own[0] == str(process.pid) and own[1] == me and own[2:4] == ["2.0", "GiB"] and own[4].startswith("python")
    assert foreign == [str(FOREIGN_PID), "30.0", "GiB"]  # no user, no name: not visible from here
    document = _json("--source", "nvml", env=env)
    names = {p["pid"]: p["name"] for p in document["gpus"][0]["processes"]}
    assert names[FOREIGN_PID] is None


def _status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=60)


def test_output_file_and_dash_for_standard_output(tmp_path) -> None:
    out = tmp_path / "fleet.json"
    written = _status("--source", "demo:16", "--json", "-o", str(out))
    assert written.returncode == 0 and written.stdout == ""
    assert len(json.loads(out.read_text())["gpus"]) == 16 and out.stat().st_mode & 0o777 == 0o600
    before = out.read_bytes()
    again = _status("--source", "demo:16", "--json", "-o", str(out))
    assert again.returncode == 2 and "--force" in again.stderr and out.read_bytes() == before
    forced = _status("--source", "demo:8", "--json", "-o", str(out), "--force")
    assert forced.returncode == 0 and len(json.loads(out.read_text())["gpus"]) == 8
    dash = _status("--source", "demo:8", "-o", "-")
    assert dash.returncode == 0 and dash.stdout.splitlines()[0].startswith("NODE") and len(dash.stdout.splitlines()) == 9
    watch = _status("--source", "demo:8", "-i", "-o", str(tmp_path / "w.txt"))
    assert watch.returncode == 2 and not (tmp_path / "w.txt").exists()

"""Scheduler hooks: a command run for each transition into a state, so the scheduler follows the
lifecycle (`kubectl cordon {node}` when draining, `scontrol update NodeName={node} State=DRAIN
Reason="{reason}"`, ...).

The command is split like a shell line first and only then are the placeholders ({node}, {gpu},
{state}, {previous}, {reason}, {ticket}) filled in, one argument each: a reason can never become
a shell command. No shell runs it. A hook has a timeout; on timeout its whole process group is
killed. Its exit status and output go to the audit log; one that fails, times out or cannot start
leaves the state unchanged (see LifecycleBook.transition).

The hooks file is JSON: {"timeout_s": 30, "commands": {"draining": "kubectl cordon {node}", ...}},
keyed by the state entered.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpuops.core import jsontext
from gpuops.core.allocations.errors import AllocationError
from gpuops.core.lifecycle.states import State

DEFAULT_TIMEOUT_S = 30.0
#: The most output kept in the audit log per hook run (the end is cut, and says so).
OUTPUT_LIMIT = 4000
PLACEHOLDERS = ("node", "gpu", "state", "previous", "reason", "ticket")
#: The hooks file the CLI and the console read when none is named, in the user config directory.
HOOKS_FILE = "lifecycle-hooks.json"


class HookConfigError(ValueError):
    """The hooks file cannot be used; the message says where and why."""


class HookFailed(AllocationError):
    """A transition's hook failed, timed out or could not start: the state is unchanged."""

    def __init__(self, message: str, result: HookResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class HookResult:
    """One run: the argv run, its exit status (None when it timed out or never started), its
    output (stdout and stderr together), how long it took, and why it failed (None: it succeeded)."""

    argv: tuple[str, ...]
    exit_status: int | None
    output: str
    duration_s: float
    failure: str | None

    @property
    def ok(self) -> bool:
        return self.failure is None

    def as_dict(self) -> dict[str, Any]:
        return {"command": shlex.join(self.argv), "exit_status": self.exit_status, "output": self.output,
                "duration_s": round(self.duration_s, 3), "failure": self.failure}


@dataclass(frozen=True)
class Hooks:
    """The command template for each state entered, and the timeout of a run."""

    commands: Mapping[State, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S

    def argv(self, target: State, values: Mapping[str, str]) -> tuple[str, ...] | None:
        """The command for entering `target` with its placeholders filled, or None when there is none."""
        template = self.commands.get(target)
        if template is None:
            return None
        return tuple(part.format_map(values) for part in shlex.split(template))

    def run(self, target: State, values: Mapping[str, str]) -> HookResult | None:
        """Run the hook of `target` (None: there is none) and wait at most `timeout_s`."""
        argv = self.argv(target, values)
        if argv is None:
            return None
        return run_command(argv, self.timeout_s)


def run_command(argv: tuple[str, ...], timeout_s: float) -> HookResult:
    began = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
    except OSError as exc:
        return HookResult(argv, None, "", time.monotonic() - began, f"cannot run {argv[0]!r}: {exc.strerror or exc}")
    try:
        out, _ = proc.communicate(timeout=timeout_s)
        failure = None if proc.returncode == 0 else f"exited with status {proc.returncode}"
        status: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its children too: a hook's shell script may have started some
        out, _ = proc.communicate()
        failure, status = f"timed out after {timeout_s:g} s", None
    text = out.decode("utf-8", "replace")
    if len(text) > OUTPUT_LIMIT:
        text = text[:OUTPUT_LIMIT] + f"\n… ({len(text) - OUTPUT_LIMIT} more characters cut)"
    return HookResult(argv, status, text, time.monotonic() - began, failure)


def configured_hooks(path: Path | None = None) -> Hooks | None:
    """The hooks of `path`, or of the user's default hooks file when there is one (None: no hooks);
    HookConfigError for a file that cannot be used."""
    if path is None:
        import platformdirs

        path = platformdirs.user_config_path("gpuops") / HOOKS_FILE
        if not path.exists():
            return None
    return load_hooks(path)


def load_hooks(path: Path) -> Hooks:
    """The hooks of the JSON file at `path`; HookConfigError naming what is wrong."""
    try:
        data = jsontext.read_file(path)
    except jsontext.UnreadableJson as exc:
        raise HookConfigError(f"hooks file {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("commands", {}), dict):
        raise HookConfigError(f'hooks file {path}: expected {{"timeout_s": N, "commands": {{"STATE": "COMMAND"}}}}')
    timeout = data.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
        raise HookConfigError(f"hooks file {path}: timeout_s must be a number of seconds, 0 to 3600, not {timeout!r}")
    commands: dict[State, str] = {}
    dummy = {name: name for name in PLACEHOLDERS}
    for key, template in data.get("commands", {}).items():
        try:
            state = State(key)
        except ValueError:
            raise HookConfigError(
                f"hooks file {path}: {key!r} is not a state ({', '.join(s.value for s in State)})"
            ) from None
        if not isinstance(template, str) or not template.strip():
            raise HookConfigError(f"hooks file {path}: the command for {key} must be a non-empty string")
        try:
            Hooks({state: template}).argv(state, dummy)
        except (ValueError, KeyError, IndexError) as exc:
            raise HookConfigError(
                f"hooks file {path}: command for {key}: {exc} (placeholders: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
            ) from None
        commands[state] = template
    return Hooks(commands, float(timeout))

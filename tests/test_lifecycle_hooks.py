"""Scheduler hooks, with real commands: success is recorded with the transition, a failure or a
timeout is recorded on its own and leaves the state unchanged."""

from __future__ import annotations

import json

import pytest

from gpuops.cli import main
from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.lifecycle.book import LifecycleBook
from gpuops.core.lifecycle.hooks import HookConfigError, HookFailed, Hooks, load_hooks
from gpuops.core.lifecycle.states import State
from gpuops.core.store.connection import open_database
from tests.allocations_support import make_history
from tests.samples import make_inventory

GPUS = make_inventory(8)


@pytest.fixture
def history(tmp_path):
    return make_history(tmp_path / "history.sqlite", GPUS)


@pytest.fixture
def book(history):
    conn, _ = open_database(history, create=False)
    repo = AllocationRepository(conn, user="dave@dc1")
    yield LifecycleBook(repo)
    repo.close()


def test_a_successful_hook_is_recorded_with_the_transition_its_values_one_argument_each(book):
    hooks = Hooks({State.DRAINING: 'printf "%s|%s|%s" {node} "Reason={reason}" {previous}'})
    book.transition("node00", State.DRAINING, "fan; rm -rf /tmp/x", hooks=hooks)
    assert book.view().node_state("node00") is State.DRAINING
    (entry,) = book.repo.audit_log(entity="node")
    hook = entry.after["hook"]
    assert hook["exit_status"] == 0 and hook["failure"] is None
    assert hook["output"] == "node00|Reason=fan; rm -rf /tmp/x|production"  # no shell ever saw the reason


def test_a_failing_hook_leaves_the_state_and_is_audited(book):
    with pytest.raises(HookFailed, match="exited with status 1; the state is unchanged") as failed:
        book.transition("node00", State.REPAIR, "XID 79", hooks=Hooks({State.REPAIR: "false"}))
    assert failed.value.result.exit_status == 1
    assert book.view().node_state("node00") is State.PRODUCTION
    (entry,) = book.repo.audit_log(entity="node")
    assert entry.action == "hook_failed" and entry.user == "dave@dc1"
    assert entry.after["state"] == "repair" and entry.after["hook"]["command"] == "false"
    book.transition("node00", State.REPAIR, "XID 79, no hook for it", hooks=Hooks({State.DRAINING: "false"}))
    assert book.view().node_state("node00") is State.REPAIR


def test_a_hook_that_runs_too_long_is_killed_and_changes_nothing(book):
    with pytest.raises(HookFailed, match=r"timed out after 0.3 s") as failed:
        book.transition("node00", State.DRAINING, "x", hooks=Hooks({State.DRAINING: "sleep 5"}, timeout_s=0.3))
    assert failed.value.result.exit_status is None
    assert book.view().node_state("node00") is State.PRODUCTION
    assert book.repo.audit_log(entity="node")[0].after["hook"]["failure"] == "timed out after 0.3 s"


def test_a_hook_that_cannot_start_and_one_with_output_say_why(book):
    with pytest.raises(HookFailed, match="cannot run 'no-such-scheduler-cli'"):
        book.transition("node00", State.DRAINING, "x", hooks=Hooks({State.DRAINING: "no-such-scheduler-cli {node}"}))
    with pytest.raises(HookFailed, match="it said: node00 is not known to the scheduler"):
        book.transition("node00", State.DRAINING, "x", hooks=Hooks(
            {State.DRAINING: "sh -c 'echo {node} is not known to the scheduler >&2; exit 3'"}))
    assert book.view().node_state("node00") is State.PRODUCTION


def test_an_invalid_move_runs_no_hook_and_read_only_runs_none(book, history, tmp_path):
    marker = tmp_path / "ran"
    hooks = Hooks({State.RMA: f"touch {marker}", State.DRAINING: f"touch {marker}"})
    with pytest.raises(Exception, match="cannot go from production to rma"):
        book.transition("node00", State.RMA, "x", ticket="NV-1", hooks=hooks)
    read_only = LifecycleBook(AllocationRepository.open(history, read_only=True))
    try:
        with pytest.raises(Exception, match="read-only"):
            read_only.transition("node00", State.DRAINING, "x", hooks=hooks)
    finally:
        read_only.repo.close()
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"commands": {"drain": "true"}}, "'drain' is not a state"),
        ({"commands": {"draining": "kubectl cordon {host}"}}, "command for draining: 'host'"),
        ({"commands": {"draining": "echo 'unbalanced"}}, "command for draining"),
        ({"timeout_s": 0, "commands": {}}, "timeout_s must be"),
        ({"commands": {"draining": ""}}, "non-empty string"),
        ([1, 2], "expected"),
    ],
)
def test_a_bad_hooks_file_names_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "hooks.json"
    path.write_text(json.dumps(content))
    with pytest.raises(HookConfigError, match=message):
        load_hooks(path)


def test_the_cli_takes_a_hooks_file(history, tmp_path, capsys):
    hooks = tmp_path / "hooks.json"
    hooks.write_text(json.dumps({"timeout_s": 5, "commands": {"draining": "false", "repair": "echo cordoned {node}"}}))
    argv = ["--db", str(history), "--hooks", str(hooks)]
    assert main(["nodes", "drain", "node00", "--reason", "x", *argv]) == 1
    assert "its hook exited with status 1; the state is unchanged" in capsys.readouterr().err
    assert main(["nodes", "repair", "node00", "--reason", "x", *argv]) == 0
    hooks.write_text("{not json")
    assert main(["nodes", "burn-in", "node00", "--reason", "x", *argv]) == 1
    assert "not JSON" in capsys.readouterr().err
    conn, _ = open_database(history, create=False)
    try:
        entries = AllocationRepository(conn).audit_log(entity="node")
        assert [e.action for e in entries] == ["transition", "hook_failed"]
        assert entries[0].after["hook"]["output"] == "cordoned node00\n"
    finally:
        conn.close()

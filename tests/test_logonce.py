"""gpuops.core.logonce: a problem that lasts many polls is logged once, not every poll."""

from __future__ import annotations

import logging

import pytest

from gpuops.core.agent.poller import SamplePoller
from gpuops.core.logonce import LastingProblem, LoggedOnce
from gpuops.core.sources.base import SourceError
from tests.agent_helpers import PlaybackSource
from tests.samples import make_sample

log = logging.getLogger("gpuops.test.logonce")


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == log.name]
    caplog.clear()
    return lines


def test_a_lasting_problem_is_logged_when_it_starts_changes_and_ends(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=log.name)
    clock = _Clock()
    problem = LastingProblem(log, prefix="polling x ", clock=clock)
    assert problem.message is None
    assert [problem.occur("failed: down") for _ in range(50)] == [True] + [False] * 49
    assert problem.message == "failed: down"
    assert _lines(caplog) == [(logging.ERROR, "polling x failed: down")]
    assert problem.occur("failed: refused") is True
    assert _lines(caplog) == [(logging.ERROR, "polling x failed: refused")]
    clock.now += 42
    problem.resolve("works again")
    assert problem.message is None
    assert _lines(caplog) == [(logging.WARNING, "polling x works again after 42 s")]
    problem.resolve("works again")  # nothing was wrong any more
    assert _lines(caplog) == []


def test_the_same_problem_coming_back_is_logged_again_without_a_reminder_period(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=log.name)
    problem = LastingProblem(log, logging.WARNING)
    problem.occur("disk full")
    problem.resolve()  # no text: the end is not logged
    problem.occur("disk full")
    assert _lines(caplog) == [(logging.WARNING, "disk full"), (logging.WARNING, "disk full")]


def test_with_a_reminder_period_the_same_message_is_logged_at_most_that_often(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=log.name)
    clock = _Clock()
    problem = LastingProblem(log, prefix="history: ", remind_after_s=300, clock=clock)
    assert problem.occur("cannot write", " (1 waiting)") is True
    for k in range(2, 30):  # comes and goes every 10 s: quiet
        clock.now += 5
        problem.resolve("writing resumed")
        clock.now += 5
        assert problem.occur("cannot write", f" ({k} waiting)") is False
    assert _lines(caplog) == [  # the first episode's end was logged, the repeats not at all
        (logging.ERROR, "history: cannot write (1 waiting)"),
        (logging.WARNING, "history: writing resumed after 5 s"),
    ]
    clock.now += 100  # 300 s after the first line, the problem still there: reminded
    assert problem.occur("cannot write", " (31 waiting)") is True
    assert problem.occur("clock behind") is True  # another message is logged at once
    clock.now += 7
    problem.resolve("writing resumed")
    assert _lines(caplog) == [
        (logging.ERROR, "history: cannot write (31 waiting)"),
        (logging.ERROR, "history: clock behind"),
        (logging.WARNING, "history: writing resumed after 107 s"),  # since this episode began
    ]


def test_an_end_is_logged_only_when_its_start_was(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=log.name)
    clock = _Clock()
    problem = LastingProblem(log, remind_after_s=300, clock=clock)
    problem.occur("cannot write")
    problem.resolve("writing resumed")
    caplog.clear()
    clock.now += 10
    problem.occur("cannot write")  # within the reminder period: quiet, and so is its end
    problem.resolve("writing resumed")
    assert _lines(caplog) == []


def test_logged_once_tells_each_key_the_first_time_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=log.name)
    once = LoggedOnce(log)
    assert once.log(("permission", "GPU-1", "fan_pct"), "no permission to read %s on GPU %s", "fan_pct", "GPU-1") is True
    for _ in range(10):
        assert once.log(("permission", "GPU-1", "fan_pct"), "no permission to read %s on GPU %s", "fan_pct", "GPU-1") is False
    assert once.log(("permission", "GPU-2", "fan_pct"), "no permission to read %s on GPU %s", "fan_pct", "GPU-2") is True
    assert _lines(caplog) == [
        (logging.WARNING, "no permission to read fan_pct on GPU GPU-1"),
        (logging.WARNING, "no permission to read fan_pct on GPU GPU-2"),
    ]


def test_the_agent_logs_a_source_that_stays_down_once_and_its_return(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="gpuops.agent")
    down = SourceError("driver not loaded")
    poller = SamplePoller(PlaybackSource([down] * 20 + [make_sample(2, ts=100.0)]))
    snapshots = [poller.poll_once() for _ in range(21)]
    assert [s.error for s in snapshots[:20]] == ["driver not loaded"] * 20 and snapshots[20].error is None
    lines = [r.getMessage() for r in caplog.records if r.name == "gpuops.agent"]
    assert lines[0] == "source poll failed: driver not loaded"
    assert len(lines) == 2 and lines[1].startswith("source poll works again after ")

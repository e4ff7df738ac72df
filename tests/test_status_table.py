"""The `gpuops status` table (core/status_table.py) on real polls: the simulated fleet and a real
dcgm-exporter capture with a 41-character host name served on 127.0.0.1."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from gpuops.core.health import HealthModel
from gpuops.core.sources.demo import DemoSource
from gpuops.core.sources.scrape import ScrapeSource
from gpuops.core.status_table import (
    DEFAULT_WIDTH,
    Filters,
    TableOptions,
    colour_enabled,
    grade_sample,
    render_table,
    selected,
)
from tests.local_http import Answer, LocalServer, static_routes

CAPTURES = Path(__file__).parent / "fixtures" / "dcgm-exporter"
A30_MIG = CAPTURES / "dcgm-exporter-issue-317_a30-mig.prom"  # Hostname is 41 characters long
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def fleet():
    """A 2,000-GPU simulated poll: healthy, warning, critical and lost GPUs."""
    with DemoSource(2000, seed=0) as source:
        sample = source.poll()
    return sample, grade_sample(sample, HealthModel())


def test_grades_follow_the_console_health_model(fleet) -> None:
    sample, grades = fleet
    health = HealthModel().assess(sample)
    assert [g.grade for g in grades] == [health.of(i).label for i in range(len(sample))]
    assert {g.grade for g in grades} == {"ok", "warning", "critical"}
    assert all((g.reason == "") == (g.grade == "ok") for g in grades)
    assert all(g.text == f"{g.grade}: {g.reason}" for g in grades if g.grade != "ok")


def test_the_default_table_fits_100_columns_and_wide_shows_everything(fleet) -> None:
    sample, grades = fleet
    records = sample.records()
    narrow = render_table(records, grades, (), TableOptions())
    lines = narrow.splitlines()
    assert len(lines) == 1 + len(records)
    assert max(len(line) for line in lines) <= DEFAULT_WIDTH
    assert lines[0].split() == ["NODE", "IDX", "NAME", "UTIL%", "MEMORY", "TEMP", "POWER", "HEALTH"]
    wide = render_table(records, grades, (), TableOptions(wide=True)).splitlines()
    assert max(len(line) for line in wide) > DEFAULT_WIDTH
    for record, grade, line in zip(records, grades, wide[1:], strict=True):
        assert record["uuid"] in line and line.endswith(grade.text)  # nothing cut
    worst = max(range(len(records)), key=lambda i: len(grades[i].text))
    assert grades[worst].text not in lines[1 + worst] and lines[1 + worst].endswith("…")


def test_a_long_host_name_is_cut_to_fit(tmp_path) -> None:
    server = LocalServer(static_routes({"/metrics": Answer(A30_MIG.read_bytes())}))
    source = ScrapeSource([f"{server.base}/metrics"])
    try:
        sample = source.poll()
    finally:
        source.close()
        server.stop()
    assert max(len(gpu.node) for gpu in sample.gpus) == 41
    table = render_table(sample.records(), grade_sample(sample, HealthModel()), sample.errors, TableOptions())
    rows = table.splitlines()[1:]
    assert rows and all(len(line) <= DEFAULT_WIDTH for line in rows)
    assert all(line.startswith("yg-data-k8s-gpu…") for line in rows)


def test_colour_by_health_and_load(fleet) -> None:
    sample, grades = fleet
    records = sample.records()
    plain = render_table(records, grades, (), TableOptions()).splitlines()
    coloured = render_table(records, grades, (), TableOptions(colour=True)).splitlines()
    assert not any(ANSI.search(line) for line in plain)
    assert [ANSI.sub("", line) for line in coloured] == plain  # colour changes no character
    for record, grade, line in zip(records, grades, coloured[1:], strict=True):
        want = {"ok": "\x1b[32m", "warning": "\x1b[33m", "critical": "\x1b[1;31m"}[grade.grade]
        assert line.rsplit("  ", 1)[-1].lstrip().startswith(want + grade.text[:5])
        util = record["util_gpu_pct"]
        if util is not None:
            load = "\x1b[31m" if util >= 75 else "\x1b[33m" if util >= 10 else "\x1b[32m"
            assert f"{load}{util:.0f}\x1b[0m" in line


@pytest.mark.parametrize(
    ("tty", "flag", "env", "expected"),
    [
        (True, False, {}, True),
        (False, False, {}, False),
        (True, True, {}, False),
        (True, False, {"NO_COLOR": "1"}, False),
        (True, False, {"NO_COLOR": ""}, True),  # no-color.org: only a non-empty value counts
        (True, False, {"TERM": "dumb"}, False),
    ],
)
def test_colour_only_on_a_terminal_that_wants_it(tty, flag, env, expected) -> None:
    assert colour_enabled(is_tty=tty, no_color_flag=flag, environ=env) is expected


def test_filters_by_gpu_node_and_health(fleet) -> None:
    sample, grades = fleet
    records = sample.records()
    node = records[9]["node"]
    on_node = selected(records, grades, Filters(nodes=(node,)))
    assert on_node and all(records[i]["node"] == node for i in on_node)
    assert len(on_node) == sum(r["node"] == node for r in records)
    site = node.split("-")[0]
    in_site = [i for i, r in enumerate(records) if r["node"].startswith(site + "-")]
    assert selected(records, grades, Filters(nodes=(f"{site}-*",))) == in_site
    uuid = records[42]["uuid"]
    assert selected(records, grades, Filters(gpus=(uuid,))) == [42]
    assert selected(records, grades, Filters(gpus=(uuid[:12],))) == [42]
    assert selected(records, grades, Filters(gpus=(uuid[:5],))) == []  # too short to mean one GPU
    assert selected(records, grades, Filters(gpus=("3",), nodes=(node,))) == [i for i in on_node if records[i]["index"] == 3]
    bad = selected(records, grades, Filters(healths=("warning", "critical")))
    assert bad and all(grades[i].grade in ("warning", "critical") for i in bad)
    assert len(bad) == sum(g.grade != "ok" for g in grades)


def test_a_failed_target_makes_its_gpus_stale(tmp_path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/metrics"
    answers = {"/metrics": Answer(A30_MIG.read_bytes())}
    server = LocalServer(static_routes(answers))
    source = ScrapeSource([f"{server.base}/metrics", dead], timeout_s=0.5)
    model = HealthModel()
    try:
        source.poll()
        answers["/metrics"] = Answer(b"oops", status=500)
        sample = source.poll()
    finally:
        source.close()
        server.stop()
    grades = grade_sample(sample, model)
    assert len(grades) == 2 and {g.grade for g in grades} == {"stale"}
    table = render_table(sample.records(), grades, sample.errors, TableOptions(colour=True))
    assert "\x1b[2mstale: no fresh data" in table
    assert [line for line in table.splitlines() if line.startswith("error: ")] == [f"error: {e}" for e in sample.errors]

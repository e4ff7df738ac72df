"""The lifecycle seen outside the book: `status --json` per GPU and the agent's gpuops_node_lifecycle."""

from __future__ import annotations

import json
import time

import pytest

from gpuops.cli import main
from gpuops.core.lifecycle.metrics import NODE_LIFECYCLE, LifecycleFollower
from gpuops.core.lifecycle.states import State
from gpuops.core.sources.demo import DemoSource
from gpuops.core.store.writer import HistoryWriter
from tests.agent_helpers import Exposition, PlaybackSource, fetch, serving
from tests.allocations_support import make_history
from tests.samples import make_inventory, make_sample

GPUS = make_inventory(16)  # node00, node01


@pytest.fixture
def demo_history(tmp_path):
    """The simulated fleet demo:16 recorded once, without its demo book (whose lifecycle is seeded)."""
    path = tmp_path / "history.sqlite"
    with HistoryWriter(path) as writer:
        writer.write(DemoSource(16, seed=0).sample_at(time.time()))
    return path


def status(*argv: str, capsys) -> dict:
    capsys.readouterr()
    assert main(["status", "--source", "demo:16", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_status_json_gives_every_gpu_its_lifecycle(demo_history, capsys):
    document = status("--db", str(demo_history), capsys=capsys)
    first, second = sorted({g["node"] for g in document["gpus"]})
    assert {g["lifecycle"] for g in document["gpus"]} == {"production"}
    gpu = next(g["uuid"] for g in document["gpus"] if g["node"] == second)
    assert main(["nodes", "drain", first, "--reason", "fan", "--db", str(demo_history)]) == 0
    assert main(["nodes", "repair", second, "--gpu", gpu, "--reason", "ECC", "--db", str(demo_history)]) == 0
    document = status("--db", str(demo_history), capsys=capsys)
    states = {g["uuid"]: g["lifecycle"] for g in document["gpus"]}
    assert {states[g["uuid"]] for g in document["gpus"] if g["node"] == first} == {"draining"}
    assert states.pop(gpu) == "repair"
    assert {states[g["uuid"]] for g in document["gpus"] if g["node"] == second and g["uuid"] != gpu} == {"production"}
    assert document["errors"] == []


def test_status_without_a_history_says_production_and_with_a_bad_one_says_why(tmp_path, capsys):
    document = status("--db", str(tmp_path / "none.sqlite"), capsys=capsys)
    assert {g["lifecycle"] for g in document["gpus"]} == {"production"}
    assert not (tmp_path / "none.sqlite").exists()
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    document = status("--db", str(junk), capsys=capsys)
    assert {g["lifecycle"] for g in document["gpus"]} == {None}
    assert any(e.startswith("lifecycle unknown:") for e in document["errors"])


def scrape(agent) -> Exposition:
    code, _headers, body = fetch(agent.url)
    assert code == 200
    return Exposition.parse(body.decode())


def test_the_agent_serves_each_nodes_lifecycle_as_an_enum(tmp_path):
    path = make_history(tmp_path / "history.sqlite", GPUS)
    assert main(["nodes", "rma", "node01", "--reason", "x", "--db", str(path)]) == 1  # not from production
    assert main(["nodes", "repair", "node01", "--reason", "board", "--db", str(path)]) == 0
    assert main(["nodes", "rma", "node01", "--reason", "board", "--ticket", "NV-9", "--db", str(path)]) == 0
    follower = LifecycleFollower(path, refresh_s=0.0)
    with serving(PlaybackSource([make_sample(gpus=GPUS)]), lifecycle=follower.states) as agent:
        served = scrape(agent)
        assert served.types[NODE_LIFECYCLE] == "gauge"
        assert served.value(NODE_LIFECYCLE, node="node01", state="rma") == 1.0
        assert served.value(NODE_LIFECYCLE, node="node00", state="production") == 1.0
        ones = [(labels["node"], labels["state"]) for labels, v in served.samples[NODE_LIFECYCLE] if v == 1.0]
        assert sorted(ones) == [("node00", "production"), ("node01", "rma")]
        assert len(served.samples[NODE_LIFECYCLE]) == 2 * len(State)
        assert main(["nodes", "burn-in", "node01", "--reason", "new board", "--db", str(path)]) == 0
        assert scrape(agent).value(NODE_LIFECYCLE, node="node01", state="burn_in") == 1.0


def test_without_a_book_every_node_is_in_production_and_a_broken_book_leaves_the_family_out(tmp_path):
    with serving(PlaybackSource([make_sample(gpus=GPUS)])) as agent:
        served = scrape(agent)
        assert served.value(NODE_LIFECYCLE, node="node00", state="production") == 1.0
        assert served.value(NODE_LIFECYCLE, node="node01", state="draining") == 0.0
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"garbage" * 500)
    with serving(PlaybackSource([make_sample(gpus=GPUS)]), lifecycle=LifecycleFollower(junk).states) as agent:
        served = scrape(agent)
        assert NODE_LIFECYCLE not in served.types
        assert served.value("DCGM_FI_DEV_GPU_TEMP", UUID=GPUS[0].uuid) is not None

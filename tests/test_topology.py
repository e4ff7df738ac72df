"""Topology file: node -> site/rack, applied to inventory; unknown nodes go to 'unassigned'."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuops.core.topology import UNASSIGNED, TopologyError, TopologySource, load_topology, parse_topology
from tests.agent_helpers import PlaybackSource
from tests.samples import make_sample

CSV = "node,site,rack,notes\nnode00,ams1,r12,spare PSU\nnode01,ams1,r13,\n"


def test_places_nodes_and_unassigned() -> None:
    topology = parse_topology(CSV)
    assert len(topology) == 2
    sample = topology.apply_to(make_sample(24))  # node00, node01, node02
    assert [(g.node, g.site, g.rack) for g in sample.gpus[::8]] == [
        ("node00", "ams1", "r12"), ("node01", "ams1", "r13"), ("node02", UNASSIGNED, None),
    ]
    assert topology.place("node00").notes == "spare PSU"
    groups = topology.group(sample.gpus)
    assert list(groups) == [("ams1", "r12"), ("ams1", "r13"), (UNASSIGNED, None)]
    assert groups[("ams1", "r13")] == list(range(8, 16))


def test_columns_in_any_order_bom_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "topology.csv"
    path.write_text("\ufeffSite,Node\n\nfra2,gpu-a\n", encoding="utf-8")
    topology = load_topology(path)
    assert (topology.place("gpu-a").site, topology.place("gpu-a").rack) == ("fra2", None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("host,site\n", "no 'node' column"),
        ("node,rack\n", "no 'site' column"),
        ("node,site\n,ams1\n", "line 2: the node is empty"),
        ("node,site\nn1,\n", "line 2: node 'n1' has no site"),
        ("node,site\nn1,a\nn1,b\n", "line 3: node 'n1' is listed twice"),
    ],
)
def test_bad_files_name_the_line(text: str, message: str) -> None:
    with pytest.raises(TopologyError, match=message):
        parse_topology(text, where="topology")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="cannot read topology file"):
        load_topology(tmp_path / "nope.csv")


def test_topology_source_wraps_any_source() -> None:
    inner = PlaybackSource([make_sample(8)])
    source = TopologySource(inner, parse_topology(CSV))
    sample = source.poll()
    assert {g.site for g in sample.gpus} == {"ams1"} and source.name == inner.name
    source.close()
    assert inner.closed

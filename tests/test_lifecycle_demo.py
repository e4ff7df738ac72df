"""The simulated fleet's demo book shows the lifecycle: a node in burn-in, one draining with a
customer still on it, one in RMA."""

from __future__ import annotations

import time

import pytest

from gpuops.core.allocations.demo_customers import seed_demo_customers
from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.lifecycle.book import gpu_nodes, read_view, transitions
from gpuops.core.lifecycle.states import State
from gpuops.core.sources.demo import DemoSource
from gpuops.core.store.writer import HistoryWriter


@pytest.mark.parametrize("seed", [0, 5])
def test_the_demo_book_has_a_node_in_burn_in_one_draining_with_a_customer_and_one_in_rma(tmp_path, seed):
    now_s = time.time()
    path = tmp_path / "demo.sqlite"
    with HistoryWriter(path) as writer:
        writer.write(DemoSource(64, seed=seed).sample_at(now_s))
    repo = AllocationRepository.open(path, user="demo")
    try:
        assert seed_demo_customers(repo, 64, seed, now_s)
        view = read_view(repo.conn)
        by_state = {record.state: node for node, record in view.nodes.items()}
        assert set(by_state) == {State.BURN_IN, State.DRAINING, State.RMA}
        now_ms = round(now_s * 1000)
        node_of = gpu_nodes(repo.conn)
        held = {node_of[a.gpu_uuid] for a in repo.allocations(start_ms=now_ms, end_ms=now_ms + 1)}
        assert by_state[State.DRAINING] in held
        assert by_state[State.BURN_IN] not in held and by_state[State.RMA] not in held
        rma = view.nodes[by_state[State.RMA]]
        assert rma.ticket and rma.expected_ms is not None and rma.expected_ms > now_ms
        assert [t.state for t in transitions(repo.conn, node=rma.node)] == [State.REPAIR, State.RMA]
        assert len(repo.audit_log(entity="node")) == 4
    finally:
        repo.close()


@pytest.mark.parametrize(("n_gpus", "out_of_production"), [(8, 0), (16, 0), (24, 1)])
def test_most_of_a_small_demo_fleet_stays_in_production(tmp_path, n_gpus, out_of_production):
    """A demo of a node or two takes allocations (`gpuops status --source demo:8`, the README's
    first command, must not show its only node draining); larger ones show more states."""
    now_s = time.time()
    path = tmp_path / "small.sqlite"
    with HistoryWriter(path) as writer:
        writer.write(DemoSource(n_gpus, seed=0).sample_at(now_s))
    repo = AllocationRepository.open(path, user="demo")
    try:
        assert seed_demo_customers(repo, n_gpus, 0, now_s)
        states = [r.state for r in read_view(repo.conn).nodes.values() if r.state is not State.PRODUCTION]
        assert len(states) == out_of_production
        assert states[:1] in ([], [State.DRAINING]), "draining shows first"
    finally:
        repo.close()

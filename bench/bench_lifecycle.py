"""The lifecycle at fleet scale: 10,000 GPUs on 1,250 nodes with 3,000 recorded transitions.

Measured: a validated, audited transition (each its own transaction, as the CLI makes them); the
current states of every GPU (what status --json, the grid and the allocation check read); the
repair/RMA intervals of every GPU over 30 days (what the usage report adds); `gpuops nodes list`'s
rows; status --json's lookup for 10,000 GPU records; and the allocation check's cost for 8 GPUs
with and without any lifecycle recorded.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

N_GPUS = 10_000
GPUS_PER_NODE = 8
NODE_MOVES = 2_500  # node transitions: 500 nodes drained, half of them on to repair...
GPU_MOVES = 500
REPEATS = 5
DAY_MS = 86_400_000


def _median_s(work, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run() -> list[dict]:
    from gpuops.commands.nodes import node_rows
    from gpuops.core.allocations.model import ContractType
    from gpuops.core.allocations.repository import AllocationRepository
    from gpuops.core.lifecycle.book import LifecycleBook, gpu_states, state_intervals, with_lifecycle
    from gpuops.core.lifecycle.states import UNAVAILABLE, State
    from gpuops.core.store.connection import open_database
    from gpuops.core.store.writer import HistoryWriter
    from tests.samples import make_inventory, make_sample

    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="gpuops-bench-lifecycle-") as folder:
        gpus = make_inventory(N_GPUS, GPUS_PER_NODE)
        path = Path(folder) / "history.sqlite"
        with HistoryWriter(path) as writer:
            writer.write(make_sample(gpus=gpus, ts=time.time() - 60))
        conn, _ = open_database(path, create=False)
        repo = AllocationRepository(conn, user="bench")
        book = LifecycleBook(repo)
        nodes = sorted({g.node for g in gpus})
        acme = repo.add_customer("Acme")
        contract = repo.add_contract(acme.id, "c", ContractType.RESERVED, "H100", 16, repo.now_ms() - DAY_MS, None, 1.0)
        free = [g.uuid for g in gpus if g.node == nodes[-1]]
        before_s = _median_s(lambda: _allocate_and_release(repo, contract.id, free))

        steps = (State.DRAINING, State.REPAIR, State.BURN_IN, State.PRODUCTION, State.DRAINING)
        started = time.perf_counter()
        for k in range(NODE_MOVES):
            node = nodes[k % 500]
            book.transition(node, steps[k // 500], "bench")
        for k in range(GPU_MOVES):
            gpu = gpus[500 * GPUS_PER_NODE + k]
            book.transition(gpu.node, State.REPAIR, "bench", gpu_uuid=gpu.uuid)
        per_move_ms = (time.perf_counter() - started) * 1000 / (NODE_MOVES + GPU_MOVES)
        rows.append({"measure": "one validated, audited transition", "value": per_move_ms, "unit": "ms",
                     "target": "< 20 ms"})
        rows.append({"measure": f"current state of {N_GPUS:,} GPUs", "value": _median_s(lambda: gpu_states(conn)) * 1000,
                     "unit": "ms", "target": "< 200 ms"})
        now = repo.now_ms()
        rows.append({"measure": f"repair/RMA intervals of {N_GPUS:,} GPUs, 30 days",
                     "value": _median_s(lambda: state_intervals(conn, now - 30 * DAY_MS, now, UNAVAILABLE)) * 1000,
                     "unit": "ms", "target": "< 500 ms"})
        rows.append({"measure": f"nodes list rows ({len(nodes):,} nodes)", "value": _median_s(lambda: node_rows(repo)) * 1000,
                     "unit": "ms", "target": "< 300 ms"})
        records = [{"uuid": g.uuid, "node": g.node} for g in gpus]
        rows.append({"measure": f"status --json lifecycle for {N_GPUS:,} GPUs",
                     "value": _median_s(lambda: with_lifecycle(records, path)) * 1000, "unit": "ms", "target": "< 300 ms"})
        after_s = _median_s(lambda: _allocate_and_release(repo, contract.id, free))
        rows.append({"measure": "allocate + release 8 GPUs, no lifecycle recorded", "value": before_s * 1000, "unit": "ms",
                     "target": "baseline"})
        rows.append({"measure": f"allocate + release 8 GPUs, {NODE_MOVES + GPU_MOVES:,} transitions recorded",
                     "value": after_s * 1000, "unit": "ms", "target": "< baseline + 100 ms"})
        repo.close()
    return rows


def _allocate_and_release(repo, contract_id: int, uuids: list[str]) -> None:
    made = repo.allocate(contract_id, uuids, repo.now_ms())
    repo.release([a.id for a in made], repo.now_ms() - 1)

"""Fictional customers and contracts for the simulated fleet, so that a demo shows allocations,
idle waste, busy-but-unallocated GPUs and an H100 capacity crunch out of the box.

Deterministic: the same fleet size, seed and day give the same book. Dates are relative to the
start of the UTC day of `now`, so the demo always looks current. Training GPUs go to the big
reservations (busy), idle GPUs to an on-demand lab and a smaller reservation (visible waste), and
some busy GPUs are left unallocated. A reservation starting in 75 days pushes H100 demand past
the fleet. The lifecycle shows its states too: a node draining with a customer still on it, one in
burn-in and one in RMA (after a repair), both unallocated and expected back, as long as most
nodes stay in production (none on a fleet of one or two nodes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpuops.core.allocations.model import Contract, ContractStatus, ContractType, Customer
from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.allocations.validation import Proposed
from gpuops.core.lifecycle.book import LifecycleBook
from gpuops.core.lifecycle.states import State
from gpuops.core.sources.demo_fleet import MODEL_SHARES, FleetLayout, Role, build_fleet

DAY_MS = 86_400_000


@dataclass(frozen=True)
class DemoContract:
    customer: str
    name: str
    type: ContractType
    model: str
    share: float  # of the model's GPUs in the fleet
    start_day: int  # relative to today
    end_day: int | None
    price: float
    prefer: tuple[Role, ...]  # roles of the GPUs to allocate first; () = allocate none (future contract)
    equity_terms: str | None = None


CUSTOMERS: tuple[tuple[str, str, str], ...] = (
    ("Helix Labs", "infra@helixlabs.example", "Frontier LLM pre-training; 3-year relationship."),
    ("Northwind AI", "gpu-ops@northwind-ai.example", "Multimodal models; pays quarterly in advance."),
    ("Quanta Reasoning", "founders@quanta-reasoning.example", "Seed-stage; compute for equity."),
    ("Lumen Robotics", "platform@lumenrobotics.example", "Sim-to-real RL; bursty usage."),
    ("Corvid Bio", "hpc@corvidbio.example", "Protein folding; spot only."),
    ("Stratus Vision", "sre@stratusvision.example", "Video inference API in production."),
    ("Aperture Speech", "ml@aperture-speech.example", "ASR fine-tuning; asks for discounts."),
    ("Meridian Research", "compute@meridian-research.example", "Signed for a 2026 H100 cluster."),
)

CONTRACTS: tuple[DemoContract, ...] = (
    DemoContract("Helix Labs", "HLX-2025-H100-A", ContractType.RESERVED, "H100", 0.45, -120, 245, 2.10, (Role.TRAINING,)),
    DemoContract("Northwind AI", "NW-H200-01", ContractType.RESERVED, "H200", 0.50, -60, 305, 3.20, (Role.TRAINING, Role.IDLE)),
    DemoContract(
        "Quanta Reasoning", "QR-EQ-1", ContractType.COMPUTE_FOR_EQUITY, "B200", 0.35, -30, 335, 4.50, (Role.TRAINING,),
        equity_terms="1.5 % preferred equity via SAFE at a 40 M USD post-money cap; compute credited at list price",
    ),
    DemoContract(
        "Lumen Robotics", "LR-OD-A100", ContractType.ON_DEMAND, "A100", 0.40, -150, None, 1.40, (Role.IDLE, Role.TRAINING)
    ),
    DemoContract("Corvid Bio", "CB-SPOT-L40S", ContractType.SPOT, "L40S", 0.30, -10, 20, 0.55, (Role.INFERENCE,)),
    DemoContract(
        "Stratus Vision", "SV-INF-L40S", ContractType.ON_DEMAND, "L40S", 0.40, -45, None, 0.95, (Role.INFERENCE, Role.IDLE)
    ),
    DemoContract(
        "Aperture Speech", "AS-H100-Q1", ContractType.RESERVED, "H100", 0.20, -15, 165, 2.25, (Role.IDLE, Role.INFERENCE)
    ),
    DemoContract("Meridian Research", "MR-H100-2026", ContractType.RESERVED, "H100", 0.60, 75, 440, 1.95, ()),
    DemoContract("Northwind AI", "NW-H200-EXP", ContractType.RESERVED, "H200", 0.30, 120, 485, 3.05, ()),
)


def seed_demo_customers(repo: AllocationRepository, n_gpus: int, seed: int, now_s: float) -> bool:
    """Fill an empty book for the simulated fleet `demo:<n_gpus>` of `seed` (whose GPUs the history
    must have seen: the console seeds after its first stored poll). Returns False, changing
    nothing, when there already are customers."""
    if repo.customers():
        return False
    layout = build_fleet(n_gpus, seed)
    models = list(MODEL_SHARES)
    today_ms = int(now_s * 1000) // DAY_MS * DAY_MS
    customers = {name: Customer(-i - 1, name, contact, notes) for i, (name, contact, notes) in enumerate(CUSTOMERS)}
    holder = demo_holdings(layout)
    taken = holder >= 0
    contracts: list[Contract] = []
    allocations: list[Proposed] = []
    for k, spec in enumerate(CONTRACTS):
        of_model = layout.model_of_gpu == models.index(spec.model)
        count = max(1, round(spec.share * int(of_model.sum())))
        start = today_ms + spec.start_day * DAY_MS
        end = None if spec.end_day is None else today_ms + spec.end_day * DAY_MS
        credited: float | None = None
        if spec.type is ContractType.COMPUTE_FOR_EQUITY and end is not None:  # every demo equity contract has an end
            credited = round(count * (end - start) / 3_600_000 * spec.price, 2)
        contract = Contract(
            -k - 1, customers[spec.customer].id, spec.name, spec.type, spec.model, count, start, end, spec.price,
            ContractStatus.ACTIVE, spec.equity_terms, credited,
        )
        contracts.append(contract)
        allocations.extend(Proposed(contract.id, layout.gpus[i].uuid, start, end) for i in np.flatnonzero(holder == k))
    repo.apply_batch(
        "seed the demo customers", customers=list(customers.values()), contracts=contracts, allocations=allocations, confirm=True
    )
    # Stamped at the demo's own now, as its dates are (a replayed or test fleet is not at the wall clock).
    at_now = AllocationRepository(repo.conn, read_only=repo.read_only, user=repo.user, clock=lambda: now_s)
    spare = layout.model_of_gpu != models.index(CRUNCH_MODEL)
    seed_demo_lifecycle(at_now, [g.node for g in layout.gpus], taken, spare, today_ms)
    return True


def demo_holdings(layout: FleetLayout) -> np.ndarray:
    """Which contract of CONTRACTS holds each GPU of the simulated fleet in the demo book (-1: none).
    The demo source runs its workloads where this puts them (demo_fleet.follow_book)."""
    models = list(MODEL_SHARES)
    holder = np.full(len(layout.gpus), -1, dtype=np.int64)
    for k, spec in enumerate(CONTRACTS):
        if not spec.prefer:
            continue
        of_model = layout.model_of_gpu == models.index(spec.model)
        count = max(1, round(spec.share * int(of_model.sum())))
        # Preferred roles first, then whatever of the model is left, so small fleets fill up too.
        held = 0
        for role in dict.fromkeys(spec.prefer + (Role.TRAINING, Role.INFERENCE, Role.IDLE)):
            chosen = np.flatnonzero(of_model & (holder < 0) & (layout.role_of_gpu == role))[: count - held]
            holder[chosen] = k
            held += len(chosen)
    return holder


#: (state, reason, ticket, days until expected back) of the demo's nodes out of production, by the steps that lead there.
DEMO_LIFECYCLE: dict[str, tuple[tuple[State, str, str | None, int | None], ...]] = {
    "draining": ((State.DRAINING, "fan tray alarm: let the running reservation finish, then swap the tray", "INC-20417",
                  None),),
    "burn_in": ((State.BURN_IN, "new node: 48 h NCCL all-reduce and HPL burn-in before production", "CHG-3391", 3),),
    "rma": (
        (State.REPAIR, "XID 79 twice in 24 h: GPU fell off the bus", "INC-20388", None),
        (State.RMA, "vendor replaces the baseboard", "NV-RMA-0042187", 21),
    ),
}


#: The model whose shortage the demo shows (a contract starting in 75 days): nodes of other models
#: leave production first, so the crunch stays the contract's doing.
CRUNCH_MODEL = "H100"


def seed_demo_lifecycle(
    repo: AllocationRepository, node_of_gpu: list[str], allocated: np.ndarray, spare: np.ndarray, today_ms: int
) -> None:
    """Put the demo's nodes in their states: draining where a customer holds a GPU (the last such
    node), burn-in and RMA on the last nodes nobody holds; nodes with a `spare` GPU (not of the
    crunch model) first."""
    spare_nodes = {node for node, is_spare in zip(node_of_gpu, spare, strict=True) if is_spare}
    nodes = sorted(dict.fromkeys(node_of_gpu), key=lambda n: n in spare_nodes)  # stable: spare ones last
    held = {node for node, taken in zip(node_of_gpu, allocated, strict=True) if taken}
    busy = [n for n in nodes if n in held]
    free = [n for n in reversed(nodes) if n not in held]
    chosen = {"draining": busy[-1:], "burn_in": free[1:2], "rma": free[:1]}
    # Most of the fleet stays in production, so a small demo still takes allocations: one node
    # out per two others (none on one or two nodes), draining first, then the RMA, then burn-in.
    room = (len(nodes) - 1) // 2
    for what in ("draining", "rma", "burn_in"):
        chosen[what], room = chosen[what][:room], max(0, room - len(chosen[what][:room]))
    book = LifecycleBook(repo)
    for what, steps in DEMO_LIFECYCLE.items():
        for node in chosen[what]:
            for state, reason, ticket, back_days in steps:
                expected = None if back_days is None else today_ms + back_days * DAY_MS
                book.transition(node, state, reason, ticket=ticket, expected_ms=expected)

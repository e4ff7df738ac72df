"""The lifecycle states and the transitions between them, as a datacenter runs its nodes.

A node (or one GPU of it) enters the fleet in burn-in, serves customers only in production, and
leaves production by draining (no new allocations, current ones run out), for planned maintenance
(with an end time; its alerts are muted), for repair, or back to the vendor (RMA, with the vendor's
case number). What comes back from repair or RMA is burned in again before production. Retired is
final. Nothing recorded means production: a fleet that never used lifecycles keeps working.
"""

from __future__ import annotations

from enum import Enum


class State(str, Enum):
    BURN_IN = "burn_in"
    PRODUCTION = "production"
    DRAINING = "draining"
    MAINTENANCE = "maintenance"
    REPAIR = "repair"
    RMA = "rma"
    RETIRED = "retired"


#: What a node or GPU with no recorded transition is in.
DEFAULT_STATE = State.PRODUCTION

#: From each state, where it may go next.
ALLOWED: dict[State, frozenset[State]] = {
    State.BURN_IN: frozenset({State.PRODUCTION, State.REPAIR, State.RMA, State.RETIRED}),
    State.PRODUCTION: frozenset({State.DRAINING, State.MAINTENANCE, State.REPAIR, State.BURN_IN}),
    State.DRAINING: frozenset({State.PRODUCTION, State.MAINTENANCE, State.REPAIR, State.RMA, State.RETIRED}),
    State.MAINTENANCE: frozenset({State.PRODUCTION, State.DRAINING, State.REPAIR, State.BURN_IN}),
    State.REPAIR: frozenset({State.BURN_IN, State.RMA, State.RETIRED}),
    State.RMA: frozenset({State.BURN_IN, State.RETIRED}),
    State.RETIRED: frozenset(),
}

#: States a GPU cannot be in while a customer holds it: the GPU leaves the building or is tested whole.
NOT_WHILE_ALLOCATED = frozenset({State.BURN_IN, State.RMA, State.RETIRED})

#: States with an expected date back in production (the capacity planner counts them by it).
RETURNING = frozenset({State.BURN_IN, State.REPAIR, State.RMA})

#: States whose time counts as unavailable in the usage report's availability and SLA figures.
UNAVAILABLE = frozenset({State.REPAIR, State.RMA})

#: The CLI's verbs (gpuops nodes VERB NODE) for each state.
VERBS: dict[str, State] = {
    "burn-in": State.BURN_IN,
    "production": State.PRODUCTION,
    "drain": State.DRAINING,
    "maintenance": State.MAINTENANCE,
    "repair": State.REPAIR,
    "rma": State.RMA,
    "retire": State.RETIRED,
}


def transition_problem(current: State, target: State) -> str | None:
    """Why going from `current` to `target` is not allowed, or None."""
    if target is current:
        return f"already in {current.value}"
    if target in ALLOWED[current]:
        return None
    if current is State.RETIRED:
        return f"retired is final: it cannot go to {target.value}"
    allowed = ", ".join(sorted(s.value for s in ALLOWED[current]))
    return f"cannot go from {current.value} to {target.value} (from {current.value}: {allowed})"

"""The allocation invariants, checked in memory over a whole batch so that an import of 10,000 rows
reports every problem with its row number in one pass (sort and sweep, not a query per row).

The same invariants are enforced by triggers in the database (`schema.py`); this is where people
get readable reasons, the triggers are the backstop.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from gpuops.core.allocations.errors import Problem
from gpuops.core.allocations.model import OPEN_END_MS, Allocation, Contract, gpu_model_of
from gpuops.core.timefmt import format_ms

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Proposed:
    """An allocation to be written; `row` is its CSV row (None when made in the console)."""

    contract_id: int
    gpu_uuid: str
    start_ms: int
    end_ms: int | None
    row: int | None = None

    @property
    def end_or_open_ms(self) -> int:
        return OPEN_END_MS if self.end_ms is None else self.end_ms


def _span(start_ms: int, end_ms: int | None) -> str:
    return f"{format_ms(start_ms)} to {'open end' if end_ms is None else format_ms(end_ms)}"


def check_allocations(
    proposed: list[Proposed],
    contracts: Mapping[int, Contract],
    existing: Iterable[Allocation],
    gpu_names: Mapping[str, str] | None,
) -> list[Problem]:
    """Every problem of writing `proposed` next to `existing` (which must already be valid).
    `gpu_names` maps the known GPUs' UUIDs to their names; None skips the known-GPU check."""
    problems: list[Problem] = []
    valid: list[Proposed] = []
    for p in proposed:
        found = _row_problems(p, contracts, gpu_names)
        problems.extend(Problem(message, p.row) for message in found)
        if not found:
            valid.append(p)
    existing = list(existing)
    problems.extend(_overlaps(valid, existing, contracts))
    problems.extend(_over_count(valid, existing, contracts))
    problems.sort(key=lambda p: (p.row is None, p.row or 0))
    return problems


def _row_problems(p: Proposed, contracts: Mapping[int, Contract], gpu_names: Mapping[str, str] | None) -> list[str]:
    found = []
    contract = contracts.get(p.contract_id)
    if contract is None:
        return [f"unknown contract id {p.contract_id}"]
    if p.end_ms is not None and p.end_ms <= p.start_ms:
        found.append(f"end {format_ms(p.end_ms)} is not after start {format_ms(p.start_ms)}")
    elif not contract.covers(p.start_ms, p.end_ms):
        found.append(
            f"allocation {_span(p.start_ms, p.end_ms)} lies outside contract {contract.name!r} "
            f"({_span(contract.start_ms, contract.end_ms)})"
        )
    if gpu_names is not None:
        name = gpu_names.get(p.gpu_uuid)
        if name is None:
            found.append(f"unknown GPU {p.gpu_uuid} (not in this history's inventory)")
        elif gpu_model_of(name) != contract.gpu_model.upper():
            found.append(f"GPU {p.gpu_uuid} is an {name}, contract {contract.name!r} is for {contract.gpu_model}")
    return found


def _describe(item: Allocation | Proposed, contracts: Mapping[int, Contract]) -> str:
    contract = contracts.get(item.contract_id)
    label = contract.name if contract else f"#{item.contract_id}"
    where = f" (row {item.row})" if isinstance(item, Proposed) and item.row is not None else ""
    return f"contract {label!r} {_span(item.start_ms, item.end_ms)}{where}"


def _grouped(
    proposed: list[Proposed], existing: list[Allocation], key: Callable[[Allocation | Proposed], K]
) -> dict[K, list[Allocation | Proposed]]:
    """The proposed allocations grouped by `key`, with the existing ones in those groups only: an
    existing allocation in a group nothing is proposed for cannot conflict with the batch."""
    groups: dict[K, list[Allocation | Proposed]] = defaultdict(list)
    for item in proposed:
        groups[key(item)].append(item)
    touched = set(groups)
    for known in existing:
        if key(known) in touched:
            groups[key(known)].append(known)
    return groups


def _overlaps(proposed: list[Proposed], existing: list[Allocation], contracts: Mapping[int, Contract]) -> list[Problem]:
    """A GPU held by two allocations at once: blame the later-starting proposed one."""
    by_gpu = _grouped(proposed, existing, lambda item: item.gpu_uuid)
    problems = []
    for uuid, items in by_gpu.items():
        items.sort(key=lambda a: (a.start_ms, isinstance(a, Proposed)))
        holder: Allocation | Proposed | None = None
        for item in items:
            if holder is not None and item.start_ms < holder.end_or_open_ms:
                blamed, other = (item, holder) if isinstance(item, Proposed) else (holder, item)
                problems.append(
                    Problem(
                        f"GPU {uuid} would be allocated twice:"
                        f" {_describe(blamed, contracts)} overlaps {_describe(other, contracts)}",
                        blamed.row if isinstance(blamed, Proposed) else None,
                    )
                )
            if holder is None or item.end_or_open_ms > holder.end_or_open_ms:
                holder = item
    return problems


def _over_count(proposed: list[Proposed], existing: list[Allocation], contracts: Mapping[int, Contract]) -> list[Problem]:
    """A contract holding more GPUs at some instant than it bought: a sweep over start/end events,
    ends before starts at the same instant (intervals are half-open)."""
    by_contract = _grouped(proposed, existing, lambda item: item.contract_id)
    problems = []
    for contract_id, items in by_contract.items():
        contract = contracts[contract_id]
        events = [(i.start_ms, 1, n) for n, i in enumerate(items)] + [(i.end_or_open_ms, 0, n) for n, i in enumerate(items)]
        events.sort(key=lambda e: (e[0], e[1], isinstance(items[e[2]], Proposed)))
        held = 0
        blamed_rows: set[int | None] = set()
        for ts, is_start, n in events:
            held += 1 if is_start else -1
            if is_start and held > contract.gpu_count:
                item = items[n]
                row = item.row if isinstance(item, Proposed) else None
                if row not in blamed_rows or row is None:
                    blamed_rows.add(row)
                    problems.append(
                        Problem(
                            f"contract {contract.name!r} would hold {held} GPUs at {format_ms(ts)},"
                            f" more than the {contract.gpu_count} it bought",
                            row,
                        )
                    )
    return problems

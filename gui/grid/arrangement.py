"""Which GPUs the grid shows, in which groups and in which order.

The grid draws "chunks": the GPUs of one node that fall in one group, side by side in index
order. Grouping by node (the default) gives one chunk per node, in topology order (site, rack,
node). Grouping by anything else (site, rack, model, state, health, customer, lifecycle) starts each group
on a new grid row under its own label, and splits a node whose GPUs fall in several groups.

All of it is numpy over per-GPU codes, so regrouping 10,000 GPUs costs a few milliseconds.

Filter text is a list of words, all of which must match: `key:value` compares one field
(`health:critical`, `site:ams`, `model:h100`, `customer:acme`, `lifecycle:draining`; the same key twice means either
value), a bare word matches any of node, model, site, rack, UUID, serial or customer (and a
condition's name: `lost`, `critical`, `stale`, ... find those GPUs), and a leading `-` negates.
Unknown keys raise `FilterError` with the keys that exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gpuops.core.condition import Condition
from gpuops.core.lifecycle.states import DEFAULT_STATE, State
from gpuops.core.telemetry import GpuState
from gpuops.gui.live.fleet_index import FleetIndex, natural_key

#: Group-by choices: key -> label.
GROUP_BY: dict[str, str] = {
    "node": "Node (topology)",
    "site": "Site",
    "rack": "Rack",
    "model": "Model",
    "state": "State",
    "health": "Health",
    "customer": "Customer",
    "lifecycle": "Lifecycle",
}
#: Sort choices (the order of nodes inside a group): key -> label.
SORT_BY: dict[str, str] = {
    "topology": "Topology (site, rack, node)",
    "health": "Worst health first",
    "metric": "Colour value, highest first",
    "model": "Model",
    "customer": "Customer",
}
_TEXT_FIELDS = ("site", "rack", "node", "model", "uuid", "serial", "pci")
FILTER_KEYS: tuple[str, ...] = (*_TEXT_FIELDS, "state", "health", "customer", "lifecycle")
_ANY_FIELDS = ("node", "model", "site", "rack", "uuid", "serial")
#: The label of GPUs no customer holds (and of unknown inventory fields).
NONE_LABEL = "(none)"


class FilterError(ValueError):
    """Filter text that cannot be understood; the message says what would be."""


@dataclass(frozen=True)
class GridSettings:
    group_by: str = "node"
    sort_by: str = "topology"
    filter_text: str = ""

    def __post_init__(self) -> None:
        if self.group_by not in GROUP_BY:
            raise ValueError(f"unknown grouping {self.group_by!r}; expected one of {', '.join(GROUP_BY)}")
        if self.sort_by not in SORT_BY:
            raise ValueError(f"unknown sort order {self.sort_by!r}; expected one of {', '.join(SORT_BY)}")


@dataclass(frozen=True)
class FleetFacts:
    """The per-poll facts grouping, sorting and filtering may use (one entry per GPU)."""

    state: np.ndarray
    condition: np.ndarray  # Condition codes
    metric: np.ndarray | None = None  # the colour value, for sorting by it
    customers: Sequence[str | None] | None = None
    lifecycle: Sequence[str] | None = None  # lifecycle state per GPU; None: nothing recorded (production)


@dataclass(frozen=True)
class Arrangement:
    """Chunks in drawing order. `order` lists the shown GPUs; chunk k is
    `order[starts[k]:starts[k+1]]`; `chunk_group[k]` indexes `group_labels`."""

    order: np.ndarray
    starts: np.ndarray  # len(chunks) + 1 offsets into order
    chunk_group: np.ndarray
    chunk_labels: tuple[str, ...]  # node name of each chunk
    group_labels: tuple[str, ...]  # "" when not grouped
    grouped: bool
    shown: np.ndarray  # bool per GPU

    @property
    def n_chunks(self) -> int:
        return len(self.starts) - 1

    def chunk(self, k: int) -> np.ndarray:
        return self.order[self.starts[k] : self.starts[k + 1]]


#: Bare words that also match a condition.
_CONDITION_WORDS: dict[str, Condition] = {c.label: c for c in Condition if c is not Condition.OK}


def _values(index: FleetIndex, field: str, facts: FleetFacts) -> Sequence[str]:
    """One field of every GPU as text, for grouping and sorting."""
    if field in _TEXT_FIELDS:
        return index.inventory_text(field)
    if field == "state":
        return [GpuState(int(s)).label for s in facts.state]
    if field == "health":
        return [Condition(int(c)).label for c in facts.condition]
    if field == "customer":
        customers = facts.customers or [None] * len(index)
        return [c or "" for c in customers]
    if field == "lifecycle":
        return _lifecycle(index, facts)
    raise FilterError(f"unknown field {field!r}; use one of {', '.join(FILTER_KEYS)}")


def _lifecycle(index: FleetIndex, facts: FleetFacts) -> Sequence[str]:
    return facts.lifecycle if facts.lifecycle is not None else [DEFAULT_STATE.value] * len(index)


def _lifecycle_match(index: FleetIndex, facts: FleetFacts, wanted: list[str]) -> np.ndarray:
    """Lifecycle states compared exactly (`burn-in` spelled either way)."""
    names = {s.value for s in State}
    wanted = [w.replace("-", "_") for w in wanted]
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise FilterError(f"no lifecycle {unknown[0]!r}; use one of {', '.join(s.value for s in State)}")
    return np.isin(np.array(_lifecycle(index, facts), dtype=str), wanted)


def _contains(column: np.ndarray, word: str) -> np.ndarray:
    return np.char.find(column, word) >= 0


def _lower_column(index: FleetIndex, field: str, facts: FleetFacts) -> np.ndarray:
    if field == "customer":
        customers = facts.customers or [None] * len(index)
        return np.array([(c or "").lower() for c in customers], dtype=str)
    return index.inventory_array(field)


def _code_match(field: str, codes: np.ndarray, wanted: list[str]) -> np.ndarray:
    """State or health, compared exactly by label."""
    kinds = {"state": GpuState, "health": Condition}[field]
    labels = {member.label: int(member) for member in kinds}
    unknown = [w for w in wanted if w not in labels]
    if unknown:
        raise FilterError(f"no {field} {unknown[0]!r}; use one of {', '.join(labels)}")
    return np.isin(codes, [labels[w] for w in wanted])


def filter_mask(index: FleetIndex, facts: FleetFacts, text: str) -> np.ndarray:
    """True for every GPU the filter text lets through (see the module docstring)."""
    shown = np.ones(len(index), dtype=bool)
    by_key: dict[tuple[str, bool], list[str]] = {}
    for word in text.lower().split():
        negate = word.startswith("-") and len(word) > 1
        word = word[1:] if negate else word
        key, colon, value = word.partition(":")
        if not colon:
            key, value = "", word
        elif key not in FILTER_KEYS:
            raise FilterError(f"unknown filter field {key!r}; use one of {', '.join(FILTER_KEYS)}, or a bare word")
        elif not value:
            raise FilterError(f"'{key}:' needs a value, e.g. {key}:{'critical' if key == 'health' else 'abc'}")
        by_key.setdefault((key, negate), []).append(value)
    for (key, negate), wanted in by_key.items():
        if key in ("state", "health"):
            match = _code_match(key, facts.state if key == "state" else facts.condition, wanted)
        elif key == "lifecycle":
            match = _lifecycle_match(index, facts, wanted)
        elif key:  # any of the values of this key
            column = _lower_column(index, key, facts)
            match = np.zeros(len(index), dtype=bool)
            for w in wanted:
                match |= _contains(column, w)
        else:  # every bare word, each in some field
            columns = [_lower_column(index, f, facts) for f in (*_ANY_FIELDS, "customer") if f != "customer" or facts.customers]
            match = np.ones(len(index), dtype=bool)
            for w in wanted:
                anywhere = np.zeros(len(index), dtype=bool)
                for column in columns:
                    anywhere |= _contains(column, w)
                if w in _CONDITION_WORDS:  # "lost" finds the lost GPUs, as health:lost does
                    anywhere |= facts.condition == _CONDITION_WORDS[w]
                match &= anywhere
        shown &= ~match if negate else match
    return shown


def _group_codes(index: FleetIndex, facts: FleetFacts, group_by: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Group number per GPU and the group labels, in the order groups are drawn."""
    if group_by == "node":
        return np.zeros(len(index), dtype=np.int64), ("",)
    if group_by == "health":  # most urgent first
        order = sorted(Condition, key=lambda c: -c)
        rank = np.zeros(len(Condition), dtype=np.int64)
        rank[[int(c) for c in order]] = np.arange(len(order))
        return rank[facts.condition], tuple(c.label for c in order)
    if group_by == "state":
        order = (GpuState.LOST, GpuState.UNKNOWN, GpuState.OK)
        rank = np.zeros(len(GpuState), dtype=np.int64)
        rank[[int(s) for s in order]] = np.arange(len(order))
        return rank[facts.state], tuple(s.label for s in order)
    values = _values(index, group_by, facts)
    labels = sorted(set(values), key=lambda v: (v == "", natural_key(v)))
    number = {v: k for k, v in enumerate(labels)}
    return np.fromiter((number[v] for v in values), dtype=np.int64, count=len(values)), tuple(v or NONE_LABEL for v in labels)


def _node_sort_key(index: FleetIndex, facts: FleetFacts, sort_by: str) -> np.ndarray:
    """A number per node; nodes with smaller numbers come first (ties: topology order)."""
    nodes = index.node_number
    n_nodes = len(index.nodes)
    if sort_by == "health":
        worst = np.zeros(n_nodes, dtype=np.int64)
        np.maximum.at(worst, nodes, facts.condition.astype(np.int64))
        return -worst.astype(np.float64)
    if sort_by == "metric" and facts.metric is not None:
        values = facts.metric
        valid = np.isfinite(values)
        total = np.bincount(nodes[valid], weights=values[valid], minlength=n_nodes)
        count = np.bincount(nodes[valid], minlength=n_nodes)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / count
        return np.where(count > 0, -mean, np.inf)  # nodes without values last
    if sort_by in ("model", "customer"):
        values = _values(index, sort_by, facts)
        firsts = [values[node.gpu_positions[0]] for node in index.nodes]
        labels = sorted(set(firsts), key=lambda v: (v == "", natural_key(v)))
        number = {v: k for k, v in enumerate(labels)}
        return np.array([number[v] for v in firsts], dtype=np.float64)
    return np.zeros(n_nodes)


def arrange(index: FleetIndex, facts: FleetFacts, settings: GridSettings = GridSettings()) -> Arrangement:
    """Filter, group and sort the fleet into chunks (raises FilterError for bad filter text)."""
    shown = filter_mask(index, facts, settings.filter_text) if settings.filter_text.strip() else np.ones(len(index), bool)
    group, group_labels = _group_codes(index, facts, settings.group_by)
    node_key = _node_sort_key(index, facts, settings.sort_by)
    nodes = index.node_number
    positions = np.flatnonzero(shown)
    # Last key sorts first: group, then the chosen order of nodes, topology, then inventory order.
    order = positions[
        np.lexsort((positions, index.node_order[nodes[positions]], node_key[nodes[positions]], group[positions]))
    ]
    if len(order):
        change = (np.diff(group[order]) != 0) | (np.diff(nodes[order]) != 0)
        starts = np.concatenate(([0], np.flatnonzero(change) + 1, [len(order)]))
    else:
        starts = np.zeros(1, dtype=np.int64)
    firsts = order[starts[:-1]]
    return Arrangement(
        order=order,
        starts=starts,
        chunk_group=group[firsts],
        chunk_labels=tuple(index.nodes[n].name for n in nodes[firsts].tolist()),
        group_labels=group_labels,
        grouped=settings.group_by != "node",
        shown=shown,
    )

"""The one door to customers, contracts and allocations in the history database.

Every change is validated in memory first (all problems at once, in words), then written in one
transaction together with its audit entries; the database triggers are the backstop. A read-only
repository refuses every change before touching the file (the console's --read-only).

The connection is the store's (autocommit; we BEGIN IMMEDIATE ourselves). A repository is used
from one thread at a time: the console gives it to a worker, never to the GUI thread.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from gpuops.core.allocations import audit
from gpuops.core.allocations.errors import (
    AllocationError,
    NeedsConfirmation,
    NotInProduction,
    OutsideProduction,
    Problem,
    ReadOnlyError,
    UnhealthyGpu,
    ValidationError,
)
from gpuops.core.allocations.index import AllocationIndex
from gpuops.core.allocations.model import Allocation, Contract, ContractStatus, ContractType, Customer
from gpuops.core.allocations.schema import insert_allocations_in_bulk
from gpuops.core.allocations.sql_filters import where_clause
from gpuops.core.allocations.validation import Proposed, check_allocations
from gpuops.core.lifecycle.book import gpu_nodes, read_view
from gpuops.core.lifecycle.states import State
from gpuops.core.store import meta
from gpuops.core.telemetry import GpuState

log = logging.getLogger("gpuops.allocations")

_CONTRACT_FIELDS = (
    "customer_id", "name", "type", "gpu_model", "gpu_count", "start_ms", "end_ms",
    "price_per_gpu_hour", "status", "equity_terms", "compute_value_credited",
)


def _plain(item: Customer | Contract | Allocation) -> dict[str, Any]:
    """A JSON-ready dict of a record (enums as their values), for the audit log."""
    return {k: (v.value if isinstance(v, (ContractType, ContractStatus)) else v) for k, v in asdict(item).items()}


def _contract_from_row(row: tuple) -> Contract:
    (cid, customer_id, name, ctype, model, count, start, end, price, status, terms, credited) = row
    return Contract(
        cid, customer_id, name, ContractType(ctype), model, count, start, end, price, ContractStatus(status), terms, credited
    )


class AllocationRepository:
    """Reads and validated, audited writes. `unhealthy_gpus` tells which GPUs are lost or faulty
    (UUID -> reason); by default, the GPUs whose last stored state is lost."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        read_only: bool = False,
        user: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.conn = conn
        self.read_only = read_only
        self.user = user or audit.os_user()
        self._clock = clock

    @classmethod
    def open(cls, db_path: Path, *, read_only: bool = False, user: str | None = None) -> AllocationRepository:
        """Open (creating if missing) the history at `db_path`; `read_only` with `open_read_only`,
        which never creates, writes or migrates."""
        from gpuops.core.store.connection import open_database, open_read_only

        conn, _layout = open_read_only(Path(db_path)) if read_only else open_database(Path(db_path), create=True)
        return cls(conn, read_only=read_only, user=user)

    def close(self) -> None:
        self.conn.close()

    # ----- reading -----

    def customers(self) -> list[Customer]:
        return [Customer(*row) for row in self.conn.execute("SELECT id, name, contact, notes FROM customers ORDER BY name, id")]

    def customer(self, customer_id: int) -> Customer:
        row = self.conn.execute("SELECT id, name, contact, notes FROM customers WHERE id = ?", (customer_id,)).fetchone()
        if row is None:
            raise AllocationError(f"no customer with id {customer_id}")
        return Customer(*row)

    def customer_named(self, name: str) -> Customer | None:
        row = self.conn.execute("SELECT id, name, contact, notes FROM customers WHERE name = ?", (name,)).fetchone()
        return None if row is None else Customer(*row)

    def contracts(self, customer_id: int | None = None) -> list[Contract]:
        sql = f"SELECT id, {', '.join(_CONTRACT_FIELDS)} FROM contracts"
        params: tuple = ()
        if customer_id is not None:
            sql += " WHERE customer_id = ?"
            params = (customer_id,)
        return [_contract_from_row(row) for row in self.conn.execute(sql + " ORDER BY customer_id, name, id", params)]

    def contract(self, contract_id: int) -> Contract:
        row = self.conn.execute(
            f"SELECT id, {', '.join(_CONTRACT_FIELDS)} FROM contracts WHERE id = ?", (contract_id,)
        ).fetchone()
        if row is None:
            raise AllocationError(f"no contract with id {contract_id}")
        return _contract_from_row(row)

    def allocations(
        self,
        *,
        contract_id: int | None = None,
        gpu_uuid: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Allocation]:
        """Allocations, optionally of one contract or GPU, and overlapping [start_ms, end_ms)."""
        where, params = where_clause((
            ("contract_id = ?", contract_id),
            ("gpu_uuid = ?", gpu_uuid),
            ("(end_ms IS NULL OR end_ms > ?)", start_ms),
            ("start_ms < ?", end_ms),
        ))
        sql = "SELECT id, contract_id, gpu_uuid, start_ms, end_ms FROM allocations" + where
        return [Allocation(*row) for row in self.conn.execute(sql + " ORDER BY contract_id, gpu_uuid, start_ms, id", params)]

    def index(self) -> AllocationIndex:
        """A frozen snapshot of every allocation with its customer, for per-sample lookups."""
        rows = self.conn.execute(
            "SELECT a.gpu_uuid, a.start_ms, a.end_ms, a.contract_id, c.name, u.name FROM allocations a "
            "JOIN contracts c ON c.id = a.contract_id JOIN customers u ON u.id = c.customer_id"
        ).fetchall()
        return AllocationIndex.build(rows)

    def gpu_names(self) -> dict[str, str]:
        """The GPUs this history has seen (UUID -> name): the only ones that can be allocated."""
        return dict(self.conn.execute("SELECT uuid, coalesce(name, '') FROM gpus"))

    def stored_unhealthy_gpus(self) -> dict[str, str]:
        """GPUs whose last stored state is lost (a live console passes its own health instead)."""
        rows = self.conn.execute("SELECT uuid FROM gpus WHERE last_state = ?", (int(GpuState.LOST),))
        return {uuid: "GPU lost (fell off the bus)" for (uuid,) in rows}

    def audit_log(self, **filters: Any) -> list[audit.AuditEntry]:
        """See `audit.list_audit` for the filters."""
        return audit.list_audit(self.conn, **filters)

    # ----- writing -----

    def now_ms(self) -> int:
        """The repository's clock, as the audit log records it."""
        return round(self._clock() * 1000)

    @contextmanager
    def writing(self, what: str) -> Iterator[list]:
        """One transaction; yields the list of audit entries to record with it (the lifecycle's
        transitions use it too, so every change to the book is refused, logged and audited alike)."""
        if self.read_only:
            raise ReadOnlyError(f"read-only mode: cannot {what}")
        entries: list = []
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield entries
            audit.record_many(self.conn, self.now_ms(), self.user, entries)
            self.conn.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            self.conn.execute("ROLLBACK")
            raise AllocationError(f"cannot {what}: {exc}") from None
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        log.info("%s: %s (%d change(s))", self.user, what, len(entries))

    def add_customer(self, name: str, contact: str = "", notes: str = "") -> Customer:
        name = name.strip()
        if not name:
            raise ValidationError([Problem("a customer needs a name")])
        with self.writing(f"add customer {name!r}") as entries:
            if self.customer_named(name) is not None:
                raise ValidationError([Problem(f"customer {name!r} already exists")])
            cursor = self.conn.execute("INSERT INTO customers (name, contact, notes) VALUES (?, ?, ?)", (name, contact, notes))
            customer = Customer(meta.inserted_id(cursor), name, contact, notes)
            entries.append(("create", "customer", customer.id, None, _plain(customer)))
        return customer

    def add_contract(
        self,
        customer_id: int,
        name: str,
        type: ContractType | str,
        gpu_model: str,
        gpu_count: int,
        start_ms: int,
        end_ms: int | None,
        price_per_gpu_hour: float,
        *,
        status: ContractStatus | str = ContractStatus.ACTIVE,
        equity_terms: str | None = None,
        compute_value_credited: float | None = None,
    ) -> Contract:
        with self.writing(f"add contract {name!r}") as entries:
            self.customer(customer_id)
            draft = Contract(
                0, customer_id, name.strip(), ContractType(type), gpu_model.strip().upper(), int(gpu_count), int(start_ms),
                None if end_ms is None else int(end_ms), float(price_per_gpu_hour), ContractStatus(status),
                equity_terms, compute_value_credited,
            )
            _raise_if(contract_problems(draft))
            if self.conn.execute(
                "SELECT 1 FROM contracts WHERE customer_id = ? AND name = ?", (customer_id, draft.name)
            ).fetchone():
                raise ValidationError([Problem(f"this customer already has a contract named {draft.name!r}")])
            contract = replace(draft, id=self._insert_contract(draft))
            entries.append(("create", "contract", contract.id, None, _plain(contract)))
        return contract

    def _insert_contract(self, c: Contract) -> int:
        values = _plain(c)
        cursor = self.conn.execute(
            f"INSERT INTO contracts ({', '.join(_CONTRACT_FIELDS)}) VALUES ({', '.join('?' * len(_CONTRACT_FIELDS))})",
            [values[f] for f in _CONTRACT_FIELDS],
        )
        return meta.inserted_id(cursor)

    def update_contract(self, contract_id: int, **changes: Any) -> Contract:
        """Change a contract's terms; refused if its allocations would no longer fit (dates, count)."""
        unknown = set(changes) - set(_CONTRACT_FIELDS) | ({"customer_id"} & set(changes))
        if unknown:
            raise TypeError(f"contract fields that cannot be changed: {sorted(unknown)}")
        with self.writing(f"update contract {contract_id}") as entries:
            before = self.contract(contract_id)
            after = replace(before, **changes)
            after = replace(after, type=ContractType(after.type), status=ContractStatus(after.status))
            problems = contract_problems(after)
            held = self.allocations(contract_id=contract_id)
            outside = [a for a in held if not after.covers(a.start_ms, a.end_ms)]
            if outside:
                problems.append(Problem(f"{len(outside)} of its allocations would lie outside the new dates: release them first"))
            peak = peak_concurrency(held)
            if peak > after.gpu_count:
                problems.append(Problem(f"it holds {peak} GPUs at once, more than the new count {after.gpu_count}"))
            _raise_if(problems)
            values = _plain(after)
            fields = [f for f in _CONTRACT_FIELDS if f != "customer_id"]
            self.conn.execute(
                f"UPDATE contracts SET {', '.join(f'{f} = ?' for f in fields)} WHERE id = ?",
                [values[f] for f in fields] + [contract_id],
            )
            entries.append(("update", "contract", contract_id, _plain(before), _plain(after)))
        return after

    def allocate(
        self,
        contract_id: int,
        gpu_uuids: Iterable[str],
        start_ms: int,
        end_ms: int | None = None,
        *,
        confirm: bool = False,
        unhealthy_gpus: Mapping[str, str] | None = None,
        lifecycle_override: str | None = None,
    ) -> list[Allocation]:
        """Allocate GPUs to a contract from `start_ms` to `end_ms` (None: until the contract ends).

        Raises ValidationError listing every problem, NotInProduction naming the GPUs outside
        production unless `lifecycle_override` gives a reason (kept in the audit log), or
        NeedsConfirmation naming the lost or faulty GPUs (with why) unless `confirm`; nothing is
        written in any of these cases."""
        uuids = list(dict.fromkeys(gpu_uuids))
        with self.writing(f"allocate {len(uuids)} GPU(s) to contract {contract_id}") as entries:
            contract = self.contract(contract_id)
            if end_ms is None:
                end_ms = contract.end_ms
            proposed = [Proposed(contract_id, uuid, int(start_ms), None if end_ms is None else int(end_ms)) for uuid in uuids]
            self._check(proposed, {contract_id: contract})
            overridden = self._lifecycle_check(proposed, lifecycle_override)
            if not confirm:
                self._confirm_health(uuids, unhealthy_gpus)
            made = self._insert_allocations(proposed)
            entries.extend(("create", "allocation", a.id, None, _with_override(_plain(a), overridden)) for a in made)
        return made

    def _check(self, proposed: list[Proposed], contracts: Mapping[int, Contract]) -> None:
        uuids = {p.gpu_uuid for p in proposed}
        existing = [a for a in self._allocations_of(uuids)] + [
            a for cid in contracts for a in self.allocations(contract_id=cid) if a.gpu_uuid not in uuids
        ]
        _raise_if(check_allocations(proposed, contracts, existing, self.gpu_names()))

    def _lifecycle_check(self, proposed: Sequence[Proposed], override: str | None) -> dict[str, dict[str, str]]:
        """The GPUs of `proposed` outside production, with what the audit log records of their
        override (state, reason); raises NotInProduction when there are some and no reason."""
        view = read_view(self.conn)
        if not view.nodes and not view.overrides:
            return {}
        nodes = gpu_nodes(self.conn)
        outside: dict[str, OutsideProduction] = {}
        for p in proposed:
            record = view.deciding(p.gpu_uuid, nodes[p.gpu_uuid]) if p.gpu_uuid in nodes else None
            if record is not None and record.state is not State.PRODUCTION and p.gpu_uuid not in outside:
                outside[p.gpu_uuid] = OutsideProduction(p.gpu_uuid, record.state.value, record.reason, p.row)
        reason = (override or "").strip()
        if outside and not reason:
            raise NotInProduction(list(outside.values()))
        return {uuid: {"state": g.state, "reason": reason} for uuid, g in outside.items()}

    def _allocations_of(self, uuids: set[str]) -> list[Allocation]:
        if len(uuids) > 200:
            return [a for a in self.allocations() if a.gpu_uuid in uuids]
        return [a for uuid in sorted(uuids) for a in self.allocations(gpu_uuid=uuid)]

    def _confirm_health(self, uuids: Iterable[str], unhealthy_gpus: Mapping[str, str] | None) -> None:
        unhealthy = self.stored_unhealthy_gpus() if unhealthy_gpus is None else unhealthy_gpus
        flagged = [UnhealthyGpu(uuid, unhealthy[uuid]) for uuid in uuids if uuid in unhealthy]
        if flagged:
            raise NeedsConfirmation(flagged)

    def _insert_allocations(self, proposed: list[Proposed]) -> list[Allocation]:
        made = []
        for p in proposed:
            cursor = self.conn.execute(
                "INSERT INTO allocations (contract_id, gpu_uuid, start_ms, end_ms) VALUES (?, ?, ?, ?)",
                (p.contract_id, p.gpu_uuid, p.start_ms, p.end_ms),
            )
            made.append(Allocation(meta.inserted_id(cursor), p.contract_id, p.gpu_uuid, p.start_ms, p.end_ms))
        return made

    def release(self, allocation_ids: Iterable[int], at_ms: int) -> None:
        """End allocations at `at_ms`; one that had not started by then is removed. Releasing an
        allocation that already ended before `at_ms` changes nothing."""
        ids = list(dict.fromkeys(allocation_ids))
        with self.writing(f"release {len(ids)} allocation(s)") as entries:
            for allocation_id in ids:
                row = self.conn.execute(
                    "SELECT id, contract_id, gpu_uuid, start_ms, end_ms FROM allocations WHERE id = ?", (allocation_id,)
                ).fetchone()
                if row is None:
                    raise ValidationError([Problem(f"no allocation with id {allocation_id}")])
                before = Allocation(*row)
                if at_ms <= before.start_ms:
                    self.conn.execute("DELETE FROM allocations WHERE id = ?", (allocation_id,))
                    entries.append(("delete", "allocation", allocation_id, _plain(before), None))
                elif at_ms < before.end_or_open_ms:
                    self.conn.execute("UPDATE allocations SET end_ms = ? WHERE id = ?", (at_ms, allocation_id))
                    entries.append(("update", "allocation", allocation_id, _plain(before), _plain(replace(before, end_ms=at_ms))))

    def apply_batch(
        self,
        what: str,
        *,
        customers: Sequence[Customer] = (),
        customer_updates: Sequence[tuple[Customer, Customer]] = (),
        contracts: Sequence[Contract] = (),
        allocations: Sequence[Proposed] = (),
        confirm: bool = False,
        unhealthy_gpus: Mapping[str, str] | None = None,
        prevalidated: bool = False,
        lifecycle_override: str | None = None,
    ) -> None:
        """Write an import in one transaction: new customers and contracts (their ids are
        placeholders, negative, that `contracts[].customer_id` and `allocations[].contract_id` may
        refer to), customer updates (before, after), and new allocations, all validated first
        (`prevalidated`: the caller already ran `check_allocations` with its own row numbers; the
        triggers still guard the write). GPUs outside production need `lifecycle_override`, as in
        `allocate`."""
        with self.writing(what) as entries:
            customer_ids: dict[int, int] = {}
            for customer in customers:
                cursor = self.conn.execute(
                    "INSERT INTO customers (name, contact, notes) VALUES (?, ?, ?)",
                    (customer.name, customer.contact, customer.notes),
                )
                customer_ids[customer.id] = new_id = meta.inserted_id(cursor)
                entries.append(("create", "customer", new_id, None, _plain(replace(customer, id=new_id))))
            for before, after in customer_updates:
                self.conn.execute(
                    "UPDATE customers SET contact = ?, notes = ? WHERE id = ?", (after.contact, after.notes, before.id)
                )
                entries.append(("update", "customer", before.id, _plain(before), _plain(after)))
            contract_ids: dict[int, int] = {}
            for c in contracts:
                real = replace(c, customer_id=customer_ids.get(c.customer_id, c.customer_id))
                contract_ids[c.id] = self._insert_contract(real)
                entries.append(("create", "contract", contract_ids[c.id], None, _plain(replace(real, id=contract_ids[c.id]))))
            proposed = [
                Proposed(contract_ids.get(p.contract_id, p.contract_id), p.gpu_uuid, p.start_ms, p.end_ms, p.row)
                for p in allocations
            ]
            if proposed:
                if not prevalidated:
                    involved = {c.id: c for c in self.contracts() if c.id in {p.contract_id for p in proposed}}
                    self._check(proposed, involved)
                overridden = self._lifecycle_check(proposed, lifecycle_override)
                if not confirm:
                    self._confirm_health([p.gpu_uuid for p in proposed], unhealthy_gpus)
                ids = insert_allocations_in_bulk(self.conn, [(p.contract_id, p.gpu_uuid, p.start_ms, p.end_ms) for p in proposed])
                entries.extend(
                    ("create", "allocation", i, None, _with_override(
                        {"id": i, "contract_id": p.contract_id, "gpu_uuid": p.gpu_uuid, "start_ms": p.start_ms,
                         "end_ms": p.end_ms}, overridden))
                    for i, p in zip(ids, proposed, strict=True)
                )


def _with_override(after: dict[str, Any], overridden: Mapping[str, dict[str, str]]) -> dict[str, Any]:
    """An allocation's audit record, with the lifecycle override it was made under (if any)."""
    override = overridden.get(after["gpu_uuid"])
    return after if override is None else {**after, "lifecycle_override": override}


def contract_problems(c: Contract) -> list[Problem]:
    """What is wrong with a contract's own terms (the allocations it holds aside)."""
    problems = []
    if not c.name:
        problems.append(Problem("a contract needs a name"))
    if not c.gpu_model:
        problems.append(Problem("a contract needs a GPU model"))
    if c.gpu_count < 1:
        problems.append(Problem(f"GPU count must be at least 1, not {c.gpu_count}"))
    if c.end_ms is not None and c.end_ms <= c.start_ms:
        problems.append(Problem("the contract must end after it starts"))
    if c.price_per_gpu_hour < 0:
        problems.append(Problem(f"price per GPU-hour cannot be negative ({c.price_per_gpu_hour})"))
    if c.type is ContractType.COMPUTE_FOR_EQUITY and not (c.equity_terms or "").strip():
        problems.append(Problem("a compute-for-equity contract needs its equity terms"))
    return problems


def peak_concurrency(allocations: Iterable[Allocation]) -> int:
    """The most allocations active at one instant (half-open intervals)."""
    events = sorted([(a.start_ms, 1) for a in allocations] + [(a.end_or_open_ms, -1) for a in allocations])
    held = peak = 0
    for _, step in events:
        held += step
        peak = max(peak, held)
    return peak


def _raise_if(problems: list[Problem]) -> None:
    if problems:
        raise ValidationError(problems)

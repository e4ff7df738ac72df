"""Customers and allocations as CSV files, for spreadsheets and billing systems.

Import is all-or-nothing: every row is checked first and any problem rejects the whole file, with
every problem listed by its row (the spreadsheet row: the header is row 1). Import adds what the
file holds and the database lacks; rows already stored are skipped, so exporting and importing the
same file changes nothing.

Allocation columns, in order: customer, contract, contract_type, gpu_uuid, start, end (ISO 8601
UTC; empty = open-ended, i.e. until the contract ends), price_per_gpu_hour. A contract the database
does not know yet is created from its rows: its GPU model from its GPUs, its GPU count the most it
holds at once, its dates spanning its rows.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gpuops.core.allocations.errors import Problem, ValidationError
from gpuops.core.allocations.model import Allocation, Contract, ContractStatus, ContractType, Customer, gpu_model_of
from gpuops.core.allocations.repository import AllocationRepository, peak_concurrency
from gpuops.core.allocations.validation import Proposed, check_allocations
from gpuops.core.csv_cells import unescape, write_rows
from gpuops.core.timefmt import BadTime, format_ms, parse_iso_ms

ALLOCATION_COLUMNS = ("customer", "contract", "contract_type", "gpu_uuid", "start", "end", "price_per_gpu_hour")
CUSTOMER_COLUMNS = ("name", "contact", "notes")
FIRST_DATA_ROW = 2


@dataclass(frozen=True)
class ImportSummary:
    added: int
    unchanged: int
    customers_created: int = 0
    contracts_created: int = 0
    customers_updated: int = 0


def _read_rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(row number, row) pairs; a wrong header rejects the file at once."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")  # not read_text: a \r inside a cell is kept
    except OSError as exc:
        raise ValidationError([Problem(f"cannot read {path}: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise ValidationError([Problem(f"{path} is not UTF-8 text")]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != columns:
        raise ValidationError([Problem(f"the header must be exactly: {','.join(columns)}", 1)])
    rows = []
    problems = []
    for number, values in enumerate(reader, start=FIRST_DATA_ROW):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(columns):
            problems.append(Problem(f"{len(values)} columns, expected {len(columns)}", number))
            continue
        rows.append((number, dict(zip(columns, (unescape(v.strip()) for v in values), strict=True))))
    if problems:
        raise ValidationError(problems)
    return rows


def _write_rows(path: Path, columns: tuple[str, ...], rows: list[list[str | float | None]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        write_rows(handle, columns, rows)


# ----- customers -----


def export_customers(repo: AllocationRepository, path: Path) -> int:
    customers = repo.customers()
    _write_rows(path, CUSTOMER_COLUMNS, [[c.name, c.contact, c.notes] for c in customers])
    return len(customers)


def import_customers(repo: AllocationRepository, path: Path) -> ImportSummary:
    rows = _read_rows(path, CUSTOMER_COLUMNS)
    known = {c.name: c for c in repo.customers()}
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    new: list[Customer] = []
    updates: list[tuple[Customer, Customer]] = []
    unchanged = 0
    for number, row in rows:
        name = row["name"]
        if not name:
            problems.append(Problem("empty customer name", number))
            continue
        if name in seen:
            problems.append(Problem(f"customer {name!r} is listed twice (also row {seen[name]})", number))
            continue
        seen[name] = number
        existing = known.get(name)
        if existing is None:
            new.append(Customer(-len(new) - 1, name, row["contact"], row["notes"]))
        elif (existing.contact, existing.notes) != (row["contact"], row["notes"]):
            updates.append((existing, Customer(existing.id, name, row["contact"], row["notes"])))
        else:
            unchanged += 1
    if problems:
        raise ValidationError(problems)
    if new or updates:
        repo.apply_batch(f"import customers from {Path(path).name}", customers=new, customer_updates=updates)
    return ImportSummary(added=len(new), unchanged=unchanged, customers_created=len(new), customers_updated=len(updates))


# ----- allocations -----


def _price_text(price: float) -> str:
    return repr(float(price))


def export_allocations(repo: AllocationRepository, path: Path) -> int:
    """Every stored allocation, sorted by customer, contract, GPU and start."""
    rows = repo.conn.execute(
        "SELECT u.name, c.name, c.type, a.gpu_uuid, a.start_ms, a.end_ms, c.price_per_gpu_hour, a.id "
        "FROM allocations a JOIN contracts c ON c.id = a.contract_id JOIN customers u ON u.id = c.customer_id "
        "ORDER BY u.name, c.name, a.gpu_uuid, a.start_ms, a.id"
    ).fetchall()
    _write_rows(
        path,
        ALLOCATION_COLUMNS,
        [[cu, co, ty, uuid, format_ms(s), None if e is None else format_ms(e), p] for cu, co, ty, uuid, s, e, p, _ in rows],
    )
    return len(rows)


@dataclass(frozen=True, slots=True)
class _Row:
    number: int
    customer: str
    contract: str
    type: ContractType
    gpu_uuid: str
    start_ms: int
    end_ms: int | None
    price: float


def _parse_allocation(number: int, row: Mapping[str, str], problems: list[Problem]) -> _Row | None:
    found = []
    for column in ("customer", "contract", "gpu_uuid"):
        if not row[column]:
            found.append(f"empty {column}")
    try:
        ctype = ContractType(row["contract_type"])
    except ValueError:
        found.append(f"unknown contract_type {row['contract_type']!r} (one of {', '.join(t.value for t in ContractType)})")
        ctype = None
    start = end = None
    try:
        start = parse_iso_ms(row["start"])
    except BadTime as exc:
        found.append(f"start: {exc}")
    if row["end"]:
        try:
            end = parse_iso_ms(row["end"])
        except BadTime as exc:
            found.append(f"end: {exc}")
    try:
        price = float(row["price_per_gpu_hour"])
        if not price >= 0 or price == float("inf"):
            raise ValueError
    except ValueError:
        found.append(f"bad price_per_gpu_hour {row['price_per_gpu_hour']!r} (a number, 0 or more)")
        price = None
    problems.extend(Problem(message, number) for message in found)
    if found:
        return None
    assert ctype is not None and start is not None and price is not None  # each is set unless a problem was found
    return _Row(number, row["customer"], row["contract"], ctype, row["gpu_uuid"], start, end, price)


def import_allocations(
    repo: AllocationRepository, path: Path, *, confirm: bool = False, unhealthy_gpus: Mapping[str, str] | None = None,
    lifecycle_override: str | None = None,
) -> ImportSummary:
    """Import the file or change nothing: raises ValidationError with every problem (by row),
    NotInProduction if it allocates GPUs outside production without a `lifecycle_override` reason,
    or NeedsConfirmation if it allocates lost or faulty GPUs and `confirm` is False."""
    problems: list[Problem] = []
    parsed = [r for number, row in _read_rows(path, ALLOCATION_COLUMNS) if (r := _parse_allocation(number, row, problems))]
    customers = {c.name: c for c in repo.customers()}
    contracts = {(c.customer_id, c.name): c for c in repo.contracts()}
    gpu_names = repo.gpu_names()

    by_contract: dict[tuple[str, str], list[_Row]] = defaultdict(list)
    for r in parsed:
        by_contract[(r.customer, r.contract)].append(r)

    new_customers: dict[str, Customer] = {}
    new_contracts: list[Contract] = []
    contract_of: dict[tuple[str, str], Contract] = {}
    for key, rows in by_contract.items():
        customer = customers.get(key[0])
        existing = contracts.get((customer.id, key[1])) if customer else None
        if existing is not None:
            for r in rows:
                if (r.type, r.price) != (existing.type, existing.price_per_gpu_hour):
                    problems.append(
                        Problem(
                            f"contract {key[1]!r} of {key[0]!r} is {existing.type.value}"
                            f" at {_price_text(existing.price_per_gpu_hour)} per GPU-hour,"
                            f" this row says {r.type.value} at {_price_text(r.price)}",
                            r.number,
                        )
                    )
            contract_of[key] = existing
            continue
        terms = _contract_from_rows(key, rows, gpu_names, problems)
        if terms is None:
            continue
        if customer is None:
            customer = new_customers.setdefault(key[0], Customer(-len(new_customers) - 1, key[0]))
        made = Contract(-len(new_contracts) - 1, customer.id, *terms)
        new_contracts.append(made)
        contract_of[key] = made

    stored = {(a.contract_id, a.gpu_uuid, a.start_ms, a.end_ms) for a in repo.allocations()}
    proposed, unchanged = [], 0
    for r in parsed:
        contract = contract_of.get((r.customer, r.contract))
        if contract is None:
            continue
        end = contract.end_ms if r.end_ms is None else r.end_ms
        if (contract.id, r.gpu_uuid, r.start_ms, end) in stored:
            unchanged += 1
            continue
        proposed.append(Proposed(contract.id, r.gpu_uuid, r.start_ms, end, r.number))

    if proposed:
        everything = {c.id: c for c in list(contracts.values()) + new_contracts}
        involved = {p.contract_id for p in proposed}
        booked = [a for a in repo.allocations() if a.contract_id in involved or a.gpu_uuid in {p.gpu_uuid for p in proposed}]
        problems.extend(check_allocations(proposed, everything, booked, gpu_names))
    if problems:
        problems.sort(key=lambda p: (p.row or 0))
        raise ValidationError(problems)
    if proposed:
        repo.apply_batch(
            f"import allocations from {Path(path).name}",
            customers=list(new_customers.values()),
            contracts=new_contracts,
            allocations=proposed,
            confirm=confirm,
            unhealthy_gpus=unhealthy_gpus,
            prevalidated=True,
            lifecycle_override=lifecycle_override,
        )
    return ImportSummary(
        added=len(proposed), unchanged=unchanged, customers_created=len(new_customers), contracts_created=len(new_contracts)
    )


def _contract_from_rows(
    key: tuple[str, str], rows: list[_Row], gpu_names: Mapping[str, str], problems: list[Problem]
) -> tuple | None:
    """The fields after id and customer_id of a contract made from its import rows, or None
    (with problems added) when its rows disagree."""
    first = rows[0]
    bad = False
    for r in rows[1:]:
        if (r.type, r.price) != (first.type, first.price):
            problems.append(
                Problem(
                    f"contract {key[1]!r} is {first.type.value} at {_price_text(first.price)} on row {first.number}, "
                    f"{r.type.value} at {_price_text(r.price)} here",
                    r.number,
                )
            )
            bad = True
    if first.type is ContractType.COMPUTE_FOR_EQUITY:
        problems.append(
            Problem(
                f"new compute_for_equity contract {key[1]!r} needs its equity terms:"
                " add it first with gpuops contracts add --equity-terms ...",
                first.number,
            )
        )
        bad = True
    models = {gpu_model_of(gpu_names[r.gpu_uuid]) for r in rows if r.gpu_uuid in gpu_names}
    if len(models) > 1:
        problems.append(Problem(f"new contract {key[1]!r} mixes GPU models ({', '.join(sorted(models))})", first.number))
        bad = True
    if bad:
        return None
    model = models.pop() if models else "UNKNOWN"  # unknown GPUs are reported row by row
    spans = [Allocation(0, 0, r.gpu_uuid, r.start_ms, r.end_ms) for r in rows]
    start = min(r.start_ms for r in rows)
    ends = [r.end_ms for r in rows]
    end = max(e for e in ends if e is not None) if None not in ends else None
    return (
        key[1], first.type, model, max(1, peak_concurrency(spans)), start, end, first.price, ContractStatus.ACTIVE, None, None,
    )

"""`gpuops contracts list|add|end|set-status`: contracts without going through an allocations CSV,
which cannot create a compute-for-equity contract (it has no column for the equity terms).

Every change goes through the repository, so it is validated there (all problems at once),
written in one transaction with its audit entries, and refused by --read-only."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from gpuops.commands._book import add_book_command, run_on_book
from gpuops.commands._options import UsageError, add_action
from gpuops.commands._output import add_format, print_json

if TYPE_CHECKING:
    from gpuops.core.allocations.model import Contract, Customer
    from gpuops.core.allocations.repository import AllocationRepository

_TYPES = ("reserved", "on_demand", "spot", "compute_for_equity")
_STATUSES = ("active", "suspended", "ended", "cancelled")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_book_command(
        subparsers, "contracts",
        help="list, add, end or change the status of contracts",
        description="List contracts, add one (its customer is created if new; a compute_for_equity contract needs "
        "--equity-terms), end one at a time, or change its status. Times are ISO 8601 UTC. Refused changes list every "
        "problem and change nothing; every change is in the audit log.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = add_action(actions, parser, "list", help="the stored contracts, sorted by customer and name")
    listing.add_argument("--customer", metavar="NAME", help="only this customer's contracts")
    add_format(listing, ("table", "json"), default="table", json_alias=True)

    add = add_action(actions, parser, "add", help="add a contract (and its customer if new)")
    add.add_argument("--customer", required=True, metavar="NAME")
    add.add_argument("--name", required=True, metavar="CONTRACT", help="unique per customer")
    add.add_argument("--type", required=True, choices=_TYPES)
    add.add_argument(
        "--model", required=True, metavar="MODEL",
        help="GPU model, short (H100) or as NVML names it (NVIDIA H100 80GB HBM3)",
    )
    add.add_argument("--gpus", required=True, type=int, metavar="N", help="the most GPUs it holds at once")
    add.add_argument("--start", required=True, metavar="ISO")
    add.add_argument("--end", required=True, metavar="ISO", help="'' for open-ended")
    add.add_argument("--price-per-gpu-hour", required=True, type=float, metavar="X")
    add.add_argument("--equity-terms", default=None, metavar="TEXT", help="compute_for_equity: the equity terms (required)")
    add.add_argument(
        "--compute-value-credited", type=float, default=None, metavar="X",
        help="compute_for_equity: compute value credited",
    )

    end = add_action(actions, parser, "end", help="set when a contract ends (refused while it holds GPUs past then)")
    _contract_arguments(end)
    end.add_argument("--at", required=True, metavar="ISO")

    status = add_action(actions, parser, "set-status", help="change a contract's status")
    _contract_arguments(status)
    status.add_argument("--status", required=True, choices=_STATUSES)
    parser.set_defaults(run=run)


def _contract_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="CONTRACT")
    parser.add_argument(
        "--customer", required=True, metavar="NAME",
        help="the customer holding it (names are unique per customer)",
    )


def run(args: argparse.Namespace) -> int:
    from gpuops.core.timefmt import BadTime, parse_iso_ms

    try:
        times = {key: parse_iso_ms(getattr(args, key)) for key in ("start", "at") if getattr(args, key, None) is not None}
        if getattr(args, "end", None):
            times["end"] = parse_iso_ms(args.end)
    except BadTime as exc:
        raise UsageError(str(exc)) from None
    if args.action == "list":
        return run_on_book(args, lambda repo: _list(repo, args), writes=False)
    if args.action == "add":
        return run_on_book(args, lambda repo: _add(repo, args, times["start"], times.get("end")), writes=True)
    if args.action == "end":
        return run_on_book(args, lambda repo: _update(repo, args, end_ms=times["at"]), writes=True)
    return run_on_book(args, lambda repo: _update(repo, args, status=args.status), writes=True)


def _customer(repo: AllocationRepository, name: str) -> Customer:
    from gpuops.core.allocations.errors import AllocationError

    customer = repo.customer_named(name)
    if customer is None:
        raise AllocationError(f"no customer named {name!r}")
    return customer


def _contract(repo: AllocationRepository, customer_name: str, name: str) -> Contract:
    from gpuops.core.allocations.errors import AllocationError

    customer = _customer(repo, customer_name)
    for contract in repo.contracts(customer.id):
        if contract.name == name:
            return contract
    raise AllocationError(f"customer {customer_name!r} has no contract named {name!r}")


def _list(repo: AllocationRepository, args: argparse.Namespace) -> int:
    names = {c.id: c.name for c in repo.customers()}
    contracts = repo.contracts(_customer(repo, args.customer).id if args.customer else None)
    rows = sorted((_as_row(c, names[c.customer_id]) for c in contracts), key=lambda r: (r["customer"], r["name"]))
    if args.format == "json":
        print_json(rows)
        return 0
    for r in rows:
        terms = f"  equity: {r['equity_terms']} (credited {r['compute_value_credited']})" if r["equity_terms"] else ""
        print(
            f"{r['customer']}  {r['name']}  {r['type']}  {r['gpu_count']}x {r['gpu_model']}  {r['start']} .. {r['end'] or 'open'}"
            f"  {r['price_per_gpu_hour']}/GPU-hour  {r['status']}{terms}"
        )
    print(f"{len(rows)} contract(s)")
    return 0


def _as_row(c: Contract, customer_name: str) -> dict:
    from gpuops.core.timefmt import format_ms

    return {
        "id": c.id,
        "customer": customer_name,
        "name": c.name,
        "type": c.type.value,
        "gpu_model": c.gpu_model,
        "gpu_count": c.gpu_count,
        "start": format_ms(c.start_ms),
        "end": None if c.end_ms is None else format_ms(c.end_ms),
        "price_per_gpu_hour": c.price_per_gpu_hour,
        "status": c.status.value,
        "equity_terms": c.equity_terms,
        "compute_value_credited": c.compute_value_credited,
    }


def _add(repo: AllocationRepository, args: argparse.Namespace, start_ms: int, end_ms: int | None) -> int:
    """A customer that is new is created in the same transaction as its contract, so a refused
    contract leaves no customer behind (as the allocations import does)."""
    from gpuops.core.allocations.errors import ValidationError
    from gpuops.core.allocations.model import Contract, ContractType, Customer, gpu_model_of
    from gpuops.core.allocations.repository import contract_problems

    terms = dict(equity_terms=args.equity_terms, compute_value_credited=args.compute_value_credited)
    model = gpu_model_of(args.model.strip())
    fields = (args.name.strip(), ContractType(args.type), model, args.gpus, start_ms, end_ms, args.price_per_gpu_hour)
    customer = repo.customer_named(args.customer.strip())
    if customer is not None:
        contract = repo.add_contract(customer.id, *fields, **terms)
    else:
        draft = Contract(-1, -1, *fields, **terms)
        problems = contract_problems(draft)
        if problems:
            raise ValidationError(problems)
        repo.apply_batch(f"add contract {draft.name!r}", customers=[Customer(-1, args.customer.strip())], contracts=[draft])
        contract = _contract(repo, args.customer.strip(), draft.name)
        print(f"customer {args.customer.strip()!r} added")
    kind = f"{contract.type.value}, {contract.gpu_count}x {contract.gpu_model}"
    print(f"contract {contract.name!r} added (id {contract.id}, {kind})")
    return 0


def _update(repo: AllocationRepository, args: argparse.Namespace, **changes) -> int:
    contract = repo.update_contract(_contract(repo, args.customer, args.name).id, **changes)
    end = "open-ended" if contract.end_ms is None else f"ends {_as_row(contract, args.customer)['end']}"
    print(f"contract {contract.name!r} of {args.customer!r}: {contract.status.value}, {end}")
    return 0

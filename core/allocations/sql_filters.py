"""Optional filters of a listing query (only a contract, only since a time, ...) as SQL."""

from __future__ import annotations

from collections.abc import Iterable


def where_clause(filters: Iterable[tuple[str, object]]) -> tuple[str, list[object]]:
    """`(" WHERE a AND b", params)` for the (clause with one `?`, value) pairs whose value is not
    None, `("", [])` when none is: a filter left as None means "any"."""
    clauses, params = [], []
    for clause, value in filters:
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

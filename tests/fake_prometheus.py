"""A fake Prometheus HTTP API for the query shapes the `prometheus:` source sends.

It holds a list of series (labels with __name__, value) and answers /api/v1/query for
`name{matchers}`, `{matchers}`, `max by (...)` / `group by (...)` of those, and `... == 1`,
in Prometheus' JSON shape. Answers are cached per query string, like canned responses: the
fleet only changes through `set_series`. The real thing is exercised in test_fleet_e2e.py.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from tests.local_http import Answer, LocalServer

_AGGREGATE = re.compile(r"^(max|group) by \(([^)]*)\) \((.*)\)$", re.S)
_SELECTOR = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)?(\{.*\})?$", re.S)
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')

Series = tuple[dict[str, str], float]


def _matchers(text: str) -> list[tuple[str, str, str]]:
    body = text[1:-1] if text else ""
    found, position = [], 0
    while position < len(body):
        match = _MATCHER.match(body, position)
        if match is None:
            raise ValueError(f"parse error in matchers {body[position:]!r}")
        found.append((match.group(1), match.group(2), match.group(3).replace('\\"', '"')))
        position = match.end()
    return found


def _matches(labels: dict[str, str], matchers: list[tuple[str, str, str]]) -> bool:
    for name, op, want in matchers:
        have = labels.get(name, "")
        ok = {
            "=": have == want, "!=": have != want,
            "=~": re.fullmatch(want, have) is not None, "!~": re.fullmatch(want, have) is None,
        }[op]
        if not ok:
            return False
    return True


class FakePrometheus:
    def __init__(self, series: Iterable[Series] = (), ts: float = 1_773_114_089.444) -> None:
        self.ts = ts
        self.series: list[Series] = list(series)
        self._cache: dict[str, bytes] = {}
        self._index: dict[str, list[Series]] | None = None
        self.server = LocalServer(self._route)

    @property
    def url(self) -> str:
        return self.server.base

    def set_series(self, series: Iterable[Series]) -> None:
        self.series = list(series)
        self._cache.clear()
        self._index = None

    def _by_name(self) -> dict[str, list[Series]]:
        if self._index is None:
            self._index = {}
            for labels, value in self.series:
                self._index.setdefault(labels.get("__name__", ""), []).append((labels, value))
        return self._index

    def queries(self) -> list[str]:
        return [parse_qs(urlsplit(path).query).get("query", [""])[0] for path in self.server.requests]

    def stop(self) -> None:
        self.server.stop()

    def _route(self, path: str) -> Answer | None:
        parts = urlsplit(path)
        if parts.path != "/api/v1/query":
            return None
        query = parse_qs(parts.query).get("query", [""])[0]
        cached = self._cache.get(query)
        if cached is None:
            try:
                result = self.evaluate(query)
            except ValueError as exc:
                body = json.dumps({"status": "error", "errorType": "bad_data", "error": str(exc)}).encode()
                return Answer(body, status=400, content_type="application/json")
            document = {"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": labels, "value": [self.ts, _format(value)]} for labels, value in result
            ]}}
            cached = self._cache[query] = json.dumps(document, separators=(",", ":")).encode()
        return Answer(cached, content_type="application/json")

    def evaluate(self, query: str) -> list[Series]:
        query = query.strip()
        equals_one = query.endswith(" == 1)")
        if equals_one:
            query = query.replace(" == 1)", ")")
        aggregate = _AGGREGATE.match(query)
        if aggregate:
            op, by_text, inner = aggregate.groups()
            by = [label.strip() for label in by_text.split(",") if label.strip()]
            groups: dict[tuple[str, ...], float] = {}
            for labels, value in self._select(inner):
                if equals_one and value != 1:
                    continue
                key = tuple(labels.get(label, "") for label in by)
                groups[key] = 1.0 if op == "group" else max(value, groups.get(key, value))
            return [({label: v for label, v in zip(by, key, strict=True) if v}, value) for key, value in groups.items()]
        return [(labels, value) for labels, value in self._select(query) if not equals_one or value == 1]

    def _select(self, selector: str) -> list[Series]:
        match = _SELECTOR.match(selector.strip())
        if match is None:
            raise ValueError(f"unsupported query {selector!r}")
        name, braces = match.groups()
        matchers = _matchers(braces or "")
        if name:
            matchers.append(("__name__", "=", name))
        on_name = [m for m in matchers if m[0] == "__name__"]
        by_name = self._by_name()
        names = [n for n in by_name if _matches({"__name__": n}, on_name)]
        return [(labels, value) for n in names for labels, value in by_name[n] if _matches(labels, matchers)]


def _format(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return str(int(value)) if value == int(value) else repr(value)


def series_from_api_answers(documents: Iterable[dict]) -> list[Series]:
    """Series of saved /api/v1/query answers (vectors with __name__)."""
    return [(row["metric"], float(row["value"][1])) for document in documents for row in document["data"]["result"]]

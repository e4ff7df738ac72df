"""Silences and maintenance, as in Alertmanager: muting alerts a person already knows about.

A silence holds label matchers (all must match), a time window, an author and a comment.
Matchers compare one label (node, gpu, customer, rule, severity, site, model) with `=`, `!=`,
`=~` or `!~`; regexes are anchored at both ends, as Alertmanager's are.
A node in maintenance mutes every alert of that node until it leaves maintenance.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

MATCHER_LABELS = ("node", "gpu", "customer", "rule", "severity", "site", "model")
MATCHER_OPS = ("=", "!=", "=~", "!~")
MAINTENANCE = "maintenance"  # the `silenced_by` of alerts muted by a node in maintenance


class SilenceError(ValueError):
    """A silence or matcher is invalid; the message says which part and why."""


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.label not in MATCHER_LABELS:
            raise SilenceError(f"cannot match on label {self.label!r}; labels: {', '.join(MATCHER_LABELS)}")
        if self.op not in MATCHER_OPS:
            raise SilenceError(f"matcher operator {self.op!r} is not one of {' '.join(MATCHER_OPS)}")
        if self.op in ("=~", "!~"):
            try:
                _ = self._regex  # compile now, so a bad regex is refused here
            except re.error as exc:
                raise SilenceError(f"matcher {self.label}{self.op}{self.value!r}: bad regex: {exc}") from None

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        return re.compile(f"(?:{self.value})")

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")  # a missing label matches as "", as in Alertmanager
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = self._regex.fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """`node=node01`, `severity!=info`, `gpu=~GPU-1.*`, `rule!~xid_.*`."""
        match = re.fullmatch(r"\s*([a-z_]+)\s*(=~|!~|!=|=)\s*(.*?)\s*", text)
        if match is None:
            raise SilenceError(f"matcher {text!r} must look like label=value, label!=value, label=~regex or label!~regex")
        return cls(*match.groups())

    def __str__(self) -> str:
        return f"{self.label}{self.op}{self.value}"

    def to_dict(self) -> dict[str, str]:
        return {"label": self.label, "op": self.op, "value": self.value}


@dataclass(frozen=True)
class Silence:
    id: int
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    author: str
    comment: str
    created_at: float

    def __post_init__(self) -> None:
        if not self.matchers:
            raise SilenceError("a silence needs at least one matcher (it would mute everything)")
        if not self.ends_at > self.starts_at:
            raise SilenceError("a silence must end after it starts")
        if not self.author.strip():
            raise SilenceError("a silence needs an author")

    def active_at(self, ts: float) -> bool:
        return self.starts_at <= ts < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    @staticmethod
    def matchers_from_json(raw: Iterable[Mapping[str, Any]]) -> tuple[Matcher, ...]:
        return tuple(Matcher(str(m["label"]), str(m["op"]), str(m["value"])) for m in raw)


@dataclass(frozen=True)
class Maintenance:
    node: str
    since: float
    author: str
    comment: str


def silencing(
    labels: Mapping[str, str], silences: Iterable[Silence], maintenance: Mapping[str, Maintenance], ts: float
) -> str | None:
    """What mutes an alert with these labels at `ts`: "maintenance", a silence id as text, or None."""
    if labels.get("node") in maintenance:
        return MAINTENANCE
    for silence in silences:
        if silence.active_at(ts) and silence.matches(labels):
            return str(silence.id)
    return None

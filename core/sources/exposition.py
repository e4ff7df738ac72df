"""Read Prometheus text exposition with prometheus_client's parser, fast enough for a fleet.

prometheus_client's parser costs tens of µs a line; a thousand 8-GPU endpoints are some
350,000 lines a poll. Two caches, per endpoint, keep it to the lines that are really new:

* Like Prometheus' own scrape cache, every series text (`name{labels}`) already understood is
  remembered, so a later poll only splits the line and converts the number.
* Every metric of one GPU carries the same label set, so on a first poll each distinct label
  text goes through prometheus_client's parser once (all of one answer's new ones in a single
  call), and the metric name is checked against Prometheus' name grammar.

Anything else (a line whose number does not convert, a bad name, a label text the parser
rejects) goes through the parser as a whole line, which accepts it or names the bad line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

Ref = TypeVar("Ref")

# Enough for a node with many GPUs, MIG instances and pods; past it the caches start over.
MAX_CACHED_SERIES = 200_000
_IGNORED = object()
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_PARSE_ERRORS = (ValueError, IndexError, TypeError, KeyError)


class ExpositionError(ValueError):
    """The text is not valid exposition; the message names the first bad line."""


def _samples(text: str) -> list[Sample]:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def _bad_line(number: int, line: str, problem: str) -> ExpositionError:
    shown = line if len(line) <= 120 else line[:117] + "..."
    return ExpositionError(f"line {number}: {problem} in {shown!r}")


class ExpositionReader(Generic[Ref]):
    """Turns one endpoint's answers into (ref, value) pairs; `classify(name, labels)` says what a
    series means (None: not wanted). One reader per endpoint, used by one thread at a time."""

    def __init__(self, classify: Callable[[str, Mapping[str, str]], Ref | None]) -> None:
        self._classify = classify
        self._series: dict[str, object] = {}
        self._label_sets: dict[str, dict[str, str]] = {}

    def read(self, text: str) -> list[tuple[Ref, float]]:
        cache = self._series
        found: list[tuple[Ref, float]] = []
        new: list[tuple[int, str, str, float]] = []
        for number, line in enumerate(text.split("\n"), start=1):
            if not line or line[0] == "#":
                continue
            series, brace, value_text = line.rpartition("} ")  # the common `name{labels} value`
            if brace:
                series += "}"
            else:
                series, _, value_text = line.partition(" ")
            try:
                value = float(value_text)
            except ValueError:
                parts = value_text.split()  # `value timestamp`, or odd spacing
                try:
                    if len(parts) != 2:
                        raise ValueError
                    value = float(parts[0])
                except ValueError:  # garbage: the parser decides
                    found.extend(self._whole_line(number, line))
                    continue
            ref = cache.get(series)
            if ref is None:
                new.append((number, line, series, value))
            elif ref is not _IGNORED:
                found.append((ref, value))  # type: ignore[arg-type]  # not the _IGNORED sentinel: a Ref
        if new:
            found.extend(self._understand(new))
        return found

    def _understand(self, new: list[tuple[int, str, str, float]]) -> list[tuple[Ref, float]]:
        """Meaning of series seen for the first time; each new label text parsed once."""
        if len(self._series) + len(new) > MAX_CACHED_SERIES:
            self._series.clear()
            self._label_sets.clear()
        split: list[tuple[int, str, str, float, str, str]] = []
        unparsed: dict[str, tuple[int, str]] = {}
        for number, line, series, value in new:
            name, brace, label_text = series.partition("{")
            label_text = label_text[:-1] if brace else ""
            if not _METRIC_NAME.fullmatch(name):
                self._whole_line(number, line)  # raises with the parser's own words
                raise _bad_line(number, line, f"invalid metric name {name!r}")
            if label_text and label_text not in self._label_sets and label_text not in unparsed:
                unparsed[label_text] = (number, line)
            split.append((number, line, series, value, name, label_text))
        if unparsed:
            self._parse_label_sets(unparsed)
        found: list[tuple[Ref, float]] = []
        for _, _, series, value, name, label_text in split:
            labels = self._label_sets[label_text] if label_text else {}
            ref = self._classify(name, labels)
            self._series[series] = _IGNORED if ref is None else ref
            if ref is not None:
                found.append((ref, value))
        return found

    def _parse_label_sets(self, unparsed: dict[str, tuple[int, str]]) -> None:
        texts = list(unparsed)
        try:
            samples = _samples("".join(f"x{{{text}}} 0\n" for text in texts))
        except _PARSE_ERRORS:
            samples = []
        if len(samples) != len(texts):  # find the culprit, one label set at a time
            samples = []
            for text in texts:
                try:
                    samples.extend(_samples(f"x{{{text}}} 0\n"))
                except _PARSE_ERRORS as exc:
                    number, line = unparsed[text]
                    raise _bad_line(number, line, str(exc)) from None
        for text, sample in zip(texts, samples, strict=True):
            self._label_sets[text] = sample.labels

    def _whole_line(self, number: int, line: str) -> list[tuple[Ref, float]]:
        """A line off the fast path: the parser decides (and its samples are not cached)."""
        try:
            samples = _samples(line + "\n")
        except _PARSE_ERRORS as exc:
            raise _bad_line(number, line, str(exc)) from None
        found: list[tuple[Ref, float]] = []
        for sample in samples:
            ref = self._classify(sample.name, sample.labels)
            if ref is not None:
                found.append((ref, float(sample.value)))
        return found

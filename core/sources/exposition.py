"""Read Prometheus text exposition with prometheus_client's parser, fast enough for a fleet.

prometheus_client's parser costs about 10 µs a line; a thousand 8-GPU endpoints are some
300,000 lines a poll. Like Prometheus' own scrape cache, each reader remembers what every
series text ("name{labels}") it has parsed means, so a later poll only splits the line and
converts the number. A line whose series text is new, or whose number does not convert, goes
through the real parser, which accepts it or rejects the whole answer with its line number.
"""

from __future__ import annotations

from typing import Callable, Generic, Mapping, TypeVar

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

Ref = TypeVar("Ref")

# Enough for a node with many GPUs, MIG instances and pods; past it the cache starts over.
MAX_CACHED_SERIES = 200_000
_IGNORED = object()


class ExpositionError(ValueError):
    """The text is not valid exposition; the message names the first bad line."""


class ExpositionReader(Generic[Ref]):
    """Turns one endpoint's answers into (ref, value) pairs; `classify(name, labels)` says what a
    series means (None: not wanted). One reader per endpoint, used by one thread at a time."""

    def __init__(self, classify: Callable[[str, Mapping[str, str]], Ref | None]) -> None:
        self._classify = classify
        self._cache: dict[str, object] = {}

    def read(self, text: str) -> list[tuple[Ref, float]]:
        cache = self._cache
        found: list[tuple[Ref, float]] = []
        misses: list[tuple[int, str, str]] = []
        for number, line in enumerate(text.split("\n"), start=1):
            if not line or line[0] == "#":
                continue
            brace = line.rfind("}")
            if brace >= 0:
                series, rest = line[: brace + 1], line[brace + 1 :]
            else:
                series, _, rest = line.partition(" ")
            ref = cache.get(series)
            if ref is None:
                misses.append((number, line, series))
                continue
            parts = rest.split()
            try:
                if not 1 <= len(parts) <= 2:
                    raise ValueError
                value = float(parts[0])
            except ValueError:
                misses.append((number, line, series))
                continue
            if ref is not _IGNORED:
                found.append((ref, value))  # type: ignore[arg-type]
        if misses:
            found.extend(self._parse_misses(misses))
        return found

    def _parse_misses(self, misses: list[tuple[int, str, str]]) -> list[tuple[Ref, float]]:
        """Parse the new lines in one parser call (each sample line yields one sample, in order);
        only if that fails, or the count does not match, line by line to name the bad one."""
        if len(self._cache) + len(misses) > MAX_CACHED_SERIES:
            self._cache.clear()
        try:
            samples = _samples("\n".join(line for _, line, _ in misses) + "\n")
        except (ValueError, IndexError, TypeError, KeyError):
            samples = []
        if len(samples) != len(misses):
            samples = [self._parse_one(number, line) for number, line, _ in misses]
        found: list[tuple[Ref, float]] = []
        for (_, _, series), sample in zip(misses, samples):
            ref = self._classify(sample.name, sample.labels)
            self._cache[series] = _IGNORED if ref is None else ref
            if ref is not None:
                found.append((ref, float(sample.value)))
        return found

    @staticmethod
    def _parse_one(number: int, line: str) -> Sample:
        try:
            samples = _samples(line + "\n")
        except (ValueError, IndexError, TypeError, KeyError) as exc:
            samples, problem = [], str(exc)
        else:
            problem = f"{len(samples)} samples on one line"
        if len(samples) != 1:
            shown = line if len(line) <= 120 else line[:117] + "..."
            raise ExpositionError(f"line {number}: {problem} in {shown!r}")
        return samples[0]


def _samples(text: str) -> list[Sample]:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]

"""Prometheus text format 0.0.4, written the way dcgm-exporter writes it.

prometheus_client's `generate_latest` always appends `_total` to a counter's name, but
dcgm-exporter declares its cumulative fields as counters under their DCGM names
(`# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter`). This writer declares every family
under exactly the name its samples carry, so both `gpuops_xid_errors_total` and the DCGM names
are typed `counter`. One scrape answer is rendered once per poll and gzipped at most once.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
GZIP_LEVEL = 6  # zlib's default: ~10x smaller for exposition text at a few ms per 8-GPU answer
# How the text format names the families prometheus_client models (state sets are gauges there).
_TEXT_TYPES = {"counter": "counter", "gauge": "gauge", "stateset": "gauge", "unknown": "untyped"}


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _escape_value(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def render(families: Iterable[Metric]) -> bytes:
    """The families as text exposition; a family type the text format cannot carry is a bug (KeyError)."""
    out: list[str] = []
    label_texts: dict[tuple[tuple[str, str], ...], str] = {}  # every GPU's label set repeats per family
    for family in families:
        out.append(f"# HELP {family.name} {_escape_help(family.documentation)}\n")
        out.append(f"# TYPE {family.name} {_TEXT_TYPES[family.type]}\n")
        for sample in family.samples:
            key = tuple(sample.labels.items())
            labels = label_texts.get(key)
            if labels is None:
                inner = ",".join(f'{name}="{_escape_value(value)}"' for name, value in key)
                labels = label_texts[key] = f"{{{inner}}}" if inner else ""
            out.append(f"{sample.name}{labels} {floatToGoString(sample.value)}\n")
    return "".join(out).encode("utf-8")


class RenderedMetrics:
    """One `/metrics` answer: the plain text, and its gzip form made on the first request for it."""

    def __init__(self, plain: bytes) -> None:
        self.plain = plain
        self._gzipped: bytes | None = None

    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.plain, compresslevel=GZIP_LEVEL, mtime=0)
        return self._gzipped

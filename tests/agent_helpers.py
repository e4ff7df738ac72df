"""Shared pieces for tests that run the agent: a source that plays back given samples, and a
parsed view of an exposition answer."""

from __future__ import annotations

import subprocess
import threading
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gpuops.core.sources.base import SourceError, TelemetrySource
from gpuops.core.telemetry import FleetSample


class PlaybackSource(TelemetrySource):
    """Returns the given samples in turn (the last one forever); `gate` can hold a poll back."""

    name = "playback"

    def __init__(self, samples: list[FleetSample | SourceError]) -> None:
        self._samples = list(samples)
        self.polls = 0
        self.closed = False
        self.gate: threading.Event | None = None

    def poll(self) -> FleetSample:
        if self.gate is not None:
            self.gate.wait(30)
        item = self._samples[min(self.polls, len(self._samples) - 1)]
        self.polls += 1
        if isinstance(item, SourceError):
            raise item
        return item

    def close(self) -> None:
        self.closed = True


@dataclass
class Exposition:
    """Families by name, and (sample name -> list of (labels, value))."""

    types: dict[str, str] = field(default_factory=dict)
    samples: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def parse(cls, text: str) -> Exposition:
        """Through prometheus_client's parser; samples keep the name they have on the wire (the
        parser calls a counter declared without `_total`, as dcgm-exporter's are, `NAME_total`)."""
        exposition = cls()
        declared = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
        for family in text_string_to_metric_families(text):
            exposition.types[family.name] = family.type
            bare_counter = family.type == "counter" and family.name in declared
            for sample in family.samples:
                name = family.name if bare_counter and sample.name == family.name + "_total" else sample.name
                exposition.samples[name].append((sample.labels, float(sample.value)))
        return exposition

    def value(self, name: str, **labels: str) -> float:
        matches = [v for got, v in self.samples.get(name, []) if all(got.get(k) == want for k, want in labels.items())]
        assert len(matches) == 1, f"{name}{labels}: {len(matches)} matching samples"
        return matches[0]


def fetch(
    url: str, *, headers: dict[str, str] | None = None, method: str = "GET", context=None,
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request, 4xx/5xx included."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def self_signed_certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway certificate and key for 127.0.0.1 (openssl CLI)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key

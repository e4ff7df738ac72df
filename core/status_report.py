"""The `gpuops status` document: a contract scripts rely on (schema in README.md)."""

from __future__ import annotations

from typing import Any

from gpuops.core.sources.base import TelemetrySource
from gpuops.core.telemetry import FleetSample


def status_document(source: TelemetrySource, sample: FleetSample) -> dict[str, Any]:
    """{"source", "simulated", "notice", "collected_at", "errors", "gpus": [...]}, JSON-ready."""
    return {
        "source": source.name,
        "simulated": source.simulated,
        "notice": source.notice,
        "collected_at": sample.ts,
        "errors": list(sample.errors),
        "gpus": sample.records(),
    }

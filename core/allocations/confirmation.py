"""Which GPUs need a second thought before they are allocated: lost ones, and ones the health
model grades critical, each with the reason to show in the confirmation dialog."""

from __future__ import annotations

import numpy as np

from gpuops.core.health import FleetHealth, Health
from gpuops.core.telemetry import FleetSample, GpuState


def unhealthy_gpus(sample: FleetSample, health: FleetHealth | None = None) -> dict[str, str]:
    """UUID -> reason for every lost or critical GPU of a live sample (pass it to
    `AllocationRepository.allocate(..., unhealthy_gpus=...)`)."""
    lost = sample.state == GpuState.LOST
    critical = np.zeros(len(sample), dtype=bool) if health is None else health.level >= Health.CRITICAL
    out = {}
    for i in np.flatnonzero(lost | critical):
        reason = health.reasons[i] if health is not None and health.reasons[i] else "GPU lost (fell off the bus)"
        out[sample.gpus[i].uuid] = reason
    return out

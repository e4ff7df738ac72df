"""What a rule's summary and runbook say once rendered, shown while the rule is edited.

The texts are rendered exactly as the engine renders a new alert's (`template_values` and
`render_template`), against one made-up but typical subject: an H100 running hot, allocated to a
customer, with an XID this poll; its node one GPU short of before; a source with one target down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpuops.core.alerts.engine import render_template, template_values
from gpuops.core.alerts.rules import Rule
from gpuops.core.alerts.signals import EvaluationContext, Inventory, SignalFrame
from gpuops.core.telemetry import FleetSample, GpuInventory, GpuState, XidEvent, empty_metrics

EXAMPLE_TS = 1_767_225_600.0  # 2026-01-01T00:00:00Z
EXAMPLE_POLL_INTERVAL_S = 5.0
EXAMPLE_CUSTOMER = "acme-research"
EXAMPLE_GPU = GpuInventory(
    uuid="GPU-4e1c2a9f-7b3d-4c55-9a0e-2f6d81b3c7a4", index=3, node="node07", name="NVIDIA H100 80GB HBM3",
    mem_total_bytes=80 * 2**30, power_limit_w=700.0, slowdown_temp_c=87.0, shutdown_temp_c=92.0,
    mem_max_temp_c=95.0, site="fra1",
)
EXAMPLE_METRICS: dict[str, float] = {
    "util_gpu_pct": 97.0, "util_mem_pct": 61.0, "mem_used_bytes": 77 * 2**30, "mem_total_bytes": 80 * 2**30,
    "temp_c": 84.0, "mem_temp_c": 91.0, "power_w": 688.0, "power_limit_w": 700.0, "energy_j": 4.2e9,
    "sm_clock_mhz": 1755.0, "mem_clock_mhz": 2619.0, "fan_pct": 100.0, "pstate": 0.0,
    "pcie_tx_bytes_s": 1.2e9, "pcie_rx_bytes_s": 3.4e9, "pcie_link_gen": 4.0, "pcie_link_gen_max": 5.0,
    "pcie_link_width": 8.0, "pcie_link_width_max": 16.0,
    "ecc_corrected_volatile": 12.0, "ecc_uncorrected_volatile": 1.0, "ecc_corrected_aggregate": 40.0,
    "ecc_uncorrected_aggregate": 1.0, "remapped_rows_correctable": 2.0, "remapped_rows_uncorrectable": 1.0,
    "remapped_rows_pending": 1.0, "remapped_rows_failure": 0.0, "pcie_replay_count": 3.0,
    "throttle_reasons_mask": 0x40,  # hw_thermal_slowdown
}
EXAMPLE_XID = 48  # double-bit ECC error
EXAMPLE_SOURCE_ERROR = "node11:9400: connection refused"
EXAMPLE_NODE_BASELINE = 2  # the example node had two GPUs; one is left
EXAMPLE_DESCRIPTION = (
    f"{EXAMPLE_GPU.node} GPU {EXAMPLE_GPU.index} ({EXAMPLE_GPU.name}) at {EXAMPLE_METRICS['temp_c']:.0f} °C "
    f"(slowdown {EXAMPLE_GPU.slowdown_temp_c:.0f} °C), {EXAMPLE_METRICS['power_w']:.0f} W, "
    f"allocated to {EXAMPLE_CUSTOMER}, XID {EXAMPLE_XID}"
)


@dataclass(frozen=True)
class RulePreview:
    summary: str
    runbook: str


def example_sample() -> FleetSample:
    """The example GPU as one poll."""
    metrics = empty_metrics(1)
    for name, value in EXAMPLE_METRICS.items():
        metrics[name][0] = value
    return FleetSample(
        ts=EXAMPLE_TS, gpus=(EXAMPLE_GPU,), metrics=metrics, state=np.array([GpuState.OK], dtype=np.uint8),
        processes=((),), xid_events=(XidEvent(EXAMPLE_GPU.uuid, EXAMPLE_XID, EXAMPLE_TS),),
        errors=(EXAMPLE_SOURCE_ERROR,),
    )


def preview_rule(rule: Rule) -> RulePreview:
    """`rule`'s summary and runbook for the example subject (whether or not its conditions hold there)."""
    sample = example_sample()
    customers = {EXAMPLE_GPU.uuid: EXAMPLE_CUSTOMER}
    context = EvaluationContext(
        now=EXAMPLE_TS, poll_interval_s=EXAMPLE_POLL_INTERVAL_S, allocated=np.array([True]), customers=customers,
    )
    frame = SignalFrame(rule.target, sample, Inventory(sample.gpus), context, np.array([EXAMPLE_NODE_BASELINE]))
    values = template_values(rule, frame, 0, customers)
    return RulePreview(render_template(rule.summary, values), render_template(rule.runbook, values))

"""The rules every fleet gets on first start (stored in SQLite then, where operators tune them).

Written in the rules-file form, so that they go through exactly the checks an imported file does.
"""

from __future__ import annotations

from functools import lru_cache

from gpuops.core.alerts.rules import Rule, parse_rules

_GPU = "{node} GPU {gpu_index} ({model})"

BUILTIN_RULE_DICTS: tuple[dict, ...] = (
    {
        "name": "gpu_temp_near_slowdown", "severity": "warning", "for_s": 120,
        "conditions": [{"signal": "temp_c", "op": ">=", "ref": "slowdown_temp_c", "offset": -5}],
        "clear": [{"signal": "temp_c", "op": "<", "ref": "slowdown_temp_c", "offset": -7}],
        "summary": _GPU + ": {value:.0f} °C, within 5 °C of its slowdown threshold {limit:.0f} °C",
        "runbook": "Check the node's airflow and fans, inlet temperature and neighbours in the rack.",
    },
    {
        "name": "gpu_temp_at_slowdown", "severity": "critical",
        "conditions": [{"signal": "temp_c", "op": ">=", "ref": "slowdown_temp_c"}],
        "clear": [{"signal": "temp_c", "op": "<", "ref": "slowdown_temp_c", "offset": -2}],
        "summary": _GPU + ": {value:.0f} °C, at or over its slowdown threshold {threshold:.0f} °C",
        "runbook": "The GPU is slowing itself down. Check cooling now; drain the node if it keeps climbing.",
    },
    {
        "name": "hbm_temp_near_max", "severity": "warning", "for_s": 120,
        "conditions": [{"signal": "mem_temp_c", "op": ">=", "ref": "mem_max_temp_c", "offset": -5}],
        "clear": [{"signal": "mem_temp_c", "op": "<", "ref": "mem_max_temp_c", "offset": -7}],
        "summary": _GPU + ": HBM {value:.0f} °C, within 5 °C of its limit {limit:.0f} °C",
        "runbook": "Check the node's airflow; HBM runs hot under memory-bound jobs.",
    },
    {
        "name": "hbm_temp_at_max", "severity": "critical",
        "conditions": [{"signal": "mem_temp_c", "op": ">=", "ref": "mem_max_temp_c"}],
        "clear": [{"signal": "mem_temp_c", "op": "<", "ref": "mem_max_temp_c", "offset": -2}],
        "summary": _GPU + ": HBM {value:.0f} °C, at or over its limit {threshold:.0f} °C",
        "runbook": "Memory is throttling. Check cooling now; drain the node if it keeps climbing.",
    },
    {
        "name": "ecc_uncorrectable", "severity": "critical",
        "conditions": [{"signal": "ecc_uncorrected_volatile", "op": ">", "value": 0}],
        "summary": _GPU + ": {value:.0f} uncorrectable ECC error(s) since the driver loaded",
        "runbook": "Drain the GPU and reset it; look for XID 48/63/64 and row-remap state; RMA if it repeats.",
    },
    {
        "name": "row_remap_pending", "severity": "warning",
        "conditions": [{"signal": "remapped_rows_pending", "op": ">", "value": 0}],
        "summary": _GPU + ": a memory row remap is pending (reset needed)",
        "runbook": "Drain the GPU and reset it so the remap takes effect.",
    },
    {
        "name": "row_remap_failure", "severity": "critical",
        "conditions": [{"signal": "remapped_rows_failure", "op": ">", "value": 0}],
        "summary": _GPU + ": memory row remapping failed (RMA)",
        "runbook": "Take the GPU out of service and open an RMA.",
    },
    {
        "name": "xid_critical", "severity": "critical", "keep_firing_for_s": 3600,
        "conditions": [{"signal": "xid_level", "op": ">=", "value": 3}],
        "summary": _GPU + ": XID {xid} {xid_description}: {xid_action}",
        "runbook": "Catalogue action: {xid_action_text}",
    },
    {
        "name": "xid_warning", "severity": "warning", "keep_firing_for_s": 3600,
        "conditions": [{"signal": "xid_level", "op": "==", "value": 2}],
        "summary": _GPU + ": XID {xid} {xid_description}: {xid_action}",
        "runbook": "Catalogue action: {xid_action_text}",
    },
    {
        "name": "gpu_lost", "severity": "critical",
        "conditions": [{"signal": "state_lost", "op": "==", "value": 1}],
        "summary": _GPU + ": GPU lost (fell off the bus)",
        "runbook": "Restart the node (bare metal); check seating and power if it happens again.",
    },
    {
        "name": "node_gpus_missing", "severity": "critical", "target": "node",
        "conditions": [{"signal": "gpus_missing", "op": ">", "value": 0}],
        "summary": "{node}: {value:.0f} GPU(s) fewer than before",
        "runbook": "A GPU no longer enumerates: check `nvidia-smi -L` and the kernel log; restart the node.",
    },
    {
        "name": "hw_throttle", "severity": "warning", "for_s": 60,
        "conditions": [{"signal": "throttle_hw", "op": "==", "value": 1}],
        "summary": _GPU + ": hardware slowdown, thermal or power-brake throttling",
        "runbook": "Check power supplies, cooling and the node's BMC event log.",
    },
    {
        "name": "power_at_limit", "severity": "info", "for_s": 600,
        "conditions": [{"signal": "power_w", "op": ">=", "ref": "power_limit_w", "scale": 0.98}],
        "summary": _GPU + ": drawing {value:.0f} W, at least 98% of its limit for 10 min",
        "runbook": "Usually a busy job; worth knowing when the rack's power budget is tight.",
    },
    {
        "name": "memory_nearly_full", "severity": "info",
        "conditions": [{"signal": "mem_used_pct", "op": ">=", "value": 95}],
        "clear": [{"signal": "mem_used_pct", "op": "<", "value": 90}],
        "summary": _GPU + ": memory {value:.0f}% used",
        "runbook": "Jobs near the memory limit risk out-of-memory failures.",
    },
    {
        "name": "pcie_width_degraded", "severity": "warning", "for_s": 300,
        "conditions": [{"signal": "pcie_link_width", "op": "<", "ref": "pcie_link_width_max"}],
        "summary": _GPU + ": PCIe link x{value:.0f}, below its maximum x{threshold:.0f}",
        "runbook": "Reseat the GPU or riser; check the slot and cables.",
    },
    {
        # Idle GPUs lower their PCIe generation to save power; only a busy one below max is wrong.
        "name": "pcie_gen_degraded", "severity": "warning", "for_s": 300,
        "conditions": [
            {"signal": "pcie_link_gen", "op": "<", "ref": "pcie_link_gen_max"},
            {"signal": "util_gpu_pct", "op": ">=", "value": 50},
        ],
        "summary": _GPU + ": busy at PCIe gen {value:.0f}, below its maximum gen {threshold:.0f}",
        "runbook": "Check BIOS PCIe settings, risers and retimers; reseat the GPU.",
    },
    {
        "name": "node_telemetry_stale", "severity": "warning", "target": "node",
        "conditions": [{"signal": "node_stale", "op": "==", "value": 1}],
        "summary": "{node}: telemetry is stale (its exporter does not answer)",
        "runbook": "Check that the node is up and its exporter (dcgm-exporter / gpuops agent) runs.",
    },
    {
        "name": "source_errors", "severity": "warning", "target": "source", "for_s": 60,
        "conditions": [{"signal": "source_errors", "op": ">=", "value": 1}],
        "summary": "telemetry source: {errors}",
        "runbook": "Part of the fleet is not being read; see the error for which target.",
    },
    {
        # The whole source failing (driver gone, every exporter unreachable): no data at all.
        "name": "source_down", "severity": "critical", "target": "source", "for_s": 30,
        "conditions": [{"signal": "source_down", "op": "==", "value": 1}],
        "summary": "telemetry source down: {errors}",
        "runbook": "Nothing is being read: check the NVML driver, or the network path to the exporters.",
    },
    {
        "name": "gpu_data_stale", "severity": "warning",
        "conditions": [{"signal": "data_age_s", "op": ">", "ref": "poll_interval_s", "scale": 3}],
        "summary": _GPU + ": no fresh data for {value:.0f} s",
        "runbook": "The GPU's readings are old: check its node and exporter.",
    },
    {
        "name": "allocated_idle", "severity": "info", "for_s": 1800,
        "conditions": [
            {"signal": "allocated", "op": "==", "value": 1},
            {"signal": "util_gpu_pct", "op": "<", "value": 5},
        ],
        "summary": _GPU + ": allocated to {customer} but idle for 30 min",
        "runbook": "Customer waste: tell the account owner, or reclaim the GPU.",
    },
    {
        "name": "busy_unallocated", "severity": "warning", "for_s": 300,
        "conditions": [
            # The first condition's value is the summary's {value}.
            {"signal": "util_gpu_pct", "op": ">=", "value": 10},
            {"signal": "allocated", "op": "==", "value": 0},
        ],
        "summary": _GPU + ": {value:.0f}% busy but not allocated to anyone",
        "runbook": "Someone runs work outside any allocation: find the process and its owner.",
    },
)


@lru_cache(maxsize=1)
def builtin_rules() -> tuple[Rule, ...]:
    return parse_rules(list(BUILTIN_RULE_DICTS), "built-in rules")


def rule_origin(rule: Rule) -> str:
    """"built-in", "built-in, edited" (same name, another definition) or "custom": whether
    gpuops shipped the rule, and whether an operator tuned it since."""
    shipped = {r.name: r for r in builtin_rules()}.get(rule.name)
    if shipped is None:
        return "custom"
    return "built-in" if shipped == rule else "built-in, edited"

"""Customers, contracts and GPU allocations: who holds which GPU, what it costs, and whether it is used.

`repository.AllocationRepository` is the one door for reading and changing them (validation,
audit, read-only); `accounting`, `capacity` and `busy` read what it holds.

Importing this package registers the rollup listener that keeps accounting's idle summaries as
the history's 1-minute rollups are made. The store's schema imports `allocations.schema`, so every
process that opens a history (the collector included) has it registered, while the store itself
knows nothing about accounting.
"""

from gpuops.core.allocations.usage_history import keep_idle_summaries
from gpuops.core.store.retention import add_rollup_listener

add_rollup_listener(keep_idle_summaries)

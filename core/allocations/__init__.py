"""Customers, contracts and GPU allocations: who holds which GPU, what it costs, and whether it is used.

`repository.AllocationRepository` is the one door for reading and changing them (validation,
audit, read-only); `accounting`, `capacity` and `busy` read what it holds.
"""

"""The allocation model: customers hold contracts, contracts hold GPUs over time.

Times are UTC epoch milliseconds, like the rest of the history database. An end of None means
open-ended. An allocation given without an end runs until its contract ends; it is stored as
open-ended only when the contract itself is open-ended (see `repository.AllocationRepository.allocate`).
Intervals are half-open: [start_ms, end_ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

#: Stands for "no end" wherever an end must be compared (year 292 million, far beyond any contract).
OPEN_END_MS = 2**62


class ContractType(str, Enum):
    RESERVED = "reserved"
    ON_DEMAND = "on_demand"
    SPOT = "spot"
    COMPUTE_FOR_EQUITY = "compute_for_equity"


class ContractStatus(str, Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ENDED = "ended"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Customer:
    id: int
    name: str
    contact: str = ""
    notes: str = ""


@dataclass(frozen=True, slots=True)
class Contract:
    id: int
    customer_id: int
    name: str
    type: ContractType
    gpu_model: str
    gpu_count: int
    start_ms: int
    end_ms: int | None
    price_per_gpu_hour: float
    status: ContractStatus = ContractStatus.ACTIVE
    equity_terms: str | None = None
    compute_value_credited: float | None = None

    @property
    def end_or_open_ms(self) -> int:
        return OPEN_END_MS if self.end_ms is None else self.end_ms

    def covers(self, start_ms: int, end_ms: int | None) -> bool:
        """Whether [start_ms, end_ms) lies within the contract's dates."""
        return self.start_ms <= start_ms and (OPEN_END_MS if end_ms is None else end_ms) <= self.end_or_open_ms


@dataclass(frozen=True, slots=True)
class Allocation:
    id: int
    contract_id: int
    gpu_uuid: str
    start_ms: int
    end_ms: int | None

    @property
    def end_or_open_ms(self) -> int:
        return OPEN_END_MS if self.end_ms is None else self.end_ms

    def overlaps(self, start_ms: int, end_ms: int | None) -> bool:
        return self.start_ms < (OPEN_END_MS if end_ms is None else end_ms) and start_ms < self.end_or_open_ms

    def active_at(self, ts_ms: int) -> bool:
        return self.start_ms <= ts_ms < self.end_or_open_ms


def gpu_model_of(gpu_name: str) -> str:
    """The short model a contract names ("H100") from the name NVML reports
    ("NVIDIA H100 80GB HBM3"): the first word after the vendor, up to a dash."""
    words = gpu_name.split()
    if words and words[0].upper() == "NVIDIA":
        words = words[1:]
    return words[0].split("-")[0].upper() if words else gpu_name.upper()

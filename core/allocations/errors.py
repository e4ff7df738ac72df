"""Why a change to customers, contracts or allocations was refused, in words a GUI can show as is."""

from __future__ import annotations

from dataclasses import dataclass


class AllocationError(Exception):
    """A change was refused; nothing was written."""


class ReadOnlyError(AllocationError):
    """The repository was opened read-only (gpuops --read-only)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a change is invalid. `row` is the CSV row number (1 = first data row) on import."""

    message: str
    row: int | None = None

    def __str__(self) -> str:
        return self.message if self.row is None else f"row {self.row}: {self.message}"


class ValidationError(AllocationError):
    """Every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            "; ".join(str(p) for p in problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        )


@dataclass(frozen=True, slots=True)
class UnhealthyGpu:
    uuid: str
    reason: str


class NeedsConfirmation(AllocationError):
    """Some GPUs asked for are lost or faulty: repeat with confirm=True to allocate them anyway."""

    def __init__(self, gpus: list[UnhealthyGpu]) -> None:
        self.gpus = tuple(gpus)
        listed = ", ".join(f"{g.uuid} ({g.reason})" for g in gpus)
        super().__init__(f"{len(gpus)} GPU(s) are lost or faulty: {listed}; confirm to allocate them anyway")


@dataclass(frozen=True, slots=True)
class OutsideProduction:
    """A GPU asked for that is not in production: its lifecycle state and why it is there."""

    uuid: str
    state: str
    why: str
    row: int | None = None

    def __str__(self) -> str:
        where = "" if self.row is None else f"row {self.row}: "
        return f"{where}{self.uuid} ({self.state}: {self.why})"


class NotInProduction(AllocationError):
    """Some GPUs asked for are outside production (draining, in repair, ...): only an override with
    a reason, recorded in the audit log, allocates them."""

    def __init__(self, gpus: list[OutsideProduction]) -> None:
        self.gpus = tuple(gpus)
        listed = ", ".join(str(g) for g in gpus[:5]) + (f" (and {len(gpus) - 5} more)" if len(gpus) > 5 else "")
        super().__init__(f"{len(gpus)} GPU(s) are not in production: {listed}; allocating them needs an override reason")

"""A history database with a known inventory, for the allocation tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gpuops.core.allocations.repository import AllocationRepository
from gpuops.core.store.writer import HistoryWriter
from gpuops.core.telemetry import GpuInventory, GpuState
from tests.samples import make_inventory, make_sample

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def mixed_inventory(n_h100: int = 8, n_a100: int = 8) -> tuple[GpuInventory, ...]:
    """H100s first, then A100s, with distinct UUIDs."""
    h100 = make_inventory(n_h100)
    a100 = tuple(
        replace(g, uuid=f"GPU-a100{i:04x}-0000-4000-8000-{i:012x}", node=f"anode{i // 8:02d}", name="NVIDIA A100-SXM4-80GB")
        for i, g in enumerate(make_inventory(n_a100))
    )
    return h100 + a100


def make_history(path: Path, gpus: tuple[GpuInventory, ...], lost: tuple[int, ...] = ()) -> Path:
    """A history that has seen `gpus` once, with the GPUs at positions `lost` lost."""
    sample = make_sample(gpus=gpus, ts=T0_MS / 1000 - 60, states={i: GpuState.LOST for i in lost})
    with HistoryWriter(path) as writer:
        writer.write(sample)
    return path


def open_repo(path: Path, **kwargs) -> AllocationRepository:
    return AllocationRepository.open(path, user="tester", **kwargs)

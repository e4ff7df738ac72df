"""Shared by the command-line tests (a pytest plugin, see conftest.py): a small history holding
one customer's book, for commands that read or write customers, contracts and allocations."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuops.core.allocations.model import ContractType
from tests.allocations_support import DAY_MS, T0_MS, make_history, mixed_inventory, open_repo

#: The fleet of `book`'s history: two H100 and two A100.
GPUS = mixed_inventory(2, 2)


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """A history (not the default one) holding customer Acme with a contract and an allocation."""
    path = make_history(tmp_path / "book.sqlite", GPUS)
    repo = open_repo(path)
    acme = repo.add_customer("Acme")
    contract = repo.add_contract(acme.id, "train", ContractType.RESERVED, "H100", 1, T0_MS, T0_MS + 30 * DAY_MS, 2.5)
    repo.allocate(contract.id, [GPUS[0].uuid], T0_MS)
    repo.close()
    return path

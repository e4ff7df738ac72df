"""Colouring the fleet grid (and the allocation timeline) by customer.

A categorical palette stays readable only with a few colours, so the customers holding the most
GPUs get one each (`palette.CUSTOMER_RGB`, colour-blind safe) and the rest share "other
customers". Unallocated GPUs take the no-data grey; lost GPUs keep their colour and X.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from PySide6.QtGui import QColor

from gpuops.gui.common import palette

#: Colour-by key of the grid for customers (next to the metric keys and "health").
CUSTOMER_KEY = "customer"
UNALLOCATED_LABEL = "unallocated"
OTHER_LABEL = "other customers"


def customer_slots(held: Iterable[str | None]) -> dict[str, int]:
    """Customer -> colour slot for the customers holding the most GPUs (ties by name)."""
    counts = Counter(c for c in held if c is not None)
    ranked = sorted(counts, key=lambda name: (-counts[name], name))
    return {name: slot for slot, name in enumerate(ranked[: len(palette.CUSTOMER_RGB)])}


def customer_color(slots: dict[str, int], customer: str | None) -> QColor:
    if customer is None:
        return QColor(*palette.NO_DATA_RGB)
    slot = slots.get(customer)
    return QColor(*(palette.OTHER_CUSTOMERS_RGB if slot is None else palette.CUSTOMER_RGB[slot]))


def encode_customers(held: Sequence[str | None] | None, lost: np.ndarray) -> np.ndarray:
    """Grid codes: one per GPU, from who holds it (None: unallocated; `held` None: nobody known)."""
    n = len(lost)
    codes = np.full(n, palette.NO_DATA, dtype=np.uint8)
    if held is not None:
        slots = customer_slots(held)
        for i, customer in enumerate(held):
            if customer is not None:
                slot = slots.get(customer)
                codes[i] = palette.OTHER_CUSTOMERS if slot is None else palette.CUSTOMER_BASE + slot
    codes[lost] = palette.LOST
    return codes


def legend_swatches(held: Sequence[str | None] | None) -> tuple[tuple[str, QColor], ...]:
    """(label, colour) for the legend: each coloured customer, then others, unallocated, lost."""
    held = held or ()
    slots = customer_slots(held)
    swatches = [(name, customer_color(slots, name)) for name in sorted(slots, key=slots.__getitem__)]
    if any(c is not None and c not in slots for c in held):
        swatches.append((OTHER_LABEL, QColor(*palette.OTHER_CUSTOMERS_RGB)))
    swatches.append((UNALLOCATED_LABEL, QColor(*palette.NO_DATA_RGB)))
    swatches.append(("lost", QColor(*palette.LOST_RGB)))
    return tuple(swatches)

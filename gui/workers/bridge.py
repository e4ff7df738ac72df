"""The one way a worker thread hands something to the GUI thread.

A `Bridge` is made on the GUI thread around a callback; `send(value)`, from any thread, queues
the value and the callback runs with it on the GUI thread, in the order sent. The poller, the
store workers (alerts, customers), the history loader and recorder, and the snapshot exporter
all use it, so "which thread runs this" has one answer.

A bridge has no Qt parent on purpose: the worker thread and its owner both hold it, so it
outlives whichever ends first (a worker stuck in a driver call may still send after its owner
closed; `close()` makes the late values go nowhere).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from PySide6.QtCore import QObject, Signal, Slot

T = TypeVar("T")


class Bridge(QObject, Generic[T]):
    """See the module docstring. Create on the GUI thread."""

    _carried = Signal(object)

    def __init__(self, deliver: Callable[[T], None]) -> None:
        super().__init__()
        self._deliver: Callable[[T], None] | None = deliver
        # The slot of an object living on the GUI thread: an emit from a worker thread posts an
        # event there (Qt's queued connection).
        self._carried.connect(self._arrived)

    def send(self, value: T) -> None:
        """Queue `value` for the callback (any thread; never blocks)."""
        self._carried.emit(value)

    def close(self) -> None:
        """Values sent or still queued from now on are dropped (GUI thread)."""
        self._deliver = None

    @Slot(object)
    def _arrived(self, value: T) -> None:
        if self._deliver is not None:
            self._deliver(value)

"""Capture NVML XID errors as they happen, so a fault between two polls is never missed.

NVML only reports XIDs through an event set that somebody waits on. A daemon thread waits with a
short timeout (so it notices `close()` quickly, even on a slow driver) and queues what arrives;
the poll drains the queue without blocking. The thread shares no lock with the poll.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections import deque
from typing import Any

import pynvml

from gpuops.core.logonce import LoggedOnce
from gpuops.core.telemetry import XidEvent

log = logging.getLogger("gpuops.nvml")

#: How long one nvmlEventSetWait_v2 may block: bounds how long close() waits for the thread.
WAIT_TIMEOUT_MS = 200
#: Pause after an unexpected wait error (e.g. a watched GPU fell off the bus), instead of spinning.
RETRY_AFTER_ERROR_S = 1.0
#: XIDs kept between two polls; beyond this the oldest are dropped (a storm, not information).
MAX_QUEUED = 10_000


def _address(handle: Any) -> int | None:
    return ctypes.cast(handle, ctypes.c_void_p).value


class XidWatcher:
    """Owns one NVML event set and the thread waiting on it. Create after nvmlInit."""

    def __init__(self) -> None:
        self._event_set = pynvml.nvmlEventSetCreate()
        self._uuid_by_handle: dict[int | None, str] = {}
        self._events: deque[XidEvent] = deque(maxlen=MAX_QUEUED)
        self._stop = threading.Event()
        self._wait_failures = LoggedOnce(log)
        self._thread = threading.Thread(target=self._run, name="gpuops-nvml-xid", daemon=True)
        self._thread.start()

    def watch(self, handle: Any, uuid: str) -> bool:
        """Start reporting XIDs of one GPU; False (logged) if this GPU cannot report them now."""
        try:
            pynvml.nvmlDeviceRegisterEvents(handle, pynvml.nvmlEventTypeXidCriticalError, self._event_set)
        except pynvml.NVMLError as exc:
            log.warning("XID events unavailable for GPU %s: %s", uuid, exc)
            return False
        self._uuid_by_handle[_address(handle)] = uuid
        return True

    def drain(self) -> tuple[XidEvent, ...]:
        """Every XID queued since the last drain, oldest first; never blocks."""
        events = []
        while self._events:
            events.append(self._events.popleft())
        return tuple(events)

    def close(self, timeout_s: float) -> bool:
        """Stop the thread and free the event set. False if the thread is still stuck inside
        NVML after `timeout_s`: then the set is left alone, since freeing it under a waiter is unsafe."""
        self._stop.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            return False
        try:
            pynvml.nvmlEventSetFree(self._event_set)
        except pynvml.NVMLError as exc:
            log.warning("could not free the NVML event set: %s", exc)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = pynvml.nvmlEventSetWait_v2(self._event_set, WAIT_TIMEOUT_MS)
            except pynvml.NVMLError_Timeout:
                continue
            except pynvml.NVMLError as exc:
                message = "waiting for XID events failed (%s); retrying every %.0f s"
                self._wait_failures.log(exc.value, message, exc, RETRY_AFTER_ERROR_S)
                self._stop.wait(RETRY_AFTER_ERROR_S)
                continue
            if not data.eventType & pynvml.nvmlEventTypeXidCriticalError:
                continue
            uuid = self._uuid_by_handle.get(_address(data.device))
            if uuid is None:
                log.warning("XID %d from a GPU this source does not know; ignored", data.eventData)
                continue
            self._events.append(XidEvent(uuid=uuid, code=int(data.eventData), ts=time.time()))

"""Poll a source on a background thread, so that a scrape only reads the latest snapshot.

A slow or hung driver then delays the next sample, never the `/metrics` answer. The poller
also counts XID events across polls: sources report each event once (in the poll that saw
it), and a counter is the only shape that survives Prometheus scraping less often than we
poll without losing repeats.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from gpuops.core.logonce import LastingProblem
from gpuops.core.sources.base import SourceError, TelemetrySource
from gpuops.core.telemetry import FleetSample

log = logging.getLogger("gpuops.agent")

DEFAULT_INTERVAL_S = 1.0
# A poll running longer than this many intervals (and at least HUNG_POLL_MIN_S) means the
# source has stopped answering: /health says so although the last good sample is still served.
HUNG_POLL_INTERVALS = 3.0
HUNG_POLL_MIN_S = 5.0


@dataclass(frozen=True)
class AgentSnapshot:
    """What one scrape renders. `sample` is None before the first good poll and after a failed one."""

    sample: FleetSample | None
    xid_counts: Mapping[tuple[str, int], int] = field(default_factory=dict)
    last_xid: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None
    polls: int = 0


class SamplePoller:
    """Owns the source: polls it every `interval_s` on one daemon thread until `stop()`."""

    def __init__(self, source: TelemetrySource, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        if not interval_s > 0:
            raise ValueError(f"poll interval must be positive, got {interval_s!r}")
        self._source = source
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._first_poll = threading.Event()
        self._lock = threading.Lock()
        self._xid_counts: Counter[tuple[str, int]] = Counter()
        self._last_xid: dict[str, int] = {}
        self._snapshot = AgentSnapshot(sample=None)
        self._poll_started: float | None = None  # time.monotonic() of the poll in progress
        self._source_down = LastingProblem(log, prefix="source poll ")
        self._hung_after_s = max(HUNG_POLL_INTERVALS * interval_s, HUNG_POLL_MIN_S)
        self._thread = threading.Thread(target=self._run, name="gpuops-agent-poll", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def snapshot(self) -> AgentSnapshot:
        with self._lock:
            return self._snapshot

    def problem(self) -> str | None:
        """Why the source is not answering, or None when its last poll succeeded and none is stuck."""
        with self._lock:
            snapshot, started = self._snapshot, self._poll_started
        if started is not None and (running_s := time.monotonic() - started) > self._hung_after_s:
            return f"the source has not answered for {running_s:.0f} s"
        if snapshot.polls == 0:
            return "no poll has finished yet"
        if snapshot.sample is None:
            return f"the last poll failed: {snapshot.error}"
        return None

    def wait_first_poll(self, timeout_s: float) -> bool:
        """True once one poll has finished (good or bad) within `timeout_s`."""
        return self._first_poll.wait(timeout_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop polling and close the source; a poll stuck in the driver is abandoned after `timeout_s`."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("source poll still running after %.1f s; leaving it behind", timeout_s)
            return
        self._source.close()

    def poll_once(self) -> AgentSnapshot:
        """One poll, folded into the snapshot. The thread calls this; tests may too (not concurrently)."""
        polls = self._snapshot.polls + 1
        with self._lock:
            self._poll_started = time.monotonic()
        try:
            sample = self._source.poll()
        except SourceError as exc:
            self._source_down.occur(f"failed: {exc}")
            snapshot = AgentSnapshot(
                sample=None,
                xid_counts=MappingProxyType(dict(self._xid_counts)),
                last_xid=MappingProxyType(dict(self._last_xid)),
                error=str(exc),
                polls=polls,
            )
        else:
            self._source_down.resolve("works again")
            for event in sample.xid_events:
                self._xid_counts[(event.uuid, event.code)] += 1
                self._last_xid[event.uuid] = event.code
            snapshot = AgentSnapshot(
                sample=sample,
                xid_counts=MappingProxyType(dict(self._xid_counts)),
                last_xid=MappingProxyType(dict(self._last_xid)),
                polls=polls,
            )
        with self._lock:
            self._snapshot = snapshot
            self._poll_started = None
        self._first_poll.set()
        return snapshot

    def _run(self) -> None:
        next_due = time.monotonic()
        while not self._stop.is_set():
            self.poll_once()
            next_due += self._interval_s
            now = time.monotonic()
            if next_due < now:  # a slow poll: skip the missed beats rather than bursting
                next_due = now + self._interval_s
            self._stop.wait(next_due - now)

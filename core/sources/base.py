"""The one interface every telemetry source implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing it costs numpy: `gpuops --help` and the parsers need only SourceError
    from gpuops.core.telemetry import FleetSample


class SourceError(Exception):
    """An environment failure a person can act on (driver missing, endpoint down, ...).

    The message is one clear line naming the cause; it is shown as-is in the window,
    the status bar and on the command line.
    """


class TelemetrySource(ABC):
    """A fleet of GPUs that can be polled.

    Opening happens in the constructor (and raises `SourceError`); `poll()` may be called
    from a worker thread, never concurrently with itself.
    """

    #: Short name for the status bar and `status --json`: "nvml", "demo:64", ...
    name: str = ""
    #: True for the simulated fleet, so every view can say so plainly.
    simulated: bool = False
    #: Why this source was chosen when it was not asked for by name (e.g. by `auto`).
    notice: str | None = None

    @abstractmethod
    def poll(self) -> FleetSample:
        """Read every GPU once. Per-GPU failures are in the sample (state, NaN);
        a failure of the whole source raises `SourceError`."""

    def interrupt(self) -> None:  # noqa: B027 - an optional hook: by default there is nothing to interrupt
        """The process is stopping (SIGTERM): a poll in progress returns as soon as it can with
        what it has, and so does any later one. Safe to call from a signal handler (it only sets
        a flag). Sources whose polls are short anyway need not override it."""

    def close(self) -> None:  # noqa: B027 - an optional hook: by default there is nothing to release
        """Release driver handles, threads and sockets. Safe to call twice."""

    def __enter__(self) -> TelemetrySource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

"""One writer per history: an exclusive `flock` on the sidecar "<db>.collector.lock".

Whoever writes (the headless collector, or the console when no collector runs) holds the lock for
as long as it writes; readers never take it. The lock dies with its process, so a killed collector
never leaves a stale lock behind. The holder's pid is written into the file for the messages.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from gpuops.core.store.errors import CollectorRunning, StoreError
from gpuops.core.store.paths import lock_path

# A probe (`collector_running`) holds the lock for microseconds; a writer starting at that very moment
# retries briefly instead of reporting a collector that is not there.
_ACQUIRE_ATTEMPTS = 5
_ACQUIRE_PAUSE_S = 0.02


def _open_lock_file(db_path: Path) -> int:
    path = lock_path(db_path)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot open the lock file {path}: {exc.strerror}") from None


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


class WriterLock:
    """Held while a process writes to the history at `db_path`; raises CollectorRunning if another
    process holds it. Use as a context manager or call `release()`."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self._fd: int | None = _open_lock_file(self.db_path)
        for attempt in range(_ACQUIRE_ATTEMPTS):
            if _try_lock(self._fd):
                break
            if attempt < _ACQUIRE_ATTEMPTS - 1:
                time.sleep(_ACQUIRE_PAUSE_S)
        else:
            pid = _read_pid(self._fd)
            os.close(self._fd)
            self._fd = None
            holder = f" (pid {pid})" if pid else ""
            raise CollectorRunning(f"another gpuops collector{holder} is already writing to {self.db_path}")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode("ascii"), 0)

    def release(self) -> None:
        """Give the lock up; safe to call twice. The file stays (removing it would race a new holder)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "WriterLock":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def collector_running(db_path: Path) -> bool:
    """True while another process writes to `db_path` (a `gpuops collect`, or a console collecting
    itself); when False the console collects itself. Never blocks."""
    path = lock_path(Path(db_path))
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StoreError(f"cannot read the lock file {path}: {exc.strerror}") from None
    try:
        return not _try_lock(fd)
    finally:
        os.close(fd)

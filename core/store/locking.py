"""One writer per history file: an exclusive `flock` on the sidecar "<db>.collector.lock" beside
the real file (symlinks resolved), so every name of a history names one lock; a file with more than
one hard link is refused before locking (identity.py says why).

Whoever writes (the headless collector, or the console when no collector runs) holds the lock for
as long as it writes; readers never take it. The lock dies with its process, so a killed collector
never leaves a stale lock behind. The holder's pid is written into the file for the messages.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from pathlib import Path

from gpuops.core.store.errors import CollectorRunning, StoreError, failure_cause
from gpuops.core.store.identity import stat_history
from gpuops.core.store.paths import FILE_MODE, lock_path, make_private_dirs

# A probe (`collector_running`) holds the lock for microseconds; a writer starting at that very moment
# retries briefly instead of reporting a collector that is not there.
_ACQUIRE_ATTEMPTS = 5
_ACQUIRE_PAUSE_S = 0.02


_LOCK_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def _checked(fd: int, path: Path) -> int:
    """`fd` if it is a regular file; a lock path that is a FIFO or device is refused, not used."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StoreError(f"the lock file {path} is not a regular file; remove it")
    return fd


def _open_lock_file(db_path: Path) -> int:
    """Open (creating it 0600 if missing) the lock file of the history at `db_path`."""
    stat_history(db_path)  # refuse a FIFO, device, directory or hard-linked file before creating anything
    path = lock_path(db_path)
    try:
        make_private_dirs(path.parent)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _LOCK_FLAGS, FILE_MODE)
        except FileExistsError:
            return _checked(os.open(path, os.O_RDWR | _LOCK_FLAGS), path)
        os.fchmod(fd, FILE_MODE)
        return fd
    except OSError as exc:
        raise StoreError(f"cannot open the lock file {path}: {failure_cause(exc, path)}") from None


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
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError:
            pass  # the pid only improves the message a second writer gets (a full disk refuses it)

    def release(self) -> None:
        """Give the lock up; safe to call twice. The file stays (removing it would race a new holder)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def collector_running(db_path: Path) -> bool:
    """True while another process writes to `db_path` (a `gpuops collect`, or a console collecting
    itself); when False the console collects itself. Never blocks."""
    path = lock_path(Path(db_path))
    try:
        fd = _checked(os.open(path, os.O_RDONLY | _LOCK_FLAGS), path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StoreError(f"cannot read the lock file {path}: {exc.strerror}") from None
    try:
        return not _try_lock(fd)
    finally:
        os.close(fd)

"""Where the history lives, and creating its files and folders so that only their owner can read them,
whatever the umask (cron and some containers run with 000)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from gpuops.core.store.errors import StoreError, failure_cause

DB_FILE_NAME = "history.sqlite"
FILE_MODE = 0o600
DIR_MODE = 0o700


def default_db_path() -> Path:
    """The per-user history file: e.g. ~/.local/share/gpuops/history.sqlite on Linux."""
    return platformdirs.user_data_path("gpuops") / DB_FILE_NAME


def lock_path(db_path: Path) -> Path:
    """The sidecar file a writer holds an exclusive lock on (see `locking.py`): beside the real file,
    so that every symlink to one history names the same lock."""
    real = Path(os.path.realpath(db_path))
    return real.with_name(real.name + ".collector.lock")


def make_private_dirs(folder: Path) -> None:
    """Create `folder` and its missing parents, each 0700 (Path.mkdir(parents=True) would give the
    parents the umask's mode). Folders that exist are left as they are."""
    missing: list[Path] = []
    current = Path(folder)
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            continue  # another process made it meanwhile: not ours to change
        os.chmod(directory, DIR_MODE)


def create_private_file(path: Path) -> bool:
    """Create `path` empty with mode 0600 (and its missing folders 0700), so that SQLite, which gives
    its -wal and -shm files the database's mode, keeps them private too. Returns False when a file
    is already there: it is left with its own mode, since gpuops only sets the mode of what it made."""
    try:
        make_private_dirs(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return False
    except OSError as exc:
        raise StoreError(f"cannot create the history file {path}: {failure_cause(exc, path)}") from None
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True

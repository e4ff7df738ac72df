"""Where the history lives, and creating it so that only its owner can read it."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from gpuops.core.store.errors import StoreError

DB_FILE_NAME = "history.sqlite"


def default_db_path() -> Path:
    """The per-user history file: e.g. ~/.local/share/gpuops/history.sqlite on Linux."""
    return platformdirs.user_data_path("gpuops") / DB_FILE_NAME


def lock_path(db_path: Path) -> Path:
    """The sidecar file a writer holds an exclusive lock on (see `locking.py`)."""
    return db_path.with_name(db_path.name + ".collector.lock")


def create_private_file(path: Path) -> None:
    """Create an empty file with mode 0600 (and missing parent directories with 0700), so that
    SQLite, which gives its -wal and -shm files the database's mode, keeps them private too.
    An existing empty file is made private instead."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StoreError(f"cannot create the history file {path}: {exc.strerror}") from None

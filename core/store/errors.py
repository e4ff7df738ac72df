"""Why the history database cannot be used, each as one clear line a person can act on."""

from __future__ import annotations

import os
from pathlib import Path


class StoreError(Exception):
    """The history database cannot be opened or used; the message names the file and the cause."""


class NotAGpuopsDatabase(StoreError):
    """The file exists but is not a gpuops history (garbage, or another application's SQLite file).
    It is left exactly as it was."""


class DamagedDatabase(StoreError):
    """The file is a gpuops history but cannot be read (truncated or corrupt). It is left as it was."""


class DatabaseTooNew(StoreError):
    """The file was written by a newer gpuops whose schema this version does not know."""


class NoHistory(StoreError):
    """Reading was asked for but there is no history file at the path."""


class CollectorRunning(StoreError):
    """Another process already writes to this database."""


def failure_cause(exc: BaseException, path: Path) -> str:
    """Why SQLite could not open or write `path`, in plain words: a full disk and a read-only file
    system are named as such (SQLite reports them as IOERR or CANTOPEN too), never as damage."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    try:
        fs = os.statvfs(Path(path).parent)
    except OSError:
        fs = None
    if fs is not None and fs.f_flag & os.ST_RDONLY:
        return "the file system is read-only"
    if name.startswith("SQLITE_FULL") or (fs is not None and fs.f_bavail == 0 and not name.startswith("SQLITE_BUSY")):
        return "the disk is full"
    if name.startswith("SQLITE_READONLY"):
        return "the file or its folder is read-only for this user"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)

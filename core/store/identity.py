"""Is the file at the database path ours? Decided from its header bytes alone, before SQLite opens
it, because opening can already write (a hot journal is rolled back, a WAL is checkpointed on close).

A gpuops history is an SQLite file whose header carries our `PRAGMA application_id`. Anything else
at the path (garbage, another application's SQLite file, a file cut short) is refused with one clear
line and never touched; an empty or missing file is the only thing we create a history in.
"""

from __future__ import annotations

import os
import struct
from enum import Enum
from pathlib import Path

from gpuops.core.store.errors import DamagedDatabase, DatabaseTooNew, NotAGpuopsDatabase, StoreError

#: "GPUO" - stored at header offset 68 by `PRAGMA application_id`.
APPLICATION_ID = 0x4750554F
SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_SIZE = 100


class FileState(Enum):
    NEW = "new"  # missing or empty: a history will be created
    OURS = "ours"


def _wal_has_frames(path: Path) -> bool:
    """A non-empty -wal means the header in the main file may be older than the database."""
    try:
        return os.path.getsize(f"{path}-wal") > 32
    except OSError:
        return False


def inspect_file(path: Path, known_version: int) -> FileState:
    """Classify the file at `path`; raise a StoreError subclass if it must not be used."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            header = handle.read(HEADER_SIZE)
    except FileNotFoundError:
        return FileState.NEW
    except IsADirectoryError:
        raise NotAGpuopsDatabase(f"{path} is a directory, not a gpuops history file") from None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from None
    if size == 0:
        return FileState.NEW
    if not header.startswith(SQLITE_MAGIC):
        raise NotAGpuopsDatabase(f"{path} is not a gpuops history: it is not an SQLite database; move it away or pass --db")
    if len(header) < HEADER_SIZE:
        raise DamagedDatabase(f"{path} is truncated: only {size} bytes, shorter than an SQLite header")
    (page_size,) = struct.unpack_from(">H", header, 16)
    page_size = 65536 if page_size == 1 else page_size
    change_counter, page_count = struct.unpack_from(">II", header, 24)
    (user_version,) = struct.unpack_from(">i", header, 60)
    (application_id,) = struct.unpack_from(">I", header, 68)
    (valid_for,) = struct.unpack_from(">I", header, 92)
    if application_id != APPLICATION_ID:
        raise NotAGpuopsDatabase(
            f"{path} is not a gpuops history: it is an SQLite database of another application "
            f"(application_id {application_id:#x}); move it away or pass --db"
        )
    if page_size < 512 or page_size & (page_size - 1):
        raise DamagedDatabase(f"{path} is damaged: its header gives an impossible page size {page_size}")
    expected = page_count * page_size
    if valid_for == change_counter and size < expected and not _wal_has_frames(path):
        raise DamagedDatabase(f"{path} is truncated: {size} bytes where its header promises {expected}")
    if user_version > known_version and not _wal_has_frames(path):
        raise DatabaseTooNew(
            f"{path} was written by a newer gpuops (history schema {user_version}; this version knows "
            f"up to {known_version}): upgrade gpuops or pass another --db"
        )
    return FileState.OURS

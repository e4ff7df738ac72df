"""Is the file at the database path ours? Decided from its status and header bytes before SQLite
opens it, because opening can already write (a hot journal is rolled back, a WAL is checkpointed on
close). The header is read only while this process has no connection to the file (connection.py
knows): closing any descriptor of it would drop the POSIX locks SQLite holds (STYLE.md).

A gpuops history is an SQLite file whose header carries our `PRAGMA application_id`. Anything else
at the path (garbage, another application's SQLite file, a file cut short) is refused with one clear
line and never touched; an empty or missing file is the only thing we create a history in.
"""

from __future__ import annotations

import os
import stat
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


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _wal_has_frames(path: Path) -> bool:
    """A non-empty -wal means the header in the main file may be older than the database."""
    try:
        return os.path.getsize(f"{os.path.realpath(path)}-wal") > 32
    except OSError:
        return False


def stat_history(path: Path) -> os.stat_result | None:
    """The status of the file at `path` (through symlinks), None if there is none. Raises
    NotAGpuopsDatabase, without opening anything, for what cannot be a history: a directory,
    device, FIFO or socket (opening a FIFO would block), a dangling symlink, or a file with more
    than one name (SQLite finds the -wal by name: two names mean two journals for one file)."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            target = os.readlink(path)
            raise NotAGpuopsDatabase(f"{path} is a symlink to a missing file ({target}); point --db at the real file") from None
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from None
    for is_kind, kind in _KINDS:
        if is_kind(status.st_mode):
            raise NotAGpuopsDatabase(f"{path} is {kind}, not a history file; pass --db a regular file")
    if status.st_nlink > 1:
        raise NotAGpuopsDatabase(
            f"{path} has {status.st_nlink} hard links: SQLite keeps a history's journal by name, so two names could "
            "corrupt it; remove the other links and use one name"
        )
    return status


def _read_header(path: Path, status: os.stat_result) -> bytes:
    """The first bytes of the file. Only called while this process has no connection to it:
    closing this descriptor would drop every POSIX lock SQLite holds on the file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from None
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (status.st_dev, status.st_ino):
            raise StoreError(f"{path} was replaced while being opened; try again")
        return os.pread(fd, HEADER_SIZE, 0)
    finally:
        os.close(fd)


def inspect_file(path: Path, status: os.stat_result | None, known_version: int, *, read_header: bool) -> FileState:
    """Classify the file at `path` (`status` from `stat_history`); raise a StoreError subclass if
    it must not be used. Without `read_header` (a connection of this process has the file open, so
    it was found ours already) only its size is looked at."""
    if status is None or status.st_size == 0:
        return FileState.NEW
    if not read_header:
        return FileState.OURS
    size = status.st_size
    header = _read_header(path, status)
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

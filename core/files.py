"""The one way gpuops writes a file (exports, reports, rules, snapshots): readers see the old
content or the new, never half of either; a file we create is 0600 whatever the umask; nothing
that is not a regular file (a device, a FIFO, /dev/stdout) is ever replaced; an existing file or
a symbolic link is only written when the caller says so, and a link is written through, never
replaced by a file."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PRIVATE_FILE_MODE = 0o600

_KINDS = {
    stat.S_ISDIR: "a folder", stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device",
    stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket",
}


class OutputRefused(Exception):
    """The file must not be written as asked; the message says why and what to pass instead."""


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS.items() if test(mode)), "not a regular file")


def write_target(path: Path, *, force: bool) -> Path:
    """The file a write to `path` replaces: `path` itself, or (with `force`) the file a symbolic
    link at `path` points to. Refuses links and existing files without `force`, and anything
    that is not a regular file always."""
    try:
        link = os.lstat(path)
    except FileNotFoundError:
        return path
    target = path
    if stat.S_ISLNK(link.st_mode):
        target = Path(os.path.realpath(path))
        if not force:
            raise OutputRefused(f"{path} is a symbolic link (to {target}); pass --force to write through it")
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target  # a dangling link, with --force: create the file it names
    if not stat.S_ISREG(mode):
        raise OutputRefused(f"{path} is {_kind(mode)}, not a regular file; use -o - for standard output")
    if not force:
        raise OutputRefused(f"{path} exists; pass --force to replace it")
    return target


@contextmanager
def atomic_write(path: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield an empty private temporary file beside the target; when the block ends without an
    exception, flush it to disk and move it into place (else delete it). Without `force` the move
    never replaces a file that appeared meanwhile (FileExistsError); with it, a replaced file
    keeps its mode."""
    target = write_target(Path(path), force=force)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.fchmod(fd, PRIVATE_FILE_MODE)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _move_into_place(tmp, target, force)
        _fsync_folder(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _move_into_place(tmp: Path, target: Path, force: bool) -> None:
    if force:
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        except FileNotFoundError:
            pass
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # fails if the name exists: no race with a file created meanwhile
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links (vfat, some FUSE)
        if os.path.lexists(target):
            raise FileExistsError(target) from None
        os.rename(tmp, target)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

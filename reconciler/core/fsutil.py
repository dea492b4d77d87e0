"""reconciler's own files: atomic writes, and opening without following links.

Atomic writes: a temporary file in the same folder, fsync, rename, fsync the folder.  A reader
sees the old file or the new one, never half of either, even if the process is killed.

The files reconciler owns (state, its backup, journal, lock, saved plans) are opened without
following a symbolic link at their own name (``O_NOFOLLOW``) and must be regular files: a link
planted there would make a write land on whatever it points to (a journal append once truncated
a configuration file), and a FIFO or device would block or never end.  Such a path is refused
with :class:`RefusedPath`, an ``OSError`` whose ``strerror`` says why, so the callers' own
"cannot read/write FILE: why" messages name it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path


class RefusedPath(OSError):
    """A file of reconciler's is a symbolic link, or not a regular file: not used."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def _refuse(path: Path | str, mode: int) -> OSError:
    if stat.S_ISDIR(mode):
        return IsADirectoryError(errno.EISDIR, "it is a directory, not a file", str(path))
    return RefusedPath(errno.EPERM, f"it is {_kind(mode)}; reconciler uses only regular files it can trust "
                                    "for its own files (remove it, or point the option at a real file)", str(path))


def open_regular(path: Path | str, flags: int, mode: int = 0o600) -> int:
    """``os.open`` that follows no link at ``path`` and accepts only a regular file (or creates
    one, with ``O_CREAT``).  FileNotFoundError as usual; RefusedPath / IsADirectoryError else."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:  # O_NOFOLLOW met a link
            raise _refuse(path, stat.S_IFLNK) from None
        if e.errno == errno.ENXIO:  # a FIFO with no reader, opened for writing
            raise _refuse(path, stat.S_IFIFO) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(path, st.st_mode)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: Path | str) -> bytes:
    """The bytes of the regular file ``path`` (no link followed; see :func:`open_regular`)."""
    fd = open_regular(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        return f.read()


def check_replaceable(path: Path | str) -> None:
    """RefusedPath unless ``path`` is absent or a regular file (what an atomic write replaces)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(path, st.st_mode)


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically; the file gets ``mode`` (0600 by default)."""
    path = Path(path)
    check_replaceable(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except FileNotFoundError:  # the folder does not exist yet (made here, not tried on every write)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, *, mode: int = 0o600) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def link_replace(src: Path, dst: Path, *, sync_dir: bool = True) -> bool:
    """Make ``dst`` name the file ``src`` names now (a hard link, swapped in atomically), so that
    ``src`` can then be replaced while ``dst`` keeps its old content: a backup without copying a
    byte.  False when the file system cannot (the caller copies instead).  ``sync_dir=False``
    leaves the directory's sync to the caller (a later rename in the same directory, synced)."""
    check_replaceable(dst)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.link")
    try:
        os.link(src, tmp, follow_symlinks=False)
    except OSError:
        return False
    try:
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync_dir:
        _fsync_dir(dst.parent)
    return True

"""Finding and reading manifest files: regular files only, bounded, never blocking.

A path a user names (or a folder walk finds) is looked at with ``stat`` before anything opens it:

* a FIFO, a device, a socket is a located error and is never opened (opening a FIFO blocks until
  someone writes to it; ``/dev/zero`` never ends);
* a symbolic link is followed (manifests may live elsewhere), but a loop of links is a located
  error, and so is a link to nothing;
* a file is opened with ``O_NONBLOCK`` all the same (it may have been swapped for a FIFO since it
  was looked at), checked again on the open descriptor, and read with a bound: at most
  :data:`MAX_FILE_BYTES`, whatever its size claims to be (``/proc`` files claim 0).

Folders are walked for ``*.yaml`` / ``*.yml`` without following linked folders (no loops), hidden
folders and files skipped.  The same file reached twice (a link, a hard link, two overlapping
paths) is read once.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from reconciler.core.errors import Diagnostic, ManifestError

MANIFEST_SUFFIXES = (".yaml", ".yml")
#: The largest manifest file read; a larger one is a located error (checked while reading).
MAX_FILE_BYTES = 50 * 1024 * 1024
_CHUNK = 1024 * 1024

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def not_regular(mode: int) -> str | None:
    """What a file of ``mode`` is when it is neither a regular file nor a folder; None otherwise."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def discover(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The manifest files named by ``paths``: files as given, folders walked for *.yaml/*.yml.

    ManifestError with every problem (missing, a loop of links, not a regular file, an
    unreadable folder) located at the path concerned; nothing is opened to find out."""
    found: list[tuple[Path, tuple[int, int]]] = []
    problems: list[Diagnostic] = []
    for raw in paths:
        p = Path(raw)
        st, problem = _stat(p)
        if st is None:
            problems.append(Diagnostic(str(p), 0, 0, problem or "cannot access"))
        elif not stat.S_ISDIR(st.st_mode):
            found.append((p, (st.st_dev, st.st_ino)))
        else:
            seen_here = 0
            try:
                for f in _walk(p):
                    seen_here += 1
                    fst, fproblem = _stat(f)
                    if fst is None:
                        problems.append(Diagnostic(str(f), 0, 0, fproblem or "cannot access"))
                    elif stat.S_ISREG(fst.st_mode):
                        found.append((f, (fst.st_dev, fst.st_ino)))
            except OSError as e:
                problems.append(Diagnostic(str(p), 0, 0, f"cannot read directory: {e.strerror or e}"))
                continue
            if not seen_here:
                problems.append(Diagnostic(str(p), 0, 0, "no manifests here (looked for *.yaml and *.yml files)"))
    if problems:
        raise ManifestError(problems)
    seen: set[tuple[int, int]] = set()
    unique = []
    for f, key in found:
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _stat(p: Path) -> tuple[os.stat_result | None, str | None]:
    """``stat`` of ``p`` (links followed) or why it cannot be a manifest or a folder of them."""
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            return None, f"symbolic link to {os.readlink(p)!r}, which does not exist"
        return None, "no such file or directory"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return None, "symbolic link loop (the links lead back to themselves)"
        if e.errno == errno.ENAMETOOLONG:
            return None, "path too long"
        return None, f"cannot access: {e.strerror or e}"
    what = not_regular(st.st_mode)
    if what:
        return None, f"is {what}, not a regular file; manifests must be regular files (it was not opened)"
    return st, None


def _walk(root: Path) -> Iterator[Path]:
    # followlinks=False: a linked folder is not entered, so links cannot make the walk loop.
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise, followlinks=False):
        # Hidden folders hold state (.reconciler/) and VCS data, never manifests.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(MANIFEST_SUFFIXES) and not name.startswith("."):
                yield Path(dirpath) / name


def _raise(e: OSError) -> None:
    raise e


def read_bounded(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    Opened with O_NONBLOCK (a FIFO swapped in after :func:`discover` looked cannot block the
    open), checked to be a regular file on the open descriptor, and read in chunks until end of
    file or ``limit + 1`` bytes: :class:`FileTooLarge` past the limit, whatever ``stat`` claimed.
    OSError as the system raised it otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        what = not_regular(st.st_mode) or ("a folder" if stat.S_ISDIR(st.st_mode) else None)
        if what:
            raise NotRegularFile(what)
        if st.st_size > limit:
            raise FileTooLarge(limit)
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise FileTooLarge(limit)
        return b"".join(chunks)
    finally:
        os.close(fd)


class NotRegularFile(Exception):
    """The path turned out not to be a regular file when it was opened."""

    def __init__(self, what: str) -> None:
        super().__init__(f"is {what}, not a regular file; manifests must be regular files")


class FileTooLarge(Exception):
    """The file holds more than the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"file is larger than {limit // 2**20} MiB; refused (split it into several files)")
        self.limit = limit

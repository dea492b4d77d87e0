"""The state lock: one writer per state, released by the kernel when its holder ends.

Owns ``.reconciler/state.lock`` (or ``<stem>.lock`` beside another state file, see
:class:`reconciler.state.store.StateStore`).  The lock is an exclusive ``flock`` on that file, taken
through the ``filelock`` library: the kernel releases it when the process holding it ends, however
it ends (exit, exception, SIGTERM, SIGKILL, a crash), so a killed run never leaves behind a lock
that blocks the next one, and nothing has to decide whether a lock is stale.

While it is held the file holds its holder, ``{id, pid, host, user, operation, created_at,
lock: "flock"}`` (mode 0600, written right after the flock is taken), so whoever finds the state
locked is told who holds it and since when.  On release the file is emptied and removed while
still locked (filelock's takers check that the file they locked is still linked).  The file is
opened without following symbolic links, and must be a regular file.

Reconcilers before this one locked by creating the file with O_EXCL, without flock.  A record
without ``"lock": "flock"`` is theirs: it is honoured while its process may be alive (on another
host, or a running pid here), taken over when it provably is not (this host, pid gone), and
``reconciler state unlock ID`` still breaks it by its id.  A flock lock is never broken: it ends
with its process, and ``state unlock`` says so.  :mod:`reconciler.state.store` re-exports this API.
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import hashlib
import json
import os
import secrets
import socket
import stat
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import filelock

from reconciler.core.errors import StateError, StateLockedError
from reconciler.core.fsutil import open_regular
from reconciler.core.interrupts import deferred

LOCK_NAME = "state.lock"
FLOCK = "flock"  # the marker of records written by this lock (absent from the O_EXCL lock's)
_MAX_RECORD = 4096
# A taker holds the flock a moment before its record is written; a reader's probe holds it for
# a moment too.  Meeting either, a taker looks again, this many times (about a second in all).
_ATTEMPTS = 50


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # containers without a passwd entry for the uid
        return str(os.getuid())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, and belongs to someone else
        return True
    return True


def _open_lock_file(path: Path) -> int | None:
    """A read-only descriptor of the lock file (no link followed, a regular file only: see
    :func:`reconciler.core.fsutil.open_regular`); None when there is no file."""
    try:
        return open_regular(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StateError(f"cannot read the state lock {path}: {e.strerror or e}",
                         hint="Remove it; reconciler creates the lock file itself.") from None


def _parse(data: bytes) -> tuple[str, dict[str, Any]] | None:
    if not data.strip():
        return None
    try:
        holder = json.loads(data)
    except ValueError:
        holder = None
    if isinstance(holder, dict) and isinstance(holder.get("id"), str):
        return holder["id"], holder
    # Not a record (a taker of the old lock killed mid-write): a stable id derived from the
    # content, so that `state unlock` can still name it.
    return "damaged-" + hashlib.sha256(data).hexdigest()[:8], {}


def read_lock(path: Path) -> tuple[str, dict[str, Any]] | None:
    """The id and holder record in the lock file at ``path``; None when there is no file or it is
    empty.  A record is not proof that the lock is held: see :func:`lock_status`."""
    fd = _open_lock_file(path)
    if fd is None:
        return None
    try:
        return _parse(os.read(fd, _MAX_RECORD))
    except OSError as e:
        raise StateError(f"cannot read the state lock {path}: {e.strerror or e}") from None
    finally:
        os.close(fd)


@dataclass(frozen=True)
class LockStatus:
    """Whether a state is locked now, and by whom."""

    held: bool
    lock_id: str | None = None
    holder: dict[str, Any] = field(default_factory=dict)
    legacy: bool = False  # a lock file of a reconciler before flock (O_EXCL, no kernel lock)

    def describe(self) -> str:
        """``locked by pid 123 on host h ... (lock id x)``, or ``not locked``."""
        if not self.held:
            return "not locked"
        who = describe_holder(self.holder) if self.holder else "a process that has not written its record yet"
        return f"locked by {who} (lock id {self.lock_id})"


def lock_status(path: Path) -> LockStatus:
    """Whether the lock at ``path`` is held: its flock is (probed without waiting), or the file is
    an old-style lock whose holder may be alive.  A record left by a holder that ended is not."""
    fd = _open_lock_file(path)
    if fd is None:
        return LockStatus(held=False)
    try:
        current = _parse(os.read(fd, _MAX_RECORD))
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                raise StateError(f"cannot probe the state lock {path}: {e.strerror or e}") from None
            held = True
        else:
            held = False
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    lock_id, holder = current if current else (None, {})
    legacy = current is not None and holder.get("lock") != FLOCK
    if legacy and not held:
        held = not is_stale(holder)  # a damaged old-style file ({}) counts as held, as it did
    return LockStatus(held=held, lock_id=lock_id, holder=holder, legacy=legacy)


def describe_holder(holder: dict[str, Any]) -> str:
    """``pid 123 on host h (user u) since T, for 'apply'`` from a lock's holder record."""
    text = (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} (user {holder.get('user', '?')}) "
            f"since {holder.get('created_at', '?')}")
    return text + (f", for '{holder['operation']}'" if holder.get("operation") else "")


def is_stale(holder: dict[str, Any]) -> bool:
    """True when the holder is on this host and its process is no longer running."""
    pid = holder.get("pid")
    return (holder.get("host") == socket.gethostname() and isinstance(pid, int) and not isinstance(pid, bool)
            and pid > 0 and not _pid_alive(pid))


class _LegacyHeld(Exception):
    def __init__(self, lock_id: str, holder: dict[str, Any]) -> None:
        super().__init__(lock_id)
        self.lock_id, self.holder = lock_id, holder


class StateLock:
    """An exclusive lock on a state, released by the kernel when its holder ends.  Use
    ``with StateLock(dir, operation=...)``; raises StateLockedError, naming the holder, when
    another process holds it."""

    def __init__(self, dir: Path, *, operation: str = "", name: str = LOCK_NAME) -> None:
        self.path = Path(dir) / name
        self.operation = operation
        self.id: str | None = None  # set while held
        self._lock: filelock.BaseFileLock | None = None
        self._fd: int | None = None  # filelock's descriptor, lent to us while held

    def acquire(self) -> StateLock:
        """Take the lock or raise StateLockedError naming the holder."""
        if self.id is not None:
            raise RuntimeError("this StateLock is already held")
        lock_id = secrets.token_hex(4)
        record = {"id": lock_id, "pid": os.getpid(), "host": socket.gethostname(), "user": _user(),
                  "operation": self.operation, "lock": FLOCK,
                  "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        data = (json.dumps(record, sort_keys=True) + "\n").encode()
        try:
            # 0755 whatever the umask: a folder others may write is warned about (see permissions).
            self.path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError as e:
            raise StateError(f"cannot create the folder of the state lock {self.path}: {e.strerror or e}") from None
        last: tuple[str, dict[str, Any]] | None = None
        for attempt in range(_ATTEMPTS):
            # An old reconciler's lock is a file, not a flock: look before taking (some filelock
            # versions empty the file once they hold the flock, before on_acquired could look).
            before = read_lock(self.path)
            if before is not None and before[1].get("lock") != FLOCK and not is_stale(before[1]):
                raise self._locked(*before, legacy=True)
            lock = filelock.FileLock(self.path, mode=0o600, blocking=False, thread_local=False,
                                     preserve_lock_file=True, on_acquired=self._stamp(data))
            try:
                lock.acquire()
            except filelock.Timeout:
                last = read_lock(self.path)
                if last is not None and last[1].get("lock") == FLOCK and not is_stale(last[1]):
                    raise self._locked(*last) from None
            except _LegacyHeld as e:
                raise self._locked(e.lock_id, e.holder, legacy=True) from None
            except StateError:
                raise
            except OSError as e:
                what = ("is a symbolic link; refused" if e.errno == errno.ELOOP
                        else f"cannot be taken: {e.strerror or e}")
                raise StateError(f"the state lock {self.path} {what}") from None
            else:
                self._lock, self.id = lock, lock_id
                return self
            # Held, but by a taker that has not written its record yet, or by a reader's probe.
            time.sleep(min(0.002 * (attempt + 1), 0.05))
        if last is not None:
            raise self._locked(*last)
        raise StateError(f"could not take the state lock {self.path}: it stayed held without a holder record",
                         hint="Another run may be starting; try again.")

    def _stamp(self, data: bytes) -> Any:
        def stamp(fd: int) -> None:
            # Runs with the flock held, before acquire() returns; raising releases it.
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StateError(f"the state lock {self.path} is not a regular file; refused",
                                 hint="Remove it; reconciler creates the lock file itself.")
            previous = _parse(os.pread(fd, _MAX_RECORD, 0))
            if previous is not None and previous[1].get("lock") != FLOCK and not is_stale(previous[1]):
                # An old reconciler's lock: honoured while its holder may be alive.
                raise _LegacyHeld(*previous)
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
            self._fd = fd

        return stamp

    def release(self) -> bool:
        """Release the lock; False when its file was removed or replaced meanwhile (by hand, or
        by an old reconciler's ``state unlock``)."""
        lock, fd, self.id, self._lock, self._fd = self._lock, self._fd, None, None, None
        if lock is None or fd is None:
            return False
        ours = False
        try:
            try:
                ours = os.path.samestat(os.lstat(self.path), os.fstat(fd))
            except FileNotFoundError:
                ours = False
            if ours:
                os.ftruncate(fd, 0)
                os.unlink(self.path)  # while still locked: a taker that opened it retries
        except OSError:
            pass  # the kernel lock is released below all the same; a leftover file blocks no one
        finally:
            lock.release()
        return ours

    def __enter__(self) -> StateLock:
        # A SIGINT/SIGTERM while the lock is being taken is held until it is (reconciler.core.
        # interrupts), then released at once: no lock file is left behind with its record.
        try:
            with deferred():
                return self.acquire()
        except KeyboardInterrupt:
            if self.id is not None:
                self.release()
            raise

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        with deferred():  # released whole, even when a signal comes meanwhile
            self.release()

    def _locked(self, lock_id: str, holder: dict[str, Any], *, legacy: bool = False) -> StateLockedError:
        if not holder:
            msg = f"the state is locked, but its lock file {self.path} holds no record of who holds it"
        else:
            msg = f"the state is locked by {describe_holder(holder)}"
        msg += f" (lock id {lock_id})"
        if legacy:
            hint = ("That lock was taken by an older reconciler. If its process is gone, break it with: "
                    f"reconciler state unlock {lock_id}")
        else:
            hint = ("Wait for that run to finish: the lock is released when its process ends, even if it is "
                    "killed, so there is nothing to break.")
        return StateLockedError(msg, lock_id=lock_id, holder=holder, hint=hint)


@dataclass(frozen=True)
class Unlocked:
    """What ``unlock`` did: whether it broke a lock, whose, and a sentence saying so."""

    broke: bool
    holder: dict[str, Any]
    message: str


def unlock(dir: Path, lock_id: str, *, name: str = LOCK_NAME) -> Unlocked:
    """Break the old-style lock in ``dir`` whose id is ``lock_id``; say so when there is nothing
    stale to break.

    StateError when the lock is held by a running process (a flock lock cannot be broken, and
    needs not be: it ends with its process), or when the lock held now has another id."""
    path = Path(dir) / name
    status = lock_status(path)
    if status.lock_id is None:
        return Unlocked(False, {}, f"Nothing to break: the state is not locked (no lock record in {path}).")
    if status.lock_id != lock_id:
        if not status.held:
            return Unlocked(False, {}, f"Nothing to break: lock {lock_id} is not held, and neither is any other "
                                       f"(the lock of {path} is free).")
        raise StateError(
            f"lock {lock_id} is not the lock held now ({path} is {status.describe()}); nothing was unlocked",
            hint="Run the command that reported the lock again to see the current holder and lock id.",
        )
    if not status.legacy:
        if status.held:
            raise StateError(
                f"lock {lock_id} is held by a running process: {describe_holder(status.holder)}; nothing was unlocked",
                hint="The lock is released when that process ends (even if it is killed); stop it, or wait.")
        return Unlocked(False, status.holder,
                        f"Nothing to break: lock {lock_id} is no longer held; its process ended and the system "
                        "released the lock.")
    # An old reconciler's O_EXCL lock: the file is the lock, so removing it breaks it.
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as e:
        raise StateError(f"cannot remove the state lock {path}: {e.strerror or e}") from None
    who = describe_holder(status.holder) if status.holder else "a damaged lock file"
    return Unlocked(True, status.holder, f"Broke lock {lock_id} (held by {who}).")

"""The state lock: one exclusive file that stops two runs from writing the same state.

Owns ``.reconciler/state.lock`` (or ``<stem>.lock`` beside another state file, see
:class:`reconciler.state.StateStore`).  The file is created with O_CREAT|O_EXCL, mode 0600,
and holds ``{id, pid, host, user, operation, created_at}``, so whoever meets it can say who
holds it and since when.  A lock whose process is gone (same host, pid not running) is
reported as stale, but never broken automatically: only :func:`unlock` with the lock's id
breaks it (``reconciler state unlock ID``), so a lock cannot be broken by mistake after it
was released and taken again.  :mod:`reconciler.state` re-exports this module's API.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import secrets
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from reconciler.errors import StateError, StateLockedError
from reconciler.fsutil import open_regular, read_regular

LOCK_NAME = "state.lock"


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


def read_lock(path: Path) -> tuple[str, dict[str, Any]] | None:
    """The id and holder record of the lock file at ``path``; None when there is no lock.

    A lock file that stays empty or unreadable (its taker was killed between creating and
    writing it) gets a stable id derived from its content, ``damaged-<hex>``, so that it can
    still be broken with ``unlock`` like any other."""
    data = b""
    for _ in range(10):  # the holder may be between O_EXCL and its write: give it a moment
        try:
            data = read_regular(path)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StateError(f"cannot read the state lock {path}: {e.strerror or e}") from None
        try:
            holder = json.loads(data)
        except ValueError:
            holder = None
        if isinstance(holder, dict) and isinstance(holder.get("id"), str):
            return holder["id"], holder
        time.sleep(0.02)
    return "damaged-" + hashlib.sha256(data).hexdigest()[:8], {}


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


class StateLock:
    """An exclusive lock on a state: a file created with O_CREAT|O_EXCL, mode 0600, holding
    ``{id, pid, host, user, operation, created_at}``.  Use ``with StateLock(dir, ...)``;
    raises StateLockedError when another holder has it.  Never broken automatically."""

    def __init__(self, dir: Path, *, operation: str = "", name: str = LOCK_NAME) -> None:
        self.path = Path(dir) / name
        self.operation = operation
        self.id: str | None = None  # set while held

    def acquire(self) -> StateLock:
        """Take the lock or raise StateLockedError naming the holder (and whether it is stale)."""
        if self.id is not None:
            raise RuntimeError("this StateLock is already held")
        lock_id = secrets.token_hex(4)
        record = {"id": lock_id, "pid": os.getpid(), "host": socket.gethostname(), "user": _user(),
                  "operation": self.operation,
                  "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StateError(f"cannot create the folder of the state lock {self.path}: {e.strerror or e}") from None
        for _ in range(5):
            try:
                fd = open_regular(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                current = read_lock(self.path)
                if current is None:  # released between our open and our read: try again
                    continue
                raise self._locked(*current) from None
            except OSError as e:
                raise StateError(f"cannot create the state lock {self.path}: {e.strerror or e}") from None
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode())
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                self.path.unlink(missing_ok=True)
                raise
            os.close(fd)
            self.id = lock_id
            return self
        raise StateError(f"could not take the state lock {self.path}: it keeps appearing and disappearing")

    def release(self) -> bool:
        """Remove the lock file if it is still ours; False when it was broken or taken over."""
        lock_id, self.id = self.id, None
        if lock_id is None:
            return False
        current = read_lock(self.path)
        if current is None or current[0] != lock_id:
            return False
        self.path.unlink(missing_ok=True)
        return True

    def __enter__(self) -> StateLock:
        return self.acquire()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def _locked(self, lock_id: str, holder: dict[str, Any]) -> StateLockedError:
        if not holder:
            msg = (f"the state is locked, but the lock file {self.path} is empty or damaged; "
                   "a process was probably killed while taking it")
        else:
            msg = f"the state is locked by {describe_holder(holder)}"
            if is_stale(holder):
                msg += "; that process is no longer running, so the lock looks stale"
        return StateLockedError(msg + f" (lock id {lock_id})", lock_id=lock_id, holder=holder)


def unlock(dir: Path, lock_id: str, *, name: str = LOCK_NAME) -> dict[str, Any]:
    """Break the lock in ``dir`` if its id is ``lock_id``; return the holder record it had.

    StateError when there is no lock or it has another id (it was released and taken again
    since the id was shown: that lock belongs to someone else)."""
    path = Path(dir) / name
    current = read_lock(path)
    if current is None:
        raise StateError(f"the state is not locked (no {path}); nothing to unlock")
    held_id, holder = current
    if held_id != lock_id:
        who = describe_holder(holder) if holder else "a damaged lock file"
        raise StateError(
            f"lock {lock_id} is not the lock held now ({path} is held by {who}); nothing was unlocked",
            hint="Run the command that reported the lock again to see the current holder and lock id.",
        )
    path.unlink(missing_ok=True)
    return holder

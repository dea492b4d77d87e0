"""Who else may read or write the local files reconciler trusts, checked the way ssh checks keys.

* A **token file** grants what the token grants: readable by its group or others is warned about;
  writable by them is refused (anyone who can write it chooses the token reconciler sends, and
  with it the business it changes).  Only regular files are checked: ``--token-file
  /dev/stdin`` or a process substitution is a pipe, private by nature.
* The **state** (the state file, its journal, and their folder) decides what reconciler believes
  it already created, so writable by group or others is warned about: whoever can rewrite it can
  make the next apply create, and bill, something a second time.  Readable is fine: the state
  holds no secrets and is meant to be committed (a git checkout makes it 0644).

Warnings go to the ``reconciler.core.permissions`` logger, once per file per process (the CLI prints
them as ``Warning: ...``; library code never prints).  Refusals are ConfigError.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from reconciler.core.errors import ConfigError

log = logging.getLogger("reconciler.core.permissions")
_warned: set[tuple[str, int]] = set()


def _who(mode: int, group_bit: int, other_bit: int) -> str | None:
    group, other = bool(mode & group_bit), bool(mode & other_bit)
    if group and other:
        return "its group and everyone else"
    if other:
        return "everyone else"
    return "its group" if group else None


def _warn_once(path: Path, mode: int, message: str) -> None:
    key = (str(path), mode)
    if key not in _warned:
        _warned.add(key)
        log.warning(message)


def check_token_file(path: Path, st: os.stat_result, what: str = "token file") -> None:
    """Refuse (ConfigError) a token file others may write; warn when others may read it."""
    if not stat.S_ISREG(st.st_mode):
        return
    mode = stat.S_IMODE(st.st_mode)
    writers = _who(mode, stat.S_IWGRP, stat.S_IWOTH)
    if writers:
        raise ConfigError(
            f"{what} {path} is writable by {writers} (mode {mode:04o}); refusing to use it: whoever can "
            "write it chooses the token reconciler sends",
            hint=f"Make it private: chmod 600 {path}",
        )
    readers = _who(mode, stat.S_IRGRP, stat.S_IROTH)
    if readers:
        _warn_once(path, mode, f"{what} {path} is readable by {readers} (mode {mode:04o}): anyone who can read "
                               f"it can act as this business in vcita; make it private: chmod 600 {path}")


def check_state_files(folder: Path, files: list[Path]) -> None:
    """Warn when the state's folder, or one of its ``files`` that exists, is writable by group or
    others (links are not followed: reconciler never writes through one)."""
    for path, kind in ((folder, "folder"), *((f, "file") for f in files)):
        try:
            st = os.lstat(path)
        except OSError:
            continue
        mode = stat.S_IMODE(st.st_mode)
        writers = _who(mode, stat.S_IWGRP, stat.S_IWOTH)
        if writers is None or stat.S_ISLNK(st.st_mode):
            continue
        what = "the state folder" if kind == "folder" else f"the state file {path.name} in"
        fix = f"chmod go-w {path}"
        _warn_once(path, mode, f"{what} {path if kind == 'folder' else path.parent} is writable by {writers} "
                               f"(mode {mode:04o}): whoever can change it can make reconciler forget what it created "
                               f"and create it again; run: {fix}")

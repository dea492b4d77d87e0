"""A separate process for the state tests: takes the lock, appends to the journal, runs the CLI.

Run as ``python worker.py MODE ARGS...`` with the repository on PYTHONPATH.  Real processes,
because the lock and the journal exist to survive other processes and kill -9.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def _wait_for(path: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {path}")
        time.sleep(0.001)


def race(folder: str, go: str, release: str) -> None:
    """Wait for GO, try the lock once, report as one JSON line; a winner holds it until RELEASE."""
    import os

    from reconciler.core.errors import StateLockedError
    from reconciler.state.store import StateLock

    _wait_for(Path(go))
    try:
        lock = StateLock(Path(folder), operation="race").acquire()
    except StateLockedError as e:
        print(json.dumps({"won": False, "pid": os.getpid(), "holder_pid": e.holder.get("pid"),
                          "lock_id": e.lock_id, "message": e.message}), flush=True)
        return
    print(json.dumps({"won": True, "pid": os.getpid(), "lock_id": lock.id}), flush=True)
    _wait_for(Path(release))
    lock.release()


def hold(folder: str) -> None:
    """Take the lock, say its id, then wait to be killed."""
    from reconciler.state.store import StateLock

    lock = StateLock(Path(folder), operation="apply").acquire()
    print(lock.id, flush=True)
    time.sleep(60)


def journal_loop(folder: str) -> None:
    """Append intents forever: even ones stay open, odd ones are closed right away."""
    from reconciler.state.journal import Journal

    journal = Journal(Path(folder))
    i = 0
    while True:
        intent_id = journal.open_intent(f"client_package.c{i}", "ClientPackage", f"sha256:{i:064x}",
                                        {"client_email": f"c{i}@example.com", "note": "x" * 3000})
        if i % 2:
            journal.close_intent(intent_id, "created", f"uid{i}")
        i += 1


def cli(args: list[str]) -> None:
    """The CLI with the state group registered (until the lead registers it in cli/__init__)."""
    from reconciler.cli import cli as group
    from reconciler.cli import run
    from reconciler.cli.state_cmds import state

    if "state" not in group.commands:
        group.add_command(state)
    sys.exit(run(args))


if __name__ == "__main__":
    mode, rest = sys.argv[1], sys.argv[2:]
    if mode == "race":
        race(*rest)
    elif mode == "hold":
        hold(*rest)
    elif mode == "journal-loop":
        journal_loop(*rest)
    elif mode == "cli":
        cli(rest)
    else:
        raise SystemExit(f"unknown mode {mode}")

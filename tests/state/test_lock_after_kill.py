"""A killed ``reconciler apply`` leaves no lock that blocks the next one (the real CLI, the served sandbox).

The apply is killed while it holds the state lock (during its refresh, slowed down by injected
latency, so before any create is sent); the next apply must run at once, with no one breaking
anything.  (SIGTERM is caught and unwinds, releasing the lock, since SIGTERM is reported as Ctrl-C
is: ``reconciler.core.interrupts``.)  Before the flock lock, the next apply was refused with "the state is locked ... stale"
until a person ran ``reconciler state unlock ID``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def _wait_for_holder(lock: Path, proc: subprocess.Popen[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            record = json.loads(lock.read_text())
        except (FileNotFoundError, ValueError):
            time.sleep(0.01)
            continue
        if record.get("pid") == proc.pid:
            return dict(record)
        time.sleep(0.01)
    raise AssertionError("apply never took the state lock")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_apply_leaves_no_lock_that_blocks_the_next(workdir: Path, operator: Callable[..., Any],
                                                            sig: signal.Signals) -> None:
    operator("POST", "/faults", json={"path": "*", "latency_ms": 400})  # a slow refresh: killed inside it
    lock = workdir / "manifests" / ".reconciler" / "state.lock"
    first = subprocess.Popen([sys.executable, "-m", "reconciler", "apply", "--auto-approve"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    holder = _wait_for_holder(lock, first)
    assert holder["operation"] == "apply" and holder["lock"] == "flock"
    first.send_signal(sig)
    out, err = first.communicate(timeout=30)
    if sig == signal.SIGKILL:
        assert first.returncode == -sig, (first.returncode, out, err)
        assert json.loads(lock.read_text())["pid"] == first.pid  # its record is left: nothing ran to remove it
    else:  # SIGTERM unwinds as Ctrl-C does: one line, exit 143, the lock released (it used to kill on the spot)
        assert first.returncode == 143 and "Error: terminated (SIGTERM)" in err and "Traceback" not in err, err
        assert not lock.exists()
    operator("DELETE", "/faults")
    second = subprocess.run([sys.executable, "-m", "reconciler", "apply", "--auto-approve"], capture_output=True,
                            text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "locked" not in second.stdout + second.stderr
    assert "Apply complete" in second.stdout or "applied" in second.stdout.lower(), second.stdout
    assert not lock.exists()  # released normally this time

"""The state file cannot grow in the middle of an apply (a full disk, imitated with a file size
limit, RLIMIT_FSIZE, on the apply process): the pending records of its first creates were written,
vcita executed creates whose answers no state write can record.

Held (pinned here): one clear error per object vcita acknowledged, with the ``reconciler import``
that records it, no traceback, nothing sent after the failed write; the next apply (with room)
adopts what the first one made and bills nobody twice.  Served sandbox, the real CLI.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sandbox_support import client_packages


def _apply(limit: int | None = None) -> subprocess.CompletedProcess[str]:
    def small_files() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "reconciler", "apply", "--auto-approve"], capture_output=True,
                          text=True, timeout=300, preexec_fn=small_files)


# 2,000 bytes: the catalog packages' records no longer fit; 6,000: the client packages' records
@pytest.mark.parametrize("limit", [2000, 6000])
def test_a_state_that_cannot_grow_stops_the_apply_and_the_next_one_adopts(
        workdir: Path, operator: Callable[..., Any], demo: dict[str, Any], limit: int) -> None:
    first = _apply(limit)
    said = first.stdout + first.stderr
    assert first.returncode == 1, said
    assert "Traceback" not in said and "File too large" in said, said[-2000:]
    assert "but the state could not record it" in said and "reconciler import " in said, said[-2000:]
    state = workdir / "manifests" / ".reconciler" / "state.json"
    assert state.stat().st_size <= limit

    second = _apply()
    assert second.returncode == 0, second.stdout + second.stderr
    assert "an interrupted run had created" in second.stdout
    sold = Counter((cp["client_id"], cp["package_id"]) for cp in client_packages(operator, demo))
    assert sum(sold.values()) == 8 and max(sold.values()) == 1

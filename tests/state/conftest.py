"""Fixtures of the state tests: the launcher of real worker processes (see worker.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from state_helpers import REPO, WORKER


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``worker.py MODE ARGS`` as a real process; every one is killed and reaped at the end."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, **kw: Any) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        kw.setdefault("stdout", subprocess.PIPE)
        p = subprocess.Popen([sys.executable, str(WORKER), *args], env=env, text=True, **kw)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        if p.stdout:
            p.stdout.close()

"""Drift fixtures: the demo manifests applied to the served sandbox (shared fixtures in tests/conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def applied(workdir: Path, cli: Callable[..., tuple[int, str, str]]) -> dict[str, str]:
    """The demo manifests applied; address -> remote id."""
    code, out, err = cli("apply", "--auto-approve", "--no-verify")
    assert code == 0, out + err
    state = json.loads((workdir / "manifests" / ".reconciler" / "state.json").read_text())
    return {a: r["id"] for a, r in state["resources"].items()}

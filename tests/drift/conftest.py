"""Drift fixtures: the demo manifests in a temp folder, pointed at the served sandbox, applied."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.cli import run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Any, demo: dict[str, Any]) -> Path:
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VCITA_GATEWAY_URL", sandbox.gateway_url)
    monkeypatch.setenv("VCITA_FALLBACK_URL", sandbox.fallback_url)
    monkeypatch.setenv("VCITA_BUSINESS_ID", demo["business"]["id"])
    monkeypatch.setenv("VCITA_STAFF_TOKEN", demo["tokens"]["staff"])
    for var in ("VCITA_DIRECTORY_TOKEN", "RECONCILER_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = run(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def operator(sandbox: Any) -> Callable[..., Any]:
    def call(method: str, path: str, **kw: Any) -> Any:
        r = httpx.request(method, sandbox.operator_url + path, timeout=10, **kw)
        r.raise_for_status()
        return r.json()

    return call


@pytest.fixture
def applied(workdir: Path, cli: Callable[..., tuple[int, str, str]]) -> dict[str, str]:
    """The demo manifests applied; address -> remote id."""
    code, out, err = cli("apply", "--auto-approve", "--no-verify")
    assert code == 0, out + err
    state = json.loads((workdir / "manifests" / ".reconciler" / "state.json").read_text())
    return {a: r["id"] for a, r in state["resources"].items()}

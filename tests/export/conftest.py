"""Export fixtures: a sandbox business (made through the operator API) the CLI is pointed at."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.cli import run


@pytest.fixture
def operator(sandbox: Any) -> Callable[..., Any]:
    def call(method: str, path: str, **kw: Any) -> Any:
        r = httpx.request(method, sandbox.operator_url + path, timeout=30, **kw)
        r.raise_for_status()
        return r.json()

    return call


@pytest.fixture
def business(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Any, operator: Any) -> dict[str, Any]:
    """A fresh business with 2 services, 3 clients and 50 catalog packages; cwd is a temp folder."""
    made = operator("POST", "/businesses", json={"name": "Adopt Me", "services": 2, "clients": 3})
    made["package_ids"] = operator("POST", "/bulk/packages",
                                   json={"business_id": made["business_id"], "count": 50})["ids"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VCITA_GATEWAY_URL", sandbox.gateway_url)
    monkeypatch.setenv("VCITA_FALLBACK_URL", sandbox.fallback_url)
    monkeypatch.setenv("VCITA_BUSINESS_ID", made["business_id"])
    monkeypatch.setenv("VCITA_STAFF_TOKEN", made["staff_token"])
    for var in ("VCITA_DIRECTORY_TOKEN", "RECONCILER_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    return made


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = run(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke

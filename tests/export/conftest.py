"""Export fixtures: a sandbox business (made through the operator API) the CLI is pointed at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


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


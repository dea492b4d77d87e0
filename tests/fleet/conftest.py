"""Fleet fixtures: sandbox businesses made through the operator API, one manifests folder each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def make_fleet(root: Path, names: list[str], sandbox: Any, operator: Any, monkeypatch: pytest.MonkeyPatch,
               cli: Callable[..., tuple[int, str, str]], packages: int = 3) -> dict[str, dict[str, Any]]:
    """Businesses ``names``, each exported into ``root/<name>/`` with a target.toml (token by env)."""
    made = {}
    for name in names:
        b = operator("POST", "/businesses", json={"name": name, "services": 1, "clients": 2})
        operator("POST", "/bulk/packages", json={"business_id": b["business_id"], "count": packages})
        folder = root / name
        folder.mkdir(parents=True)
        var = "TOKEN_" + name.upper().replace("-", "_")
        (folder / "target.toml").write_text(
            f'gateway_url = "{sandbox.gateway_url}"\nfallback_url = "{sandbox.fallback_url}"\n'
            f'business_id = "{b["business_id"]}"\ntoken_env = "{var}"\n')
        monkeypatch.setenv(var, b["staff_token"])
        with monkeypatch.context() as m:
            m.setenv("VCITA_GATEWAY_URL", sandbox.gateway_url)
            m.setenv("VCITA_FALLBACK_URL", sandbox.fallback_url)
            m.setenv("VCITA_BUSINESS_ID", b["business_id"])
            m.setenv("VCITA_STAFF_TOKEN", b["staff_token"])
            code, out, err = cli("export", "--out", str(folder))
            assert code == 0, out + err
        made[name] = b
    return made


@pytest.fixture
def fleet(tmp_path: Path, sandbox: Any, operator: Any, monkeypatch: pytest.MonkeyPatch,
          cli: Callable[..., tuple[int, str, str]]) -> dict[str, dict[str, Any]]:
    monkeypatch.chdir(tmp_path)
    for var in ("VCITA_GATEWAY_URL", "VCITA_FALLBACK_URL", "VCITA_BUSINESS_ID", "VCITA_STAFF_TOKEN",
                "VCITA_DIRECTORY_TOKEN", "RECONCILER_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    return make_fleet(tmp_path / "manifests", ["acme", "beta", "gamma", "delta"], sandbox, operator, monkeypatch, cli)

"""Export writes client packages too, found through the business's payment requests (the second
memory), and the next plan shows no changes; repeat purchases are marked; a target whose list
refuses exports the catalog alone and says why."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

CLI = Callable[..., tuple[int, str, str]]


def _assign(operator: Any, business: dict[str, Any], package: str, count: int) -> list[str]:
    return operator("POST", "/bulk/client_packages", json={"business_id": business["business_id"],
                                                           "package_id": package, "count": count})["ids"]


def test_export_writes_client_packages_and_plans_no_changes(business: dict[str, Any], cli: CLI, operator: Any,
                                                            tmp_path: Path) -> None:
    made = _assign(operator, business, business["package_ids"][0], 4)  # 3 clients: one gets two
    made += _assign(operator, business, business["package_ids"][1], 1)
    code, out, err = cli("export", "--out", "manifests")
    assert code == 0, out + err
    assert "Exported 5 client packages (found through payment requests)" in out
    text = (tmp_path / "manifests" / "client-packages.yaml").read_text()
    docs = list(yaml.safe_load_all(text))
    assert len(docs) == 5 and {d["kind"] for d in docs} == {"ClientPackage"}
    assert sum(1 for d in docs if d["spec"].get("repeat_purchase")) == 1  # the same client, package and day
    state = json.loads((tmp_path / "manifests" / ".reconciler" / "state.json").read_text())
    assert {r["id"] for a, r in state["resources"].items() if a.startswith("client_package.")} == set(made)
    for rid in made:
        assert f"# vcita client package id: {rid}" in text
    assert cli("validate")[0] == 0
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 0 and "No changes." in out, out + err


def test_export_without_the_second_memory_exports_the_catalog_and_says_why(
        business: dict[str, Any], cli: CLI, operator: Any, tmp_path: Path) -> None:
    _assign(operator, business, business["package_ids"][0], 2)
    operator("POST", "/faults", json={"path": "/business/payments/v1/payment_requests", "door": "*", "status": 404})
    code, out, err = cli("export", "--out", "manifests")
    assert code == 0, out + err
    assert "client packages not exported: the payment request list cannot be read" in err
    assert not (tmp_path / "manifests" / "client-packages.yaml").exists()
    assert "Exported 50 catalog packages" in out

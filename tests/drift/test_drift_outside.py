"""``drift`` sees client packages created outside reconciler (issue 18): a package of a managed
catalog package assigned to a managed client in vcita (the operator stands in for the vcita UI)
is a ``created_outside`` object, remote drift (exit 2), read in one paged listing; packages of
unmanaged clients or catalog packages are not; a target whose list refuses says so and keeps
the old verdict."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLI = Callable[..., tuple[int, str, str]]
LIST = "/business/payments/v1/payment_requests"


def _assign(operator: Any, demo: dict[str, Any], package: str, clients: list[str]) -> str:
    return operator("POST", "/bulk/client_packages", json={"business_id": demo["business"]["id"],
                                                           "package_id": package, "client_ids": clients,
                                                           "count": 1})["ids"][0]


def _hits(operator: Any, route: str) -> int:
    return sum(r["count"] for r in operator("GET", "/stats")["requests"] if r["route"] == route)


def test_a_package_assigned_in_vcita_is_created_outside_and_remote_drift(
        workdir: Path, applied: dict[str, str], cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    operator("DELETE", "/stats")
    assert cli("drift")[0] == 0
    assert _hits(operator, LIST) == 1  # one paged listing, business-wide
    assert _hits(operator, "/business/payments/v1/client_packages/{uid}") == 8  # the refresh's reads only
    state = json.loads((workdir / "manifests/.reconciler/state.json").read_text())
    alice = state["resources"]["client_package.alice-piano"]["applied"]["client_id"]
    outside = _assign(operator, demo, applied["catalog_package.piano-10"], [alice])
    unmanaged_pkg = operator("POST", "/bulk/packages", json={"business_id": demo["business"]["id"], "count": 1})["ids"][0]
    _assign(operator, demo, unmanaged_pkg, [alice])  # a catalog package reconciler does not manage

    code, out, err = cli("drift")
    assert code == 2, out + err
    assert "Created outside reconciler" in out and f"client_package.(untracked {outside})" in out
    assert "reconciler import --discover" in out
    code, out, _ = cli("drift", "--format", "json")
    report = json.loads(out)
    assert report["summary"]["created_outside"] == 1 and report["verdict"] == "drift" and report["exit_code"] == 2
    [obj] = [o for o in report["objects"] if o["status"] == "created_outside"]
    assert obj["remote_id"] == outside
    assert "searched 10 of the business's payment requests" in report["second_memory"]


def test_drift_without_the_second_memory_says_so(
        workdir: Path, applied: dict[str, str], cli: CLI, operator: Any) -> None:
    operator("POST", "/faults", json={"path": LIST, "door": "*", "status": 404})
    code, out, err = cli("drift")
    assert code == 0, out + err
    assert "Second memory: client packages created outside reconciler cannot be seen" in out

"""Creates an interrupted run left pending are resolved by the plan, shown, then carried out.

Against the served sandbox through the CLI: a catalog create whose answer was lost (it was
executed) is adopted, one that never executed is sent again, each exactly once; a saved plan made
before an interrupted run is refused where that run left a create pending; a saved plan whose
requests (or values) were edited is refused for that object, and nothing of it is sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

CLI = Callable[..., tuple[int, str, str]]
CATALOG_POST = {"method": "POST", "path": "/platform/v1/payment/packages", "door": "*", "times": 1}


def _catalog_names(sandbox: Any, demo: dict[str, Any]) -> list[str]:
    r = httpx.get(f"{sandbox.fallback_url}/platform/v1/payment/packages",
                  params={"per_page": 100, "page": 1},
                  headers={"Authorization": f"Bearer {demo['tokens']['staff']}"}, timeout=10)
    r.raise_for_status()
    return [p["name"] for p in r.json()["data"]["packages"]]


def _client_packages(operator: Any, demo: dict[str, Any]) -> list[dict[str, Any]]:
    got = operator("GET", f"/client_packages?business_id={demo['business']['id']}")
    return got["client_packages"] if isinstance(got, dict) else got


def _outcome(out: str, address_prefix: str, says: str) -> str:
    """The address of the apply outcome line that starts with ``address_prefix`` and says ``says``."""
    found = [line.split(":")[0] for line in out.splitlines() if line.startswith(address_prefix) and says in line]
    assert len(found) == 1, out
    return found[0]


def _open_intents(workdir: Path) -> list[str]:
    """The addresses of the creates the state records as pending."""
    state = workdir / "manifests" / ".reconciler" / "state.json"
    return sorted(pc["address"] for pc in json.loads(state.read_text())["pending"].values())


def test_a_lost_catalog_create_is_adopted_as_the_plan_says(
        workdir: Path, cli: CLI, operator: Any, sandbox: Any, demo: dict[str, Any]) -> None:
    operator("POST", "/faults", json={**CATALOG_POST, "drop_after_commit": True})
    code, out, _ = cli("apply", "--auto-approve")
    assert code == 1
    lost = _outcome(out, "catalog_package.", "unknown outcome")
    assert _open_intents(workdir) == [lost]

    code, out, _ = cli("plan", "--detailed-exitcode", "--format", "json")
    assert code == 2
    ops = [op for op in json.loads(out)["operations"] if op["address"] == lost]
    assert [(op["op"], op.get("resolution")) for op in ops] == [("resolve_pending_create", "adopt")]
    code, text, _ = cli("plan")
    assert f"  # {lost} was created by an interrupted run that never heard back: it will be adopted" in text

    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert f"{lost}: created {ops[0]['remote_id']} (by an interrupted run)" in out
    assert f"{lost}: an interrupted run had created {ops[0]['remote_id']}; adopted it" in err
    names = _catalog_names(sandbox, demo)
    assert len(names) == len(set(names)) == 3  # adopted, never created twice
    assert _open_intents(workdir) == []
    assert cli("plan", "--detailed-exitcode")[0] == 0


def test_a_create_that_never_reached_vcita_is_sent_again_as_the_plan_says(
        workdir: Path, cli: CLI, operator: Any, sandbox: Any, demo: dict[str, Any]) -> None:
    operator("POST", "/faults", json={**CATALOG_POST, "status": 500})  # answered before executing
    code, out, _ = cli("apply", "--auto-approve")
    assert code == 1
    lost = _outcome(out, "catalog_package.", "unknown outcome")
    assert len(_catalog_names(sandbox, demo)) == 2

    code, out, _ = cli("plan", "--format", "json")
    ops = [op for op in json.loads(out)["operations"] if op["address"] == lost]
    assert [(op["op"], op.get("resolution")) for op in ops] == [
        ("resolve_pending_create", "not_created"), ("create_catalog_package", None)]

    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert f"{lost}: an interrupted create had not reached vcita; it will be sent again" in err
    assert f"{lost}: created " in out
    names = _catalog_names(sandbox, demo)
    assert len(names) == len(set(names)) == 3
    assert _open_intents(workdir) == []


def test_a_saved_plan_is_refused_where_an_interrupted_run_left_a_create_pending(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("plan", "--out", "plan.json")[0] == 0
    operator("POST", "/faults", json={"method": "POST", "path": "/platform/v1/payment/client_packages",
                                       "door": "*", "drop_after_commit": True, "times": 1})
    code, out, _ = cli("apply", "plan.json")
    assert code == 1
    pending = _outcome(out, "client_package.", "unknown outcome")
    made = len(_client_packages(operator, demo))

    code, out, err = cli("apply", "plan.json")  # the interrupted run moved the state on: a new plan is needed
    assert code == 1
    assert "the state changed since this plan was made" in err and "1 create(s) an interrupted run left pending" in err
    assert "it shows how each pending create is resolved" in err
    assert len(_client_packages(operator, demo)) == made  # nothing created twice

    code, out, _ = cli("plan")  # a new plan says what apply will do about it: the second memory found it
    assert code == 0 and f"{pending}" in out and "adopted" in out, out
    operator("POST", "/faults", json={"path": "/business/payments/v1/payment_requests", "status": 404})
    code, out, _ = cli("plan")  # and without the second memory, a person decides
    assert f"  # {pending} has a create pending from an interrupted run, of unknown outcome" in out
    assert f"reconciler import {pending} UID" in out


def test_a_saved_plan_whose_request_or_values_were_edited_is_refused_for_that_object(
        workdir: Path, cli: CLI, sandbox: Any, demo: dict[str, Any]) -> None:
    assert cli("plan", "--out", "plan.json")[0] == 0
    raw = json.loads((workdir / "plan.json").read_text())
    ops = {op["address"]: op for op in raw["operations"]}
    ops["catalog_package.piano-10"]["requests"][0]["body"]["price"] = 1  # what a reviewer would see
    ops["catalog_package.guitar-5"]["spec"]["price"] = 2  # what would be sent
    (workdir / "plan.json").write_text(json.dumps(raw))
    code, out, err = cli("apply", "plan.json")  # the seal over the whole file refuses any edit
    assert code == 1 and "does not match its seal" in err and _catalog_names(sandbox, demo) == []

    # A forger who recomputes the seal still meets the per-object check of what would be sent.
    from reconciler.plan.document import SEAL_KEY, _canonical_digest
    raw[SEAL_KEY] = _canonical_digest({k: v for k, v in raw.items() if k != SEAL_KEY})
    (workdir / "plan.json").write_text(json.dumps(raw))
    code, out, _ = cli("apply", "plan.json")
    assert code == 1
    for address in ("catalog_package.piano-10", "catalog_package.guitar-5"):
        assert f"{address}: the plan shows POST /platform/v1/payment/packages for {address}, which is not what " \
               "this reconciler sends for it" in out
    assert "client_package.alice-piano: skipped: catalog_package.piano-10 did not succeed" in out
    assert "catalog_package.complete-musician: created " in out  # the others are applied
    assert sorted(_catalog_names(sandbox, demo)) == ["Complete Musician (1 year)"]


def test_credits_for_an_item_the_package_lacks_fail_before_any_update_is_sent(
        workdir: Path, cli: CLI, operator: Any, sandbox: Any, demo: dict[str, Any]) -> None:
    # A package not managed here (referenced by id), so the manifest check cannot see its items.
    piano, theory = demo["services"][0]["id"], "qbcpk3h45ttdq5ec"
    assert piano != theory
    r = httpx.post(f"{sandbox.gateway_url}/platform/v1/payment/packages", timeout=10,
                   headers={"Authorization": f"Bearer {demo['tokens']['staff']}"},
                   json={"name": "Outside", "price": 5, "currency": "USD", "expiration": 1, "expiration_unit": "M",
                         "items": [{"total_bookings": 1, "services": [{"id": piano}]}], "products": []})
    r.raise_for_status()
    outside = r.json()["data"]["package"]["id"]
    (workdir / "manifests" / "extra.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: ClientPackage\nmetadata: {name: zoe-outside}\n"
        f"spec: {{client: {demo['clients'][0]['id']}, package: {{id: {outside}}},\n"
        f"       booking_credits: [{{services: [{piano}], total_bookings: 2}}, {{services: [{theory}], "
        "total_bookings: 3}]}\n")
    operator("DELETE", "/stats")
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err
    line = next(line for line in out.splitlines() if line.startswith("client_package.zoe-outside:"))
    assert line.startswith("client_package.zoe-outside: failed: created "), line
    assert "then client package " in line and f"has no booking credit for services [['{theory}']]" in line
    puts = [r for r in operator("GET", "/stats")["requests"]
            if r["method"] == "PUT" and "client_packages" in r["route"]]
    assert sum(r["count"] for r in puts) == 1  # chloe's credits; none for zoe's, not even the one it has

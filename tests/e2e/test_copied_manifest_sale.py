"""A copied manifest is not a second sale nobody asked for (the sibling half of the second-sale
rule, ``planner/siblings.py``), through the CLI against the served sandbox.

Copying ``alice-lessons.yaml`` to ``alice-lessons-2.yaml`` (a new name, the same client and
catalog package) used to create both on a first apply: alice billed twice.  Now the plan refuses
the copy, located at its file and line, exits 1, and neither plan nor apply sends anything; with
``repeat_purchase: true`` on the copy both are created, one payment request each.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
ALICE = "ktsrl7f6h94run82"
CREATE = "/platform/v1/payment/client_packages"
LESSONS = """apiVersion: reconciler/v1
kind: ClientPackage
metadata:
  name: alice-lessons
spec:
  client: ktsrl7f6h94run82                # Alice Martin
  package: guitar-5
"""


def _payment_requests(sandbox: Any, demo: dict[str, Any], client: str) -> list[dict[str, Any]]:
    """Alice's payment requests for client packages, as vcita lists them."""
    r = httpx.get(f"{sandbox.fallback_url}/business/payments/v1/payment_requests",
                  params={"filter[client_uid][eq]": client, "filter[entity_type][in]": "ClientBookingPackage",
                          "per_page": 100},
                  headers={"Authorization": f"Bearer {demo['tokens']['staff']}"}, timeout=10)
    r.raise_for_status()
    requests: list[dict[str, Any]] = r.json()["data"]["payment_requests"]
    return requests


def _creates_sent(operator: Any) -> int:
    return sum(r["count"] for r in operator("GET", "/stats")["requests"]
               if r["route"] == CREATE and r["method"] == "POST")


def test_a_copied_manifest_is_refused_until_it_says_repeat_purchase(
        workdir: Path, cli: CLI, operator: Any, sandbox: Any, demo: dict[str, Any]) -> None:
    manifests = workdir / "manifests"
    (manifests / "alice-lessons.yaml").write_text(LESSONS)
    copy = manifests / "alice-lessons-2.yaml"
    copy.write_text("# a copy: next term's lessons\n" + LESSONS.replace("name: alice-lessons", "name: alice-lessons-2"))

    code, out, err = cli("plan")
    assert code == 1, out + err
    assert ("Error: client_package.alice-lessons-2: declared at manifests/alice-lessons-2.yaml:2: the same client "
            f"{ALICE} and catalog package ") in out, out
    assert ("as client_package.alice-lessons (manifests/alice-lessons.yaml:1), also new in this plan: a second sale "
            "of this package to this client") in out
    assert "add 'repeat_purchase: true' to the copy's spec (client_package.alice-lessons-2)" in out
    assert "1 error(s) above must be fixed before this plan can be applied." in out
    assert "# client_package.alice-lessons-2 " not in out  # nothing planned for the copy

    code, out, err = cli("plan", "--format", "json")
    assert code == 1
    saved = json.loads(out)
    assert [(p["address"], p["severity"]) for p in saved["problems"]] == [("client_package.alice-lessons-2", "error")]
    assert "client_package.alice-lessons-2" not in {op["address"] for op in saved["operations"]}
    assert saved["payment_requests"]["count"] == 9  # the eight of the demo manifests and alice-lessons

    # apply plans again and refuses a plan with errors, and so it does a saved one: nothing is
    # sent, nothing is created
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err
    assert "a second sale of this package to this client" in out + err
    assert cli("plan", "--out", "plan.json")[0] == 1
    code, out, err = cli("apply", "plan.json", "--auto-approve")
    assert code == 1 and "the plan has 1 error(s) that must be fixed first" in out + err, out + err
    assert _creates_sent(operator) == 0
    assert client_packages(operator, demo) == [] and _payment_requests(sandbox, demo, ALICE) == []
    assert not (manifests / ".reconciler" / "state.json").exists() or \
        not json.loads((manifests / ".reconciler" / "state.json").read_text())["resources"]

    copy.write_text(copy.read_text().rstrip("\n") + "\n  repeat_purchase: true\n")
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 2, out + err
    assert "Payment requests: apply would open 10" in out
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    guitar = json.loads((manifests / ".reconciler" / "state.json").read_text())["resources"][
        "catalog_package.guitar-5"]["id"]
    alice_guitar = [cp for cp in client_packages(operator, demo) if (cp["client_id"], cp["package_id"]) ==
                    (ALICE, guitar)]
    assert len(alice_guitar) == 2 and len(client_packages(operator, demo)) == 10
    assert {pr["payable_uid"] for pr in _payment_requests(sandbox, demo, ALICE)} >= {cp["id"] for cp in alice_guitar}
    assert cli("plan", "--detailed-exitcode")[0] == 0


def test_a_plan_resumed_after_the_original_was_created_agrees(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    """The same copy, after the original alone was applied (a plan over one file, as an
    interrupted apply leaves it): still refused, with the tracked original named."""
    manifests = workdir / "manifests"
    (manifests / "alice-lessons.yaml").write_text(LESSONS)
    assert cli("apply", "--auto-approve")[0] == 0
    before = len(client_packages(operator, demo))
    (manifests / "alice-lessons-2.yaml").write_text(LESSONS.replace("name: alice-lessons", "name: alice-lessons-2"))
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1 and "client_package.alice-lessons (" in out + err, out + err
    assert "a second sale of this package to this client" in out + err
    assert len(client_packages(operator, demo)) == before


def test_no_order_of_partial_plans_creates_both_copies(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    """A person who plans a subset: the copy alone (--only) is the only new object of that plan,
    and is created; every later plan, whole or partial, refuses the other one."""
    manifests = workdir / "manifests"
    (manifests / "alice-lessons.yaml").write_text(LESSONS)
    (manifests / "alice-lessons-2.yaml").write_text(LESSONS.replace("name: alice-lessons", "name: alice-lessons-2"))
    code, out, err = cli("apply", "--auto-approve", "--only", "client_package.alice-lessons-2")
    assert code == 0, out + err
    assert len(client_packages(operator, demo)) == 1
    code, out, err = cli("apply", "--auto-approve", "--only", "client_package.alice-lessons")
    assert code == 1 and "as client_package.alice-lessons-2, tracked outside the paths of this plan" in out + err
    assert "repeat_purchase: true" in out + err
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1 and "as client_package.alice-lessons-2 (" in out + err, out + err
    assert "a second sale of this package to this client" in out + err
    assert len(client_packages(operator, demo)) == 1

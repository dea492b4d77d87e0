"""Two runners, each with its own state (two CI jobs that started empty, two branches), plan the
same manifests against one business before either applies; one applies, then the other applies
its saved plan.  Both plans create the catalog packages too, so the second plan's client packages
point at catalog packages it would create itself: their identities (client, catalog package id)
cannot match what the first runner made, and only the catalog packages' names, and the names of
the packages sold, tell that the sales were made already.  The second apply must refuse before it
sends anything.  Served sandbox, through the CLI.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]


def _sold(operator: Any, demo: dict[str, Any]) -> Counter[tuple[str, str]]:
    return Counter((cp["client_id"], cp["name"]) for cp in client_packages(operator, demo))


def _two_plans(workdir: Path, cli: CLI) -> Path:
    """Runner A's plan (plan-a.json, state under manifests/) and runner B's (plan-b.json, its own
    copy of the manifests and its own state under runner-b/), both made before anything is applied."""
    runner_b = workdir / "runner-b"
    shutil.copytree(workdir / "manifests", runner_b / "manifests")
    code, out, err = cli("plan", "--out", "plan-a.json")
    assert code == 0 and "Plan: 11 to create" in out, out + err  # 3 catalog + 8 client packages
    code, out, err = cli("plan", "--out", "plan-b.json", str(runner_b / "manifests"))
    assert code == 0, out + err
    assert "catalog_package.piano-10" in out and "client_package.alice-piano" in out
    return runner_b


def test_a_second_runners_saved_plan_that_also_creates_the_catalog_is_refused_and_bills_nobody_twice(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    runner_b = _two_plans(workdir, cli)
    code, out, err = cli("apply", "plan-a.json")
    assert code == 0, out + err
    sold = _sold(operator, demo)
    assert sum(sold.values()) == 8 and max(sold.values()) == 1

    operator("DELETE", "/stats")
    code, out, err = cli("apply", "plan-b.json", str(runner_b / "manifests"))
    assert code == 1, out + err
    said = out + err
    assert ("since this plan was made, vcita got 3 of the catalog packages and 8 of the client packages it "
            "would create") in said, said
    assert "catalog_package.piano-10 (named " in said and "client_package.alice-piano (" in said, said[:2000]
    assert "reconciler import --discover" in said
    stats = operator("GET", "/stats")
    assert not [r for r in stats["requests"] if r["method"] != "GET"], stats  # refused before any write
    assert _sold(operator, demo) == sold
    state_b = runner_b / "manifests" / ".reconciler" / "state.json"
    assert not state_b.exists() or '"pending": {}' in state_b.read_text()

    # the way out it names: adopt what runner A made, and runner B has nothing left to do
    code, out, err = cli("import", "--discover", "--manifests", str(runner_b / "manifests"))
    assert code == 0, out + err
    code, out, err = cli("plan", "--detailed-exitcode", str(runner_b / "manifests"))
    assert code == 0, out + err
    assert _sold(operator, demo) == sold


def test_the_second_runner_is_refused_even_while_the_catalog_list_lags(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    # vcita's catalog list shows a new package only after a while (API-NOTES: ~20 s): runner A's
    # catalog packages are not listed yet when B applies, so their names alone cannot tell; the
    # packages A sold are, through the payment requests (opened after B's plan, of those names).
    runner_b = _two_plans(workdir, cli)
    lag = operator("GET", "/settings")["list_lag_seconds"]
    operator("PUT", "/settings", json={"list_lag_seconds": 300})
    try:
        code, out, err = cli("apply", "plan-a.json")
        assert code == 0, out + err
        sold = _sold(operator, demo)
        assert sum(sold.values()) == 8
        code, out, err = cli("apply", "plan-b.json", str(runner_b / "manifests"))
        assert code == 1, out + err
        said = out + err
        assert "since this plan was made, vcita got 8 of the client packages it would create" in said, said
        assert "catalog packages" not in said.split("would create")[0]  # the list did not show them
        assert _sold(operator, demo) == sold
    finally:
        operator("PUT", "/settings", json={"list_lag_seconds": lag})


def test_a_sale_of_that_name_made_long_before_the_plan_does_not_block_it(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    # The re-check looks for what appeared since the plan was made, not for any package of the
    # name: clients sold these packages two days ago, under catalog packages renamed since and
    # unknown to a fresh state, are no sign of another runner (the planner sells again: its call).
    assert cli("apply", "--auto-approve")[0] == 0
    state = json.loads((workdir / "manifests" / ".reconciler" / "state.json").read_text())
    shutil.rmtree(workdir / "manifests" / ".reconciler")
    old = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    for cp in client_packages(operator, demo):
        operator("PATCH", f"/objects/payment_requests/{cp['payment_request_id']}", json={"created_at": old})
    for address, rs in state["resources"].items():
        if address.startswith("catalog_package."):
            doc = operator("GET", f"/objects/packages/{rs['id']}")["doc"]
            operator("PATCH", f"/objects/packages/{rs['id']}", json={"name": doc["name"] + " (2025)"})
    sold = _sold(operator, demo)
    code, out, err = cli("plan", "--out", "plan.json", "--confirm-no-prior-client-packages")
    assert code == 0 and "Plan: 11 to create" in out, out + err
    code, out, err = cli("apply", "plan.json")
    assert code == 0, out + err
    assert sum(_sold(operator, demo).values()) == 2 * sum(sold.values())


def _reprice_alice(workdir: Path, price: int, manifests: Path | None = None) -> None:
    path = (manifests or workdir / "manifests") / "client-packages.yaml"
    text = path.read_text()
    old = "  client: ktsrl7f6h94run82                # Alice Martin\n  package: piano-10\n"
    assert old in text
    path.write_text(text.replace(old, old + f"  price: {price}\n"))


def _alice(operator: Any, demo: dict[str, Any]) -> list[dict[str, Any]]:
    return [cp for cp in client_packages(operator, demo) if cp["client_id"] == "ktsrl7f6h94run82"]


def test_a_replacement_made_already_with_another_copy_of_the_state_is_not_made_again(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    # A price change forces a replacement (a new client package: a new payment request).  One
    # runner applies it; another, holding an older copy of the state (a second checkout, a state
    # restored from its backup), still tracks the old package and would replace it again.
    assert cli("apply", "--auto-approve")[0] == 0
    state = workdir / "manifests" / ".reconciler" / "state.json"
    path = workdir / "manifests" / "client-packages.yaml"
    older = state.read_text()
    _reprice_alice(workdir, 499)
    code, out, err = cli("apply", "--auto-approve", "--allow-replace")
    assert code == 0 and "replaced" in out, out + err
    assert len(_alice(operator, demo)) == 2  # the old package stays in vcita (no delete)
    made = json.loads(state.read_text())["resources"]["client_package.alice-piano"]["id"]

    state.write_text(older)
    code, out, err = cli("plan", "--allow-replace")
    assert code == 1, out + err
    assert f"already exists in vcita as {made}" in out + err and "replacing again would bill" in out + err
    assert f"reconciler import client_package.alice-piano {made}" in out + err
    assert cli("apply", "--auto-approve", "--allow-replace")[0] == 1
    assert len(_alice(operator, demo)) == 2
    # the way out it names: track the replacement instead of the old package
    old_id = json.loads(older)["resources"]["client_package.alice-piano"]["id"]
    assert cli("state", "rm", "client_package.alice-piano", "--yes")[0] == 0
    code, out, err = cli("import", "client_package.alice-piano", made)
    assert code == 0, out + err
    assert cli("plan", "--detailed-exitcode")[0] == 0
    assert old_id in json.loads(state.read_text())["archived"]
    # a later replacement of the same package is this state's own: the packages alice was moved
    # away from (the first, archived; the first replacement's, untracked) are not that identity
    text = path.read_text()
    path.write_text(text.replace("  price: 499\n", "  price: 450\n"))
    code, out, err = cli("apply", "--auto-approve", "--allow-replace")
    assert code == 0 and f"replaced {made} by " in out, out + err
    assert len(_alice(operator, demo)) == 3


def test_a_saved_replacement_is_refused_when_another_runner_replaced_meanwhile(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    runner_b = workdir / "runner-b"
    shutil.copytree(workdir / "manifests", runner_b / "manifests")
    _reprice_alice(workdir, 499)
    _reprice_alice(workdir, 499, runner_b / "manifests")
    assert cli("plan", "--allow-replace", "--out", "plan-a.json")[0] == 0
    code, out, err = cli("plan", "--allow-replace", "--out", "plan-b.json", str(runner_b / "manifests"))
    assert code == 0 and "1 to replace" in out, out + err
    assert cli("apply", "plan-a.json")[0] == 0
    code, out, err = cli("apply", "plan-b.json", str(runner_b / "manifests"))
    assert code == 1, out + err
    assert "since this plan was made, vcita got 1 of the client packages it would create" in out + err
    assert len(_alice(operator, demo)) == 2


def test_replacing_the_same_package_again_is_not_taken_for_another_runs_replacement(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    # The package a replacement leaves behind stays in vcita, untracked (no delete): the next
    # replacement of the same manifest object must not take it for another run's replacement.
    assert cli("apply", "--auto-approve")[0] == 0
    path = workdir / "manifests" / "client-packages.yaml"
    for price in (499, 450):
        text = path.read_text().replace("  price: 499\n", "")
        path.write_text(text)
        _reprice_alice(workdir, price)
        # the second time through a saved plan: its re-check before apply matches the same way
        assert cli("plan", "--allow-replace", "--out", "plan.json")[0] == 0
        code, out, err = cli("apply", "plan.json")
        assert code == 0 and "client_package.alice-piano: replaced" in out, out + err
    assert len(_alice(operator, demo)) == 3  # the first, and one per replacement: none made twice
    assert cli("plan", "--detailed-exitcode")[0] == 0

"""A replacement keeps its memory of the client package it replaces.

vcita cannot delete a client package: the one a replacement replaces stays in vcita with its
payment request.  The state archives it (``replaced by NEW``), so reconciler still knows it is its
own: ``drift`` does not call it "created outside reconciler", and changing the manifest back to
the old identity (a price changed back) is refused instead of replaced a second time (a third
payment request for one sale), with the way back to the old package (``state rm``, then the plan
re-adopts it).  Served sandbox, through the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
ALICE = "ktsrl7f6h94run82"
HEAD = f"  client: {ALICE}                # Alice Martin\n  package: piano-10\n"


def _price_alice(workdir: Path, price: int | None, *, repeat: bool = False) -> None:
    path = workdir / "manifests" / "client-packages.yaml"
    text = path.read_text()
    start = text.index(HEAD) + len(HEAD)
    end = text.index("---", start)
    lines = (f"  price: {price}\n" if price is not None else "") + ("  repeat_purchase: true\n" if repeat else "")
    path.write_text(text[:start] + lines + text[end:])


def _alice(operator: Any, demo: dict[str, Any]) -> list[dict[str, Any]]:
    return [cp for cp in client_packages(operator, demo) if cp["client_id"] == ALICE]


def _state(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / "manifests" / ".reconciler" / "state.json").read_text())


def _replace_once(workdir: Path, cli: CLI) -> tuple[str, str]:
    """Apply the manifests, then reprice alice to 499 (a replacement); the old and the new id."""
    assert cli("apply", "--auto-approve")[0] == 0
    old = _state(workdir)["resources"]["client_package.alice-piano"]["id"]
    _price_alice(workdir, 499)
    code, out, err = cli("apply", "--auto-approve", "--allow-replace")
    assert code == 0 and f"replaced {old} by " in out, out + err
    new = _state(workdir)["resources"]["client_package.alice-piano"]["id"]
    return old, new


def _replace_unanswered(workdir: Path, cli: CLI, operator: Any) -> str:
    """Apply the manifests, reprice alice to 499, and make the sandbox execute creates but answer
    them unreadably (the replacement's outcome unknown); alice's id before it."""
    assert cli("apply", "--auto-approve")[0] == 0
    old = _state(workdir)["resources"]["client_package.alice-piano"]["id"]
    _price_alice(workdir, 499)
    operator("POST", "/faults", json={"method": "POST", "path": "/platform/v1/payment/client_packages",
                                      "strip_fields": ["client_id"]})
    return str(old)


def test_the_replaced_package_is_archived_in_the_write_that_tracks_its_replacement(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    old, new = _replace_once(workdir, cli)
    state = _state(workdir)
    assert old != new and state["pending"] == {}
    record = state["archived"][old]
    assert record["address"] == "client_package.alice-piano" and record["reason"] == f"replaced by {new}"
    assert record["identity"]["price"] == "540.00" or float(record["identity"]["price"]) == 540
    assert {cp["id"] for cp in _alice(operator, demo)} == {old, new}
    code, out, err = cli("drift")
    assert code == 0, out + err
    assert "0 created outside reconciler" in out + err
    code, out, _ = cli("state", "list")
    assert f"replaced by {new}" in out


def test_a_price_changed_back_is_refused_then_re_adopts_the_old_package(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    old, new = _replace_once(workdir, cli)
    _price_alice(workdir, 540)
    code, out, err = cli("plan", "--allow-replace")
    assert code == 1, out + err
    assert f"replacing {new} would make a new client package" in out + err
    assert f"vcita already holds one, archived in the state: {old} (replaced by {new}" in out + err
    assert "'reconciler state rm client_package.alice-piano'" in out + err
    code, out, err = cli("apply", "--auto-approve", "--allow-replace")
    assert code == 1, out + err
    assert len(_alice(operator, demo)) == 2  # nothing sold a third time
    # the way back it names: archive the replacement, and the object re-adopts the old package
    assert cli("state", "rm", "client_package.alice-piano", "--yes")[0] == 0
    code, out, err = cli("plan")
    assert code == 0 and "1 to re-adopt" in out and f"(id {old})" in out, out + err
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    state = _state(workdir)
    assert state["resources"]["client_package.alice-piano"]["id"] == old
    assert new in state["archived"] and old not in state["archived"]
    assert len(_alice(operator, demo)) == 2
    assert cli("plan", "--detailed-exitcode")[0] == 0


def test_a_saved_plan_made_before_the_replacement_cannot_replace_back(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    # Two replacements planned from one manifest history: 540 -> 499 applied; a plan saved at 540
    # again, reviewed, then applied.  The second replacement is refused at plan time already.
    old, _new = _replace_once(workdir, cli)
    _price_alice(workdir, 540)
    code, out, err = cli("plan", "--allow-replace", "--out", "back.json")
    assert code == 1 and old in out + err, out + err
    code, out, err = cli("apply", "back.json")
    assert code != 0, out + err  # a plan with errors is never applied
    assert len(_alice(operator, demo)) == 2


def test_a_repeat_purchase_may_replace_back_to_the_old_price(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    old, new = _replace_once(workdir, cli)
    _price_alice(workdir, 540, repeat=True)
    code, out, err = cli("apply", "--auto-approve", "--allow-replace")
    assert code == 0 and f"replaced {new} by " in out, out + err
    assert len(_alice(operator, demo)) == 3  # declared as a further sale: one more, shown as such
    assert {old, new} <= _state(workdir)["archived"].keys()


def test_a_replacement_whose_answer_was_lost_archives_the_old_package_when_it_is_adopted(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    old = _replace_unanswered(workdir, cli, operator)
    code, out, err = cli("apply", "--auto-approve", "--allow-replace")
    assert code == 1 and "1 unknown" in out, out + err  # vcita made it; its answer was unreadable
    assert len(_state(workdir)["pending"]) == 1
    operator("DELETE", "/faults")
    code, out, err = cli("apply", "--auto-approve", "--allow-replace")  # found through its payment request
    assert code == 0 and "0 to replace, 1 pending create(s) to resolve" in out, out + err  # not replaced again
    state = _state(workdir)
    new = state["resources"]["client_package.alice-piano"]["id"]
    assert new != old and state["pending"] == {}
    assert state["archived"][old]["reason"] == f"replaced by {new}"
    assert {cp["id"] for cp in _alice(operator, demo)} == {old, new}
    _price_alice(workdir, 540)
    code, out, err = cli("plan", "--allow-replace")
    assert code == 1 and f"archived in the state: {old}" in out + err, out + err


def test_a_lost_replacement_imported_by_hand_archives_the_old_package(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    # A target whose payment requests are no second memory: a person resolves the unknown outcome
    # with the import command the apply names.
    old = _replace_unanswered(workdir, cli, operator)
    operator("POST", "/faults", json={"path": "/business/payments/v1/payment_requests", "status": 404})
    code, out, err = cli("apply", "--auto-approve", "--allow-replace")
    assert code == 1, out + err
    new = next(cp["id"] for cp in _alice(operator, demo) if cp["id"] != old)
    assert f"'reconciler import client_package.alice-piano {new}'" in out, out + err
    code, out, err = cli("apply", "--auto-approve", "--allow-replace")
    assert code == 1 and len(_alice(operator, demo)) == 2, out + err  # held until a person resolves it
    code, out, err = cli("import", "client_package.alice-piano", new)
    assert code == 0, out + err
    state = _state(workdir)
    assert state["resources"]["client_package.alice-piano"]["id"] == new and state["pending"] == {}
    assert state["archived"][old]["address"] == "client_package.alice-piano"
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 0, out + err
    assert len(_alice(operator, demo)) == 2


def test_a_state_rebuilt_by_discovery_adopts_the_replacement_by_its_declared_price(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    # The state is lost after a replacement: vcita holds alice's old package (540) and its
    # replacement (499), the same client and catalog package.  Discovery took both for candidates
    # of alice-piano and adopted neither ("2 match"), and the plan then refused alice for ever.
    old, new = _replace_once(workdir, cli)
    import shutil

    shutil.rmtree(workdir / "manifests" / ".reconciler")
    code, out, err = cli("import", "--discover")
    assert code == 0, out + err
    state = _state(workdir)
    assert state["resources"]["client_package.alice-piano"]["id"] == new
    assert f"{old}: client {ALICE}" in out  # listed as matching no manifest object, left alone
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 0, out + err

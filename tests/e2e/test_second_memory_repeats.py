"""Repeat purchases under the second memory (issue 18's guard hole): a ``repeat_purchase: true``
object asks for one sale more than the state tracks, so a state restored from an older copy, or a
package assigned in the vcita UI, must not let it bill the client again.  The count rule
(``planner/memory.py``): for an identity, creating is refused while vcita holds client packages of
it that no record owns; ``reconciler import --discover`` adopts them deterministically (the
original takes the oldest payment request, the repeats the later ones), and only what is still
missing is created afterwards.  Served sandbox, through the CLI.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]


def _state_file(workdir: Path) -> Path:
    return workdir / "manifests" / ".reconciler" / "state.json"


def _tracked(workdir: Path) -> dict[str, str]:
    state = json.loads(_state_file(workdir).read_text())
    return {a: r["id"] for a, r in state["resources"].items() if a.startswith("client_package.")}


def _add_repeat(workdir: Path, name: str = "alice-piano-renewal") -> None:
    """Declare a second sale of alice's piano package (a renewal)."""
    clients = workdir / "manifests" / "client-packages.yaml"
    alice = clients.read_text().split("\n---\n")[0].replace("name: alice-piano", f"name: {name}")
    clients.write_text(clients.read_text().rstrip("\n") + "\n---\n" + alice.rstrip("\n") + "\n  repeat_purchase: true\n")


def _alice_piano(operator: Any, demo: dict[str, Any], workdir: Path) -> list[dict[str, Any]]:
    """Alice's piano packages in vcita, oldest first."""
    state = json.loads(_state_file(workdir).read_text()) if _state_file(workdir).exists() else None
    pkgs = client_packages(operator, demo)
    alice = "ktsrl7f6h94run82"
    piano = state["resources"]["catalog_package.piano-10"]["id"] if state else None
    return [cp for cp in pkgs if cp["client_id"] == alice and (piano is None or cp["package_id"] == piano)]


def _payment_request_order(operator: Any, ids: list[str]) -> list[str]:
    """``ids`` ordered by when their payment request was opened (the sandbox's own record)."""
    opened = {}
    for uid in ids:
        cp = operator("GET", f"/objects/client_packages/{uid}")["doc"]
        pr = operator("GET", f"/objects/payment_requests/{cp['payment_request_id']}")["doc"]
        opened[uid] = pr["created_at"]
    return sorted(ids, key=lambda uid: (opened[uid], uid))


def test_original_and_repeat_both_applied_state_restored_from_before_both(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve", "manifests/catalog-packages.yaml")[0] == 0
    older = workdir / "older-state.json"
    shutil.copy(_state_file(workdir), older)
    # the original, then the repeat, in two applies: in one, the two creates run at once and
    # which one vcita makes first (the oldest payment request, the original's on discovery) is chance
    assert cli("apply", "--auto-approve")[0] == 0
    _add_repeat(workdir)
    assert cli("apply", "--auto-approve")[0] == 0
    assert len(client_packages(operator, demo)) == 9
    applied = _tracked(workdir)
    shutil.copy(older, _state_file(workdir))  # the older copy comes back

    code, out, err = cli("plan")
    assert code == 1, out + err
    assert "client_package.alice-piano-renewal" in out + err and "This object is a repeat purchase" in out + err
    assert "2 client packages of the client ktsrl7f6h94run82" in out + err
    assert "reconciler import --discover" in out + err
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err
    assert len(client_packages(operator, demo)) == 9  # nothing sold again, the repeat included

    code, out, err = cli("import", "--discover")
    assert code == 0, out + err
    assert "9 client package(s) adopted" in out
    rebuilt = _tracked(workdir)
    assert rebuilt == applied  # the original takes the oldest request, the repeat the newer one
    older_first = _payment_request_order(operator, [applied["client_package.alice-piano"],
                                                    applied["client_package.alice-piano-renewal"]])
    assert older_first == [rebuilt["client_package.alice-piano"], rebuilt["client_package.alice-piano-renewal"]]
    assert cli("plan", "--detailed-exitcode")[0] == 0
    assert len(client_packages(operator, demo)) == 9


def test_state_restored_from_before_the_repeat_only_refuses_the_repeat(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    older = workdir / "older-state.json"
    shutil.copy(_state_file(workdir), older)
    _add_repeat(workdir)
    # a tracked original and an untracked repeat never applied: one more sale, exactly one
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 2 and "1 to create" in out, out + err
    assert cli("apply", "--auto-approve")[0] == 0
    assert len(client_packages(operator, demo)) == 9
    assert cli("plan", "--detailed-exitcode")[0] == 0
    renewal = _tracked(workdir)["client_package.alice-piano-renewal"]
    shutil.copy(older, _state_file(workdir))  # the state from before the repeat comes back

    code, out, err = cli("plan")
    assert code == 1, out + err
    assert f"already exists in vcita as {renewal}" in out + err and "This object is a repeat purchase" in out + err
    assert cli("apply", "--auto-approve")[0] == 1
    assert len(client_packages(operator, demo)) == 9
    code, out, err = cli("import", "--discover")
    assert code == 0 and "1 client package(s) adopted" in out, out + err
    assert _tracked(workdir)["client_package.alice-piano-renewal"] == renewal
    assert cli("plan", "--detailed-exitcode")[0] == 0
    assert len(client_packages(operator, demo)) == 9


def test_only_the_original_was_applied_the_original_adopts_and_the_repeat_is_created(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    # fewer packages in vcita than objects declared: adoption takes what exists, the plan makes the rest
    assert cli("apply", "--auto-approve")[0] == 0
    alice = _tracked(workdir)["client_package.alice-piano"]
    shutil.rmtree(workdir / "manifests" / ".reconciler")  # lost state
    _add_repeat(workdir, name="a-renewal")  # sorts before alice-piano: order by name must not decide
    code, out, err = cli("import", "--discover")
    assert code == 0, out + err
    tracked = _tracked(workdir)
    assert tracked["client_package.alice-piano"] == alice and "client_package.a-renewal" not in tracked
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 2 and "1 to create" in out, out + err
    assert cli("apply", "--auto-approve")[0] == 0
    assert len(_alice_piano(operator, demo, workdir)) == 2
    assert cli("plan", "--detailed-exitcode")[0] == 0


def test_a_package_assigned_in_the_vcita_ui_is_not_sold_again_as_a_repeat(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    tracked = _tracked(workdir)
    state = json.loads(_state_file(workdir).read_text())
    piano = state["resources"]["catalog_package.piano-10"]["id"]
    alice = state["resources"]["client_package.alice-piano"]["applied"]["client_id"]
    # someone sells alice one more piano package in the vcita UI (the operator stands in for it)
    ui = operator("POST", "/bulk/client_packages", json={"business_id": demo["business"]["id"], "client_ids": [alice],
                                                         "package_id": piano, "count": 1})["ids"][0]
    assert cli("plan", "--detailed-exitcode")[0] == 0  # nothing declared is missing: no create, no refusal
    _add_repeat(workdir)
    code, out, err = cli("plan")
    assert code == 1 and f"already exists in vcita as {ui}" in out + err, out + err
    assert cli("apply", "--auto-approve")[0] == 1
    assert len(client_packages(operator, demo)) == 9
    code, out, err = cli("import", "--discover")
    assert code == 0 and "1 client package(s) adopted" in out, out + err
    assert _tracked(workdir) == {**tracked, "client_package.alice-piano-renewal": ui}
    assert cli("plan", "--detailed-exitcode")[0] == 0
    assert len(client_packages(operator, demo)) == 9

"""A client package removed from the manifests, then added back with new terms, is not sold again.

Removing ``alice-piano`` archives its client package in the state; vcita keeps it (and its payment
request: there is no delete).  Adding the object back with its old terms re-adopts it.  Adding it
back with a *new* price or ``valid_from`` used to plan a plain create: a second sale of the same
package to the same client, with a new payment request, and no warning.  Removing and adding back
in one plan (a rename with a new price) was already refused (``planner/siblings.py``); across two
plans it is now refused too (``planner/identity.py``, ``readded_refused``), unless the object says
``repeat_purchase: true``, and the message names both ways out.  A record an earlier replacement
archived, whose replacement is still tracked, does not count: that one is the sale, and a new
object told apart from its manifest by price is a sale of its own, as before.  Served sandbox,
through the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
ALICE = "ktsrl7f6h94run82"
CLIENTS = Path("manifests") / "client-packages.yaml"


def _docs(workdir: Path) -> list[str]:
    return (workdir / CLIENTS).read_text().split("\n---\n")


def _alice_doc(workdir: Path) -> str:
    [doc] = [d for d in _docs(workdir) if "name: alice-piano\n" in d]
    return doc[doc.index("apiVersion"):].rstrip("\n")


def _remove_alice(workdir: Path) -> str:
    doc = _alice_doc(workdir)
    kept = [d for d in _docs(workdir) if "name: alice-piano\n" not in d]
    (workdir / CLIENTS).write_text("\n---\n".join(kept).rstrip("\n") + "\n")
    return doc


def _add(workdir: Path, doc: str, *lines: str) -> None:
    path = workdir / CLIENTS
    path.write_text(path.read_text().rstrip("\n") + "\n---\n" + doc + "".join(f"\n  {x}" for x in lines) + "\n")


def _state(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / "manifests" / ".reconciler" / "state.json").read_text())


def _alice(operator: Any, demo: dict[str, Any]) -> list[dict[str, Any]]:
    return [cp for cp in client_packages(operator, demo) if cp["client_id"] == ALICE]


def _removed(workdir: Path, cli: CLI) -> tuple[str, str]:
    """Apply the demo, then remove alice-piano (archived); its document and its id."""
    assert cli("apply", "--auto-approve")[0] == 0
    old = _state(workdir)["resources"]["client_package.alice-piano"]["id"]
    doc = _remove_alice(workdir)
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0 and "1 to archive" in out, out + err
    assert _state(workdir)["archived"][old]["reason"] == "no longer in the manifests"
    return doc, old


def test_added_back_with_a_new_price_is_refused_naming_the_ways_out(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    doc, old = _removed(workdir, cli)
    _add(workdir, doc, "price: 500")
    code, out, err = cli("plan")
    assert code == 1, out + err
    text = " ".join((out + err).split())
    assert f"the same client {ALICE}" in text and f"the client package {old} (price 540" in text
    assert "no longer in the manifests, last at client_package.alice-piano" in text
    assert "would be a second sale of this package to this client" in text
    assert "add 'repeat_purchase: true' to the spec of client_package.alice-piano" in text
    assert "declare the terms it had (price: 540" in text and f"re-adopts {old}" in text
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err
    assert len(client_packages(operator, demo)) == 8 and [cp["id"] for cp in _alice(operator, demo)] == [old]


def test_added_back_with_a_new_valid_from_in_a_saved_plan_is_refused(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    doc, _old = _removed(workdir, cli)
    _add(workdir, doc, "valid_from: 2027-06-01")
    code, out, err = cli("plan", "--out", "p.json")
    assert code == 1 and "second sale of this package to this client" in out + err, out + err
    assert cli("apply", "p.json")[0] != 0
    assert len(_alice(operator, demo)) == 1


def test_the_way_back_re_adopts_then_new_terms_are_a_reviewed_replacement(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    doc, old = _removed(workdir, cli)
    _add(workdir, doc)  # the terms left out: the archived package is re-adopted
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0 and f"re-adopted archived {old}" in out, out + err
    assert [cp["id"] for cp in _alice(operator, demo)] == [old]
    _remove_alice(workdir)
    _add(workdir, doc, "price: 500")  # tracked now: a change of price is a replacement, shown as one
    code, out, err = cli("plan")
    assert code == 0 and "1 to replace" in out and "--allow-replace" in out, out + err


def test_a_repeat_purchase_added_back_with_a_new_price_is_one_more_sale(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    doc, old = _removed(workdir, cli)
    _add(workdir, doc, "price: 500", "repeat_purchase: true")
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0 and "1 to create" in out, out + err
    assert len(_alice(operator, demo)) == 2
    assert old in _state(workdir)["archived"]


def test_a_set_member_added_back_with_a_price_of_its_own_is_refused(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    spring = ("apiVersion: reconciler/v1\nkind: ClientPackageSet\nmetadata:\n  name: spring\nspec:\n"
              "  package: guitar-5\n  clients:\n    - {CLIENTS}")
    _add(workdir, spring.replace("{CLIENTS}", ALICE))
    assert cli("apply", "--auto-approve")[0] == 0
    member = _state(workdir)["resources"][f'client_package_set.spring["{ALICE}"]']["id"]
    text = (workdir / CLIENTS).read_text()
    (workdir / CLIENTS).write_text(text.replace(f"    - {ALICE}", "    - xdbi6p16xrye9wo9"))
    assert cli("apply", "--auto-approve")[0] == 0  # alice leaves the set (archived), chloe joins
    text = (workdir / CLIENTS).read_text()
    (workdir / CLIENTS).write_text(text.replace("    - xdbi6p16xrye9wo9",
                                                f"    - xdbi6p16xrye9wo9\n    - {{id: {ALICE}, price: 99}}"))
    code, out, err = cli("plan")
    assert code == 1 and f"the client package {member}" in out + err, out + err
    assert "second sale of this package to this client" in out + err


def test_a_package_replaced_earlier_does_not_refuse_a_sale_told_apart_by_price(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    # alice-piano 540 -> 499 (the 540 one archived, replaced by the tracked 499 one): that chain's
    # sale is alice-piano, and a new object whose declared price tells it apart from alice-piano's
    # manifest is a sale of its own (the documented way to tell sales apart), as before
    assert cli("apply", "--auto-approve")[0] == 0
    doc = _remove_alice(workdir)
    _add(workdir, doc, "price: 499")
    code, out, err = cli("apply", "--auto-approve", "--allow-replace")
    assert code == 0 and "replaced" in out, out + err
    _add(workdir, doc.replace("name: alice-piano", "name: alice-piano-600"), "price: 600")
    code, out, err = cli("plan")
    assert code == 0 and "1 to create" in out, out + err

"""``drift --write-back`` on members of a ClientPackageSet (issue 19), against the served
sandbox: vcita's value goes into that member's own entry of the set's ``clients:`` list (comments
and formatting kept), never into the set's shared fields, which every other member reads; what a
member cannot say is left alone with a reason, and a refused edit writes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLI = Callable[..., tuple[int, str, str]]
GUITAR = "vtgltmqazx4tub48"
SET = f"""# Spring guitar offer.
apiVersion: reconciler/v1
kind: ClientPackageSet
metadata:
  name: spring-guitar
spec:
  package: guitar-5
  valid_from: 2027-03-01
  valid_for: 3M                               # ends 2027-06-01
  booking_credits:
    - services: [{GUITAR}]
      total_bookings: 6                       # one lesson offered
  clients:
    - ktsrl7f6h94run82                        # Alice Martin
    - {{email: isla.novak@example.com}}         # by e-mail
    - {{id: xdbi6p16xrye9wo9, price: 240}}      # Chloe: a returning-student price
"""
ALICE = 'client_package_set.spring-guitar["ktsrl7f6h94run82"]'
ISLA = 'client_package_set.spring-guitar["isla.novak@example.com"]'
CHLOE = 'client_package_set.spring-guitar["xdbi6p16xrye9wo9"]'


def _ids(workdir: Path) -> dict[str, str]:
    state = json.loads((workdir / "manifests" / ".reconciler" / "state.json").read_text())
    return {a: r["id"] for a, r in state["resources"].items()}


def _set_credit(operator: Any, rid: str, total: int) -> None:
    doc = operator("GET", f"/objects/client_packages/{rid}")["doc"]
    for credit in doc["booking_credits"]:
        if [i["item_id"] for i in credit["credit_items"]] == [GUITAR]:
            credit["total_bookings"] = total
    operator("PATCH", f"/objects/client_packages/{rid}", json={"booking_credits": doc["booking_credits"]})


def _applied_with_set(workdir: Path, cli: CLI) -> tuple[Path, dict[str, str]]:
    sets = workdir / "manifests" / "sets.yaml"
    sets.write_text(SET)
    code, out, err = cli("apply", "--auto-approve", "--no-verify")
    assert code == 0, out + err
    return sets, _ids(workdir)


def test_write_back_puts_a_members_values_in_its_own_entry(workdir: Path, cli: CLI, operator: Any) -> None:
    sets, ids = _applied_with_set(workdir, cli)
    assert cli("drift")[0] == 0
    operator("PATCH", f"/objects/client_packages/{ids[ALICE]}", json={"valid_until": "2027-07-15"})
    _set_credit(operator, ids[ISLA], 9)
    operator("PATCH", f"/objects/client_packages/{ids[CHLOE]}", json={"valid_until": "2027-08-01"})
    before = sets.read_text()

    code, out, err = cli("drift", "--write-back")
    assert code == 0, out + err
    assert "3 value(s) rewritten in 1 file(s)" in out, out
    changed = [(a, b) for a, b in zip(before.splitlines(), sets.read_text().splitlines(), strict=False) if a != b]
    assert changed == [  # a comment keeps its column when the longer line leaves room for it
        ("    - ktsrl7f6h94run82                        # Alice Martin",
         "    - {id: ktsrl7f6h94run82, valid_until: 2027-07-15} # Alice Martin"),
        ("    - {email: isla.novak@example.com}         # by e-mail",
         f"    - {{email: isla.novak@example.com, booking_credits: [{{services: [{GUITAR}], total_bookings: 9}}]}}"
         " # by e-mail"),
        ("    - {id: xdbi6p16xrye9wo9, price: 240}      # Chloe: a returning-student price",
         "    - {id: xdbi6p16xrye9wo9, price: 240, valid_until: 2027-08-01} # Chloe: a returning-student price"),
    ], changed
    assert len(sets.read_text().splitlines()) == len(before.splitlines())  # the shared fields untouched
    assert cli("validate")[0] == 0
    code, out, _ = cli("plan", "--detailed-exitcode")
    assert code == 0, out
    assert cli("drift")[0] == 0  # accepted: the baseline is vcita's now


def test_what_a_member_cannot_say_is_left_alone_and_nothing_is_written(
        workdir: Path, cli: CLI, operator: Any) -> None:
    sets, ids = _applied_with_set(workdir, cli)
    # Alice's client package moved to another client in vcita: the member's client is its key.
    operator("PATCH", f"/objects/client_packages/{ids[ALICE]}", json={"client_id": "s54w2lovttnns28v"})
    state = workdir / "manifests" / ".reconciler" / "state.json"
    text, state_before = sets.read_text(), state.read_bytes()
    code, out, err = cli("drift", "--write-back")
    assert code == 2, out + err
    assert f"not written: {ALICE} client_id: a member's client is its address in the set" in out, out
    assert sets.read_text() == text and state.read_bytes() == state_before


def test_a_member_named_by_only_is_the_only_one_written(workdir: Path, cli: CLI, operator: Any) -> None:
    sets, ids = _applied_with_set(workdir, cli)
    operator("PATCH", f"/objects/client_packages/{ids[ALICE]}", json={"valid_until": "2027-07-15"})
    operator("PATCH", f"/objects/client_packages/{ids[CHLOE]}", json={"valid_until": "2027-08-01"})
    code, out, err = cli("drift", "--write-back", "--only", CHLOE)
    assert code == 2, out + err  # Alice's drift is still reported
    text = sets.read_text()
    assert "{id: xdbi6p16xrye9wo9, price: 240, valid_until: 2027-08-01}" in text
    assert "    - ktsrl7f6h94run82                        # Alice Martin" in text
    code, out, _ = cli("drift")
    assert code == 2 and ALICE in out and CHLOE not in out


def test_a_members_start_moved_in_vcita_keeps_its_end_where_it_was(workdir: Path, cli: CLI, operator: Any) -> None:
    # The set's end is computed from valid_from (valid_for: 3M): writing the new start alone
    # would move the member's end too, so the end it has is written with it.
    sets, ids = _applied_with_set(workdir, cli)
    operator("PATCH", f"/objects/client_packages/{ids[ALICE]}", json={"valid_from": "2027-03-15"})
    code, out, err = cli("drift", "--write-back")
    assert code == 0, out + err
    assert "    - {id: ktsrl7f6h94run82, valid_from: 2027-03-15, valid_until: 2027-06-01} # Alice Martin" in \
        sets.read_text().splitlines()
    code, out, _ = cli("plan", "--detailed-exitcode")
    assert code == 0, out
    assert cli("drift")[0] == 0

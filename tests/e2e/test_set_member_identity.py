"""Set members, client identity and renames, attacked end to end against the served sandbox.

A client package whose client changes (an e-mail that now names another client in vcita, or a
client written anew) is replaced by a new one: a *new sale* to that client.  Beside a package of
the same catalog package that client already holds (tracked at another address, or tracked at
an address whose own client changed in the same plan: two e-mails swapped), that is a second
sale, refused as a new object would be, with the way out; never two packages of one catalog
package for one client without ``repeat_purchase: true``.  Each test counts what vcita holds.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
ALICE, DANIEL = "ktsrl7f6h94run82", "uqsdf813cr3u1hex"
ALICE_MAIL, DANIEL_MAIL = "alice.martin@example.com", "daniel.levi@example.com"


def _pairs(operator: Any, demo: dict[str, Any]) -> Counter[tuple[str, str]]:
    return Counter((cp["client_id"], cp["package_id"]) for cp in client_packages(operator, demo))


def _state(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / "manifests/.reconciler/state.json").read_text())


def _write(workdir: Path, text: str) -> None:
    (workdir / "manifests" / "client-packages.yaml").write_text(text)


def _set(*clients: str, name: str = "guitar-students") -> str:
    listed = "".join(f"\n    - {c}" for c in clients)
    return (f"apiVersion: reconciler/v1\nkind: ClientPackageSet\nmetadata:\n  name: {name}\n"
            f"spec:\n  package: guitar-5\n  clients:{listed}\n")


def _doc(name: str, client: str) -> str:
    return (f"\n---\napiVersion: reconciler/v1\nkind: ClientPackage\nmetadata:\n  name: {name}\n"
            f"spec:\n  client: {client}\n  package: guitar-5\n")


def _email(operator: Any, client_id: str, email: str) -> None:
    operator("PATCH", f"/objects/clients/{client_id}", json={"email": email})


def test_an_email_that_moves_to_a_client_holding_the_package_is_refused_not_sold_again(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    _write(workdir, _set(DANIEL) + _doc("alice-guitar", f"{{email: {ALICE_MAIL}}}"))
    assert cli("apply", "--auto-approve")[0] == 0
    before = _pairs(operator, demo)
    assert max(before.values()) == 1
    # vcita: alice's e-mail now belongs to daniel (clients merged in the UI), who holds guitar-5.
    _email(operator, ALICE, "alice.old@example.com")
    _email(operator, DANIEL, ALICE_MAIL)
    code, out, err = cli("apply", "--auto-approve", "--allow-replace")
    assert code == 1, out + err
    assert "a second sale of this package to this client" in out + err, out + err
    assert 'client_package_set.guitar-students["uqsdf813cr3u1hex"]' in out + err
    assert "that e-mail may now name another client" in out + err
    assert _pairs(operator, demo) == before  # nothing sent
    # The same edit by hand (the document's client written as daniel's id): refused the same way.
    _email(operator, DANIEL, DANIEL_MAIL)
    _email(operator, ALICE, ALICE_MAIL)
    _write(workdir, _set(DANIEL) + _doc("alice-guitar", DANIEL))
    code, out, err = cli("plan", "--allow-replace")
    assert code == 1 and "a second sale of this package to this client" in out + err, out + err
    # ... unless it says it is a further sale: one more payment request, as declared.
    _write(workdir, _set(DANIEL) + _doc("alice-guitar", DANIEL) + "  repeat_purchase: true\n")
    code, out, err = cli("apply", "--auto-approve", "--allow-replace")
    assert code == 0, out + err
    assert _pairs(operator, demo)[(DANIEL, _state(workdir)["resources"]["client_package.alice-guitar"]
                                   ["applied"]["package_id"])] == 2


def test_two_members_whose_emails_swapped_are_refused_and_state_mv_swaps_them(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    _write(workdir, _set(f"{{email: {ALICE_MAIL}}}", f"{{email: {DANIEL_MAIL}}}"))
    assert cli("apply", "--auto-approve")[0] == 0
    before = _pairs(operator, demo)
    _email(operator, ALICE, "swap@example.com")
    _email(operator, DANIEL, ALICE_MAIL)
    _email(operator, ALICE, DANIEL_MAIL)
    code, out, err = cli("apply", "--auto-approve", "--allow-replace")
    assert code == 1, out + err
    assert out.count("a second sale of this package to this client") + err.count(
        "a second sale of this package to this client") == 2, out + err
    assert "swapped clients" in out + err
    assert _pairs(operator, demo) == before  # neither client billed again
    a, d = (f'client_package_set.guitar-students["{m}"]' for m in (ALICE_MAIL, DANIEL_MAIL))
    for old, new in ((a, "client_package.swap-tmp"), (d, a), ("client_package.swap-tmp", d)):
        code, out, err = cli("state", "mv", old, new)
        assert code == 0, out + err
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 0, out + err
    assert _pairs(operator, demo) == before


def test_a_package_replaced_for_another_client_still_counts_for_its_own_client(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    _write(workdir, _doc("x", ALICE).removeprefix("\n---\n"))
    assert cli("apply", "--auto-approve")[0] == 0
    # x now names daniel: replaced, alice's package archived "replaced by" daniel's, and still alice's.
    _write(workdir, _doc("x", DANIEL).removeprefix("\n---\n"))
    assert cli("apply", "--auto-approve", "--allow-replace")[0] == 0
    before = _pairs(operator, demo)
    # A new object for alice on other terms is a second sale beside the package she still holds.
    _write(workdir, _doc("x", DANIEL).removeprefix("\n---\n") + _doc("y", ALICE) + "  price: 200\n")
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err
    assert "archived in the state and still held by vcita" in out + err, out + err
    assert _pairs(operator, demo) == before
    # Without other terms it is hers again: re-adopted, no payment request.
    _write(workdir, _doc("x", DANIEL).removeprefix("\n---\n") + _doc("y", ALICE))
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0 and "re-adopt" in out, out + err
    assert _pairs(operator, demo) == before


# --- attacks that hold, pinned ------------------------------------------------------------------


def test_one_client_in_two_sets_by_other_spellings_and_by_id_is_sold_once(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    before = _pairs(operator, demo)
    _write(workdir, _set("{email: ALICE.Martin@example.com}", DANIEL, name="a")
           + "---\n" + _set(f"{{email: {ALICE_MAIL}}}", "{email: daniel.levi@EXAMPLE.com}", ALICE, name="b"))
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err
    assert (out + err).count("a second sale of this package to this client") == 3, out + err
    assert _pairs(operator, demo) == before  # a refused plan sends nothing, the valid creates included
    _write(workdir, _set("{email: ALICE.Martin@example.com}", DANIEL, name="a"))
    assert cli("apply", "--auto-approve")[0] == 0
    # ... and once sold, the copies in another set are refused against the records.
    _write(workdir, _set("{email: ALICE.Martin@example.com}", DANIEL, name="a")
           + "---\n" + _set(ALICE, "{email: daniel.levi@EXAMPLE.com}", name="b"))
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1 and (out + err).count("a second sale of this package to this client") == 2, out + err
    assert max(_pairs(operator, demo).values()) == 1


def test_set_renamed_split_into_a_set_and_a_document_with_its_catalog_renamed_and_reordered_moves_only(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    _write(workdir, _set(f"{{email: {ALICE_MAIL}}}", DANIEL, "{email: ben.cohen@example.com, price: 100}"))
    assert cli("apply", "--auto-approve")[0] == 0
    ids = sorted(r["id"] for a, r in _state(workdir)["resources"].items() if a.startswith("client_package"))
    before = _pairs(operator, demo)
    catalog = workdir / "manifests" / "catalog-packages.yaml"
    catalog.write_text(catalog.read_text().replace("name: guitar-5", "name: guitar-lessons"))
    split = (_set(ALICE, f"{{email: {DANIEL_MAIL.upper()}}}", name="guitar-a").replace("guitar-5", "guitar-lessons")
             + "---\n" + _set("{email: ben.cohen@example.com, price: 100}", name="guitar-b")
             .replace("guitar-5", "guitar-lessons")
             + "---\napiVersion: reconciler/v1\nkind: CatalogOrder\nmetadata:\n  name: order\nspec:\n"
               "  packages: [guitar-lessons, piano-10, complete-musician]\n")
    _write(workdir, split)
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert "0 to create" in out and "4 to move" in out and "Payment requests: none would be opened" in out, out
    assert sorted(r["id"] for a, r in _state(workdir)["resources"].items()
                  if a.startswith("client_package")) == ids
    assert _pairs(operator, demo) == before


def test_a_lost_state_beside_sets_is_rebuilt_by_discovery_onto_member_addresses(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    _write(workdir, _set("{email: Alice.Martin@example.com}", DANIEL, "{email: ben.cohen@example.com, price: 100}")
           .replace("  clients:", "  valid_from: 2027-01-01\n  clients:")
           + _doc("alice-february", ALICE) + "  valid_from: 2027-02-01\n"
           + _doc("alice-renewal", f"{{email: {ALICE_MAIL}}}") + "  repeat_purchase: true\n")
    assert cli("apply", "--auto-approve")[0] == 0
    tracked = {a: r["id"] for a, r in _state(workdir)["resources"].items()}
    before = _pairs(operator, demo)
    (workdir / "manifests/.reconciler/state.json").unlink()
    (workdir / "manifests/.reconciler/state.json.backup").unlink(missing_ok=True)
    code, out, err = cli("import", "--discover")
    assert code == 0, out + err
    rebuilt = {a: r["id"] for a, r in _state(workdir)["resources"].items() if a.startswith("client_package")}
    assert rebuilt == {a: i for a, i in tracked.items() if a.startswith("client_package")}
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0 and "Payment requests: none would be opened" in out, out + err
    assert _pairs(operator, demo) == before


def test_a_member_email_its_address_cannot_hold_is_a_validation_error_not_an_apply_surprise(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    """The member pattern's \\s (pydantic's regex) misses \\x1c-\\x1f, which the state's address
    pattern refuses, and 'İ' lowers to two characters: validate passed such a set, and apply then
    skipped the member ("the state cannot be written"), after a plan that said it would create it."""
    before = _pairs(operator, demo)
    for email in ('"a\\x1cb@example.com"', "İ" * 240 + "@example.com"):
        stored = email.strip('"').replace("\\x1c", "\x1c")
        _email(operator, ALICE, stored)
        _write(workdir, _set(f"{{email: {email}}}"))
        code, out, err = cli("validate")
        assert code == 1 and "client-packages.yaml:8:" in out + err and "spec.clients[0].email" in out + err, out + err
        code, out, err = cli("apply", "--auto-approve")
        assert code == 1 and "Plan:" not in out, out + err
    assert _pairs(operator, demo) == before


def test_a_replacement_onto_a_client_who_still_holds_an_archived_package_of_it_is_refused(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    member = _set(DANIEL).replace("  clients:", "  valid_from: 2027-01-01\n  clients:")
    alice = _doc("x", ALICE).removeprefix("\n---\n") + "  valid_from: 2027-02-01\n"
    _write(workdir, member + "---\n" + alice)
    assert cli("apply", "--auto-approve")[0] == 0
    _write(workdir, alice)  # daniel leaves the set: his package is archived, and still his in vcita
    assert cli("apply", "--auto-approve")[0] == 0
    before = _pairs(operator, demo)
    _write(workdir, alice.replace(ALICE, DANIEL))
    code, out, err = cli("apply", "--auto-approve", "--allow-replace")
    assert code == 1, out + err
    assert "that client still holds a client package of it, archived in the state" in out + err, out + err
    assert _pairs(operator, demo) == before


def test_a_member_whose_email_changed_in_vcita_is_named_with_its_client_then_moves(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    _write(workdir, _set(f"{{email: {ALICE_MAIL}}}", DANIEL))
    assert cli("apply", "--auto-approve")[0] == 0
    before = _pairs(operator, demo)
    _email(operator, ALICE, "alice@new.example.com")
    code, out, err = cli("plan")
    assert code == 1 and f"no client with e-mail '{ALICE_MAIL}'" in out + err, out + err
    assert f"sold to client {ALICE}: if that client's e-mail changed in vcita" in out + err, out + err
    for client in ("{email: Alice@New.example.com}", ALICE):  # the new e-mail, then the UID: moves
        _write(workdir, _set(client, DANIEL))
        code, out, err = cli("apply", "--auto-approve")
        assert code == 0 and "1 to move" in out and "Payment requests: none would be opened" in out, out + err
    assert _pairs(operator, demo) == before

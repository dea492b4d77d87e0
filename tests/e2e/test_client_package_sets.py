"""ClientPackageSet (issue 19): one document, many client packages, each a member of its own.

Every flow runs the CLI against the served sandbox and counts what vcita holds afterwards: a
client is never billed twice, whatever moves between standalone documents and sets, and adding
or removing one client changes exactly that member.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
ALICE, DANIEL, FARID = "ktsrl7f6h94run82", "uqsdf813cr3u1hex", "farid.haddad@example.com"


def _one_each(operator: Any, demo: dict[str, Any]) -> int:
    pairs = Counter((cp["client_id"], cp["package_id"]) for cp in client_packages(operator, demo))
    assert max(pairs.values()) == 1, f"a client was billed twice: {pairs.most_common(3)}"
    return sum(pairs.values())


def _state(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / "manifests/.reconciler/state.json").read_text())


def _drop(text: str, *names: str) -> str:
    docs = text.split("\n---\n")
    kept = [d for d in docs if not any(re.search(rf"^  name: {n}$", d, flags=re.M) for n in names)]
    assert len(kept) == len(docs) - len(names)
    return "\n---\n".join(kept)


def _set(*clients: str, name: str = "piano-students", extra: str = "") -> str:
    listed = "".join(f"\n    - {c}" for c in clients)
    return (f"\n---\napiVersion: reconciler/v1\nkind: ClientPackageSet\nmetadata:\n  name: {name}\n"
            f"spec:\n  package: piano-10\n{extra}  clients:{listed}\n")


def member(key: str, name: str = "piano-students") -> str:
    return f'client_package_set.{name}["{key}"]'


def test_moving_client_packages_into_a_set_is_a_move_not_a_sale(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    before = {a: r["id"] for a, r in _state(workdir)["resources"].items()}
    clients = workdir / "manifests" / "client-packages.yaml"
    # daniel-piano has a price of its own (480): the member overrides the set's (none) with it.
    clients.write_text(_drop(clients.read_text(), "alice-piano", "daniel-piano", "farid-piano")
                       + _set(ALICE, f"{{id: {DANIEL}, price: 480}}", f"{{email: {FARID.upper()}}}"))
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 2, out + err
    assert "Plan: 0 to create, 0 to update, 0 to replace, 3 to move." in out, out
    assert "Payment requests: none would be opened" in out
    assert "renamed from client_package.alice-piano" in out
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    after = {a: r["id"] for a, r in _state(workdir)["resources"].items()}
    assert after[member(ALICE)] == before["client_package.alice-piano"]
    assert after[member(DANIEL)] == before["client_package.daniel-piano"]
    assert after[member(FARID)] == before["client_package.farid-piano"]  # the key is the e-mail, lower case
    assert cli("plan", "--detailed-exitcode")[0] == 0
    assert _one_each(operator, demo) == 8
    # ... and back out of the set: a move again.
    clients.write_text(clients.read_text().split("\n---\napiVersion: reconciler/v1\nkind: ClientPackageSet")[0]
                       + f"\n---\napiVersion: reconciler/v1\nkind: ClientPackage\nmetadata:\n  name: alice-2027\n"
                         f"spec:\n  client: {ALICE}\n  package: piano-10\n")
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert "1 to move" in out and "2 to archive" in out and "Payment requests: none would be opened" in out, out
    assert _state(workdir)["resources"]["client_package.alice-2027"]["id"] == before["client_package.alice-piano"]
    assert _one_each(operator, demo) == 8


def test_adding_and_removing_one_client_changes_exactly_one_member(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    clients = workdir / "manifests" / "client-packages.yaml"
    base = _drop(clients.read_text(), "alice-piano", "daniel-piano")
    extra = "  valid_from: 2027-03-01\n  valid_for: 3M\n"
    clients.write_text(base + _set(ALICE, DANIEL, extra=extra))
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    st = _state(workdir)["resources"]
    assert st[member(ALICE)]["applied"]["valid_until"] == "2027-06-01"  # from valid_from, not today
    ids = {a: r["id"] for a, r in st.items()}
    count = _one_each(operator, demo)
    # One more client: one create, one payment request; the others are untouched.
    clients.write_text(base + _set(ALICE, DANIEL, "{email: isla.novak@example.com}", extra=extra))
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert "Plan: 1 to create, 0 to update, 0 to replace." in out, out
    assert member("isla.novak@example.com") in out and "apply would open 1" in out
    assert _one_each(operator, demo) == count + 1
    # One client fewer: that member is archived, nothing else changes.
    clients.write_text(base + _set(ALICE, "{email: isla.novak@example.com}", extra=extra))
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert "1 to archive" in out and member(DANIEL) in out, out
    archived = _state(workdir)["archived"]
    assert archived[ids[member(DANIEL)]]["address"] == member(DANIEL)
    # Back again: re-adopted, never created a second time.
    clients.write_text(base + _set(ALICE, DANIEL, "{email: isla.novak@example.com}", extra=extra))
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert "1 to re-adopt" in out and "Payment requests: none would be opened" in out, out
    assert _state(workdir)["resources"][member(DANIEL)]["id"] == ids[member(DANIEL)]
    assert _one_each(operator, demo) == count + 1


def test_a_standalone_copy_of_a_set_member_is_refused_as_a_second_sale(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    clients = workdir / "manifests" / "client-packages.yaml"
    base = _drop(clients.read_text(), "alice-piano")
    clients.write_text(base + _set(ALICE))
    assert cli("apply", "--auto-approve")[0] == 0
    count = _one_each(operator, demo)
    clients.write_text(base + _set(ALICE) + f"\n---\napiVersion: reconciler/v1\nkind: ClientPackage\n"
                                            f"metadata:\n  name: alice-again\nspec:\n  client: {ALICE}\n"
                                            f"  package: piano-10\n")
    code, out, err = cli("apply", "--auto-approve")
    assert code != 0
    assert "a second sale of this package to this client" in out + err and member(ALICE) in out + err
    assert _one_each(operator, demo) == count


def test_state_mv_and_import_take_member_addresses(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    ids = {a: r["id"] for a, r in _state(workdir)["resources"].items()}
    clients = workdir / "manifests" / "client-packages.yaml"
    clients.write_text(_drop(clients.read_text(), "alice-piano", "daniel-piano")
                       + _set(ALICE, f"{{id: {DANIEL}, price: 480}}"))
    code, out, err = cli("state", "mv", "client_package.alice-piano", member(ALICE))
    assert code == 0, out + err
    code, out, err = cli("state", "mv", "client_package.daniel-piano", "client_package_set.x[daniel]")
    assert code != 0 and "client_package_set.NAME" in out + err  # refused: not an address
    code, out, err = cli("state", "rm", "--yes", "client_package.daniel-piano")
    assert code == 0, out + err
    listing = workdir / "onboarding.csv"
    listing.write_text(f"{member(DANIEL)},{ids['client_package.daniel-piano']}\n")
    code, out, err = cli("import", "--from", str(listing))
    assert code == 0, out + err
    code, out, err = cli("import", member("nobody"), "abc123")
    assert code != 0 and "no member of a ClientPackageSet" in out + err
    st = _state(workdir)["resources"]
    assert st[member(ALICE)]["id"] == ids["client_package.alice-piano"]
    assert st[member(DANIEL)]["id"] == ids["client_package.daniel-piano"]
    code, out, _ = cli("plan", "--detailed-exitcode")
    assert code == 0, out
    assert _one_each(operator, demo) == 8

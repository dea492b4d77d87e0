"""The second-sale rule gives the same verdict before and after the sale was created.

A copy of ``alice-piano`` (which declares no price) at ``price: 500`` is refused on the first
plan that holds both (the same client and catalog package; a field one leaves out matches any
value).  Once ``alice-piano`` was applied, its record carries vcita's price (540), and the copy
used to be compared with that record alone: 540 != 500, so it was planned as a create, a
second payment request for Alice without ``repeat_purchase``.  The same went for a rename
together with a new price (the old address archived, the new one created): a replacement that
``--allow-replace`` never had to accept.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]

ALICE = "ktsrl7f6h94run82"
COPY = """---
apiVersion: reconciler/v1
kind: ClientPackage
metadata:
  name: alice-piano-2
spec:
  client: ktsrl7f6h94run82
  package: piano-10
  price: 500
"""
ORIGINAL = "  name: alice-piano\nspec:\n  client: ktsrl7f6h94run82                # Alice Martin\n  package: piano-10\n"


def _alice(operator: Any, demo: dict[str, Any]) -> list[dict[str, Any]]:
    return [cp for cp in client_packages(operator, demo) if cp["client_id"] == ALICE]


def _state(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / "manifests/.reconciler/state.json").read_text())


def test_a_priced_copy_of_an_applied_client_package_is_refused_as_on_the_first_plan(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    clients = workdir / "manifests" / "client-packages.yaml"
    clients.write_text(clients.read_text() + COPY)
    code, out, err = cli("plan")
    assert code == 1 and "client_package.alice-piano-2" in out + err and "also new in this plan" in out + err, (code, err)
    # alice-piano alone is applied (a partial plan, or an apply made before the copy was added)
    code, out, err = cli("apply", "--auto-approve", "--only", "client_package.alice-piano")
    assert code == 0, out + err
    tracked = _state(workdir)["resources"]["client_package.alice-piano"]["id"]
    for args in (("plan",), ("apply", "--auto-approve")):
        code, out, err = cli(*args)
        assert code == 1, (args, out + err)
        text = out + err
        assert (f"the same client {ALICE} and catalog package" in text and ", price 500 as client_package."
                f"alice-piano (manifests/client-packages.yaml:5), tracked as {tracked}: a second sale" in text), text
    assert len(_alice(operator, demo)) == 1
    # declared as a further sale, it is one
    clients.write_text(clients.read_text().replace("  price: 500\n", "  price: 500\n  repeat_purchase: true\n"))
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert sorted(cp["amount"] for cp in _alice(operator, demo)) == [500, 540]


def test_a_rename_with_a_new_price_is_refused_unless_replaced_or_declared_a_further_sale(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    old = _state(workdir)["resources"]["client_package.alice-piano"]["id"]
    clients = workdir / "manifests" / "client-packages.yaml"
    text = clients.read_text()
    assert ORIGINAL in text
    clients.write_text(text.replace(ORIGINAL, ORIGINAL.replace("alice-piano", "alice-piano-2027") + "  price: 500\n"))
    before = _state(workdir)
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err
    text = out + err
    assert f"as client_package.alice-piano, whose manifest leaves in this plan ({old} is archived" in text, text
    assert ("run 'reconciler state mv client_package.alice-piano client_package.alice-piano-2027', then plan "
            "with --allow-replace") in text
    assert _state(workdir) == before and len(_alice(operator, demo)) == 1
    # the way the hint names: the rename first, then the replacement --allow-replace accepts
    assert cli("state", "mv", "client_package.alice-piano", "client_package.alice-piano-2027")[0] == 0
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1 and "replace required (price)" in out + err, out + err
    code, out, err = cli("apply", "--auto-approve", "--allow-replace")
    assert code == 0, out + err
    amounts = Counter(cp["amount"] for cp in _alice(operator, demo))
    assert amounts == Counter({540: 1, 500: 1}), amounts


def test_a_priced_copy_is_refused_by_partial_plans_too(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    """README: whichever copy is created first, the other is refused by every later plan, partial
    or not.  A partial plan does not read the manifest of a record outside its paths, so that
    record is the sale of its client and catalog package at any price: planning all the manifests
    compares the copy with what that manifest declares."""
    assert cli("apply", "--auto-approve")[0] == 0
    tracked = _state(workdir)["resources"]["client_package.alice-piano"]["id"]
    package = _state(workdir)["resources"]["catalog_package.piano-10"]["id"]
    (workdir / "manifests" / "alice-2.yaml").write_text(
        COPY.removeprefix("---\n").replace("package: piano-10", f"package: {{id: {package}}}"))
    for args in (("apply", "--auto-approve", "manifests/alice-2.yaml"),
                 ("apply", "--auto-approve", "--only", "client_package.alice-piano-2")):
        code, out, err = cli(*args)
        text = out + err
        assert code == 1, (args, text)
        assert f"as client_package.alice-piano, tracked as {tracked} outside the paths of this plan" in text \
            or f"(manifests/client-packages.yaml:5), tracked as {tracked} outside the paths of this plan" in text, text
        assert "Plan all the manifests" in text
    assert len(_alice(operator, demo)) == 1
    # the price declared on the original tells them apart: two sales, as declared
    clients = workdir / "manifests" / "client-packages.yaml"
    clients.write_text(clients.read_text().replace(ORIGINAL, ORIGINAL + "  price: 540\n"))
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert sorted(cp["amount"] for cp in _alice(operator, demo)) == [500, 540]

"""Catalog status and display order (issue 19), against the served sandbox.

``active: false`` goes through the update route (documented in its prose only: doctor lists it as
unverified); ``order`` and ``CatalogOrder`` through the reorder route, which the verified recipe
sends with a directory token + X-On-Behalf-Of through the fallback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CLI = Callable[..., tuple[int, str, str]]
REORDER = "/business/payments/v1/packages/reorder"


def _ids(workdir: Path) -> dict[str, str]:
    state = json.loads((workdir / "manifests/.reconciler/state.json").read_text())
    return {a: r["id"] for a, r in state["resources"].items()}


def _package(operator: Any, pid: str) -> dict[str, Any]:
    return operator("GET", f"/objects/packages/{pid}")["doc"]


def _order_doc(*names: str) -> str:
    listed = "".join(f"\n    - {n}" for n in names)
    return f"\n---\napiVersion: reconciler/v1\nkind: CatalogOrder\nmetadata:\n  name: catalog\nspec:\n  packages:{listed}\n"


def test_active_false_deactivates_through_the_update_route(workdir: Path, cli: CLI, operator: Any) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    ids = _ids(workdir)
    catalog = workdir / "manifests" / "catalog-packages.yaml"
    catalog.write_text(catalog.read_text().replace("  name: 5 Guitar Lessons\n", "  name: 5 Guitar Lessons\n  active: false\n"))
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 2, out + err
    assert "~ active = true -> false" in out and "Plan: 0 to create, 1 to update" in out, out
    assert "keep their old terms" not in out  # deactivating changes nothing of what was sold
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert f"deactivated {ids['catalog_package.guitar-5']}" in out
    assert _package(operator, ids["catalog_package.guitar-5"])["active"] is False
    assert cli("plan", "--detailed-exitcode")[0] == 0
    # A new assignment of a package declared inactive is a plan error, not a 422 at apply.
    clients = workdir / "manifests" / "client-packages.yaml"
    clients.write_text(clients.read_text() + "\n---\napiVersion: reconciler/v1\nkind: ClientPackage\nmetadata:\n"
                       "  name: isla-guitar\nspec:\n  client: {email: isla.novak@example.com}\n  package: guitar-5\n")
    code, out, err = cli("plan")
    assert code != 0 and "catalog_package.guitar-5 is declared active: false" in out + err


@pytest.mark.parametrize("token", ["directory", "staff"])
def test_catalog_order_goes_through_the_reorder_route(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        token: str) -> None:
    if token == "directory":
        monkeypatch.setenv("VCITA_DIRECTORY_TOKEN", demo["tokens"]["directory"])
    assert cli("apply", "--auto-approve")[0] == 0
    ids = _ids(workdir)
    catalog = workdir / "manifests" / "catalog-packages.yaml"
    catalog.write_text(catalog.read_text() + _order_doc("complete-musician", "piano-10", "guitar-5"))
    operator("DELETE", "/stats")
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 2, out + err
    assert f"PUT {REORDER} via fallback" in out, out
    # The sandbox numbers packages in the order they were created (concurrently, by the first
    # apply): whichever are out of place are moved, each to its declared position.
    wanted = {"catalog_package.complete-musician": 1, "catalog_package.piano-10": 2, "catalog_package.guitar-5": 3}
    ops = json.loads(cli("plan", "--format", "json")[1])["operations"]
    assert ops and all(op["op"] == "reorder_catalog_package" and op["order"] == wanted[op["address"]] for op in ops)
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    stats = operator("GET", "/stats")
    reorders = [r for r in stats["requests"] if r["route"] == REORDER]
    # The gateway refuses /business/payments/v1/* (401, proven not executed): the fallback serves it.
    assert sum(r["count"] for r in reorders if r["door"] == "fallback") >= 1, reorders
    orders = {a: _package(operator, pid)["order"] for a, pid in ids.items() if a.startswith("catalog_package.")}
    assert orders == wanted
    assert cli("plan", "--detailed-exitcode")[0] == 0


def test_a_new_package_inactive_and_ordered_is_created_then_set(workdir: Path, cli: CLI, operator: Any) -> None:
    catalog = workdir / "manifests" / "catalog-packages.yaml"
    catalog.write_text(catalog.read_text() + "\n---\napiVersion: reconciler/v1\nkind: CatalogPackage\nmetadata:\n"
                       "  name: retired\nspec:\n  name: Retired offer\n  price: 10\n  currency: USD\n"
                       "  expiration: 1\n  expiration_unit: M\n  active: false\n  order: 9\n"
                       "  items: [{total_bookings: 1, services: [bop374z43h5xezh3]}]\n")
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert "Verified: a fresh plan shows no changes." in out + err
    doc = _package(operator, _ids(workdir)["catalog_package.retired"])
    assert doc["active"] is False and doc["order"] == 9


def test_doctor_lists_what_is_unverified(workdir: Path, cli: CLI, demo: dict[str, Any],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _, out, _ = cli("doctor")
    assert "Unverified against vcita" in out
    assert "update_catalog_package (staff token): active: false" in out
    assert "reorder_packages (staff token): verified with a directory token" in out
    monkeypatch.setenv("VCITA_DIRECTORY_TOKEN", demo["tokens"]["directory"])
    _code, out, _err = cli("doctor", "--format", "json")
    unverified = json.loads(out)["unverified"]
    assert [u.split(" ", 1)[0] for u in unverified] == ["update_catalog_package"]  # reorder: the verified way


def test_catalog_order_is_validated(tmp_path: Path, cli: CLI) -> None:
    from reconciler.core.errors import ManifestError
    from reconciler.manifest.load import load_manifests

    base = (Path(__file__).resolve().parents[2] / "manifests" / "catalog-packages.yaml").read_text()
    f = tmp_path / "m.yaml"
    f.write_text(base.replace("  name: 5 Guitar Lessons\n", "  name: 5 Guitar Lessons\n  order: 2\n")
                 + _order_doc("piano-10", "piano-10", "guitar-5", "pianno-10") + _order_doc("guitar-5").replace(
                     "name: catalog", "name: other"))
    with pytest.raises(ManifestError) as exc:
        load_manifests([f])
    got = [d.render() for d in exc.value.diagnostics]
    assert len(got) == 4, got
    assert any("spec.packages[1]: 'piano-10' is already listed (spec.packages[0])" in g for g in got)
    assert any("spec.packages[2]: 'guitar-5' declares its own order (2" in g for g in got)
    assert any("spec.packages[3]: unknown catalog package 'pianno-10' (did you mean 'piano-10'?)" in g for g in got)
    assert any("a second CatalogOrder" in g for g in got)
    ok = tmp_path / "ok.yaml"
    ok.write_text(base + _order_doc("guitar-5", "piano-10"))
    ms = load_manifests([ok])
    assert ms.catalog_packages["guitar-5"].spec.order == 1 and ms.catalog_packages["piano-10"].spec.order == 2
    assert ms.catalog_packages["complete-musician"].spec.order is None

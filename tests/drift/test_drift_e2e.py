"""``reconciler drift`` against the served sandbox: remote drift vs pending changes, field by
field; a report writes nothing; ``--write-back`` accepts vcita's values and then plans nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLI = Callable[..., tuple[int, str, str]]


def _files(workdir: Path) -> dict[str, bytes]:
    root = workdir / "manifests"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _obj(report: dict[str, Any], address: str) -> dict[str, Any]:
    return next(o for o in report["objects"] if o["address"] == address)


def _field(obj: dict[str, Any], path: str) -> dict[str, Any]:
    return next(f for f in obj["fields"] if f["path"] == path)


def test_a_price_changed_in_vcita_is_remote_drift_and_nothing_is_written(
        workdir: Path, applied: dict[str, str], cli: CLI, operator: Any) -> None:
    assert cli("drift")[0] == 0
    operator("PATCH", f"/objects/packages/{applied['catalog_package.piano-10']}", json={"price": "560.0"})
    before = _files(workdir)
    operator("DELETE", "/stats")

    code, out, err = cli("drift")
    assert code == 2, out + err
    assert "catalog_package.piano-10" in out
    line = next(s for s in out.splitlines() if s.strip().startswith("price"))
    assert "applied 540 | vcita 560 | manifest 540" in line and "changed in vcita" in line

    code, out, _ = cli("drift", "--format", "json")
    assert code == 2
    report = json.loads(out)
    assert report["format_version"] == 1 and report["exit_code"] == 2
    piano = _obj(report, "catalog_package.piano-10")
    assert piano["status"] == "drift"
    assert piano["fields"] == [{"path": "price", "applied": "540", "remote": "560", "desired": "540",
                                "managed": True, "remote_drift": True, "pending": False}]
    assert [o["address"] for o in report["objects"]] == ["catalog_package.piano-10"]

    # A drift report changes nothing: not the files (state, manifests), not vcita (reads only).
    assert _files(workdir) == before
    methods = {r["method"] for r in operator("GET", "/stats")["requests"]}
    assert methods == {"GET"}


def test_a_manifest_edit_is_pending_only(workdir: Path, applied: dict[str, str], cli: CLI) -> None:
    catalog = workdir / "manifests" / "catalog-packages.yaml"
    catalog.write_text(catalog.read_text().replace("price: 260", "price: 280"))
    code, out, _ = cli("drift", "--format", "json")
    assert code == 3
    guitar = _obj(json.loads(out), "catalog_package.guitar-5")
    assert guitar["status"] == "pending"
    assert guitar["fields"] == [{"path": "price", "applied": "260", "remote": "260", "desired": "280",
                                 "managed": True, "remote_drift": False, "pending": True}]
    code, out, _ = cli("drift", "--format", "markdown")
    assert code == 3
    assert out.startswith("<!-- reconciler-drift -->")
    assert "| `catalog_package.guitar-5` | `price` | 260 | 260 | 280 | changed in the manifest, not applied |" in out


def test_both_at_once_are_told_apart_per_field(workdir: Path, applied: dict[str, str], cli: CLI,
                                               operator: Any) -> None:
    operator("PATCH", f"/objects/packages/{applied['catalog_package.piano-10']}", json={"price": "560.0"})
    catalog = workdir / "manifests" / "catalog-packages.yaml"
    text = catalog.read_text()
    catalog.write_text(text.replace("Ten 45-minute private piano lessons, any level.", "Ten lessons.")
                       .replace("price: 260", "price: 280"))
    code, out, _ = cli("drift", "--format", "json")
    assert code == 2  # remote drift wins the exit code
    report = json.loads(out)
    piano = _obj(report, "catalog_package.piano-10")
    assert piano["status"] == "drift_and_pending"
    price, desc = _field(piano, "price"), _field(piano, "description")
    assert (price["remote_drift"], price["pending"]) == (True, False)
    assert (desc["remote_drift"], desc["pending"]) == (False, True)
    assert desc["desired"] == "Ten lessons." and desc["remote"] == desc["applied"]
    assert _obj(report, "catalog_package.guitar-5")["status"] == "pending"
    assert report["summary"]["remote_drift"] == 1 and report["summary"]["pending"] == 2

    code, out, _ = cli("drift")
    piano_text = out.split("catalog_package.piano-10", 1)[1].split("catalog_package.guitar-5", 1)[0]
    lines = {s.strip().split()[0]: s for s in piano_text.splitlines() if "applied" in s}
    assert "# changed in vcita" in lines["price"]
    assert "# changed in the manifest, not applied" in lines["description"]


def test_write_back_rewrites_only_the_drifted_values_and_then_plans_no_changes(
        workdir: Path, applied: dict[str, str], cli: CLI, operator: Any) -> None:
    operator("PATCH", f"/objects/packages/{applied['catalog_package.piano-10']}", json={"price": "560.5"})
    musician = operator("GET", f"/objects/packages/{applied['catalog_package.complete-musician']}")["doc"]
    for item in musician["items"]:
        if [s["id"] if isinstance(s, dict) else s for s in item["services"]] == ["qbcpk3h45ttdq5ec"]:
            item["total_bookings"] = 15
    operator("PATCH", f"/objects/packages/{musician['id']}", json={"items": musician["items"]})
    chloe = operator("GET", f"/objects/client_packages/{applied['client_package.chloe-complete']}")["doc"]
    for credit in chloe["booking_credits"]:
        if [i["item_id"] for i in credit["credit_items"]] == ["qbcpk3h45ttdq5ec"]:
            credit["total_bookings"] = 16
    operator("PATCH", f"/objects/client_packages/{chloe['id']}", json={"booking_credits": chloe["booking_credits"]})
    operator("PATCH", f"/objects/client_packages/{applied['client_package.emma-guitar']}",
             json={"valid_until": "2027-07-31"})
    catalog = workdir / "manifests" / "catalog-packages.yaml"
    clients = workdir / "manifests" / "client-packages.yaml"
    cat_before, cli_before = catalog.read_text(), clients.read_text()

    code, out, err = cli("drift", "--write-back")
    assert code == 0, out + err
    assert "4 value(s) rewritten in 2 file(s)" in out

    # Exactly the drifted lines changed; every comment and all formatting stayed.
    changed = [(a, b) for a, b in zip(cat_before.splitlines(), catalog.read_text().splitlines(), strict=False) if a != b]
    assert changed == [("  price: 540", "  price: 560.5"),
                       ("    - total_bookings: 12                  # theory classes",
                        "    - total_bookings: 15                  # theory classes")]
    changed = [(a, b) for a, b in zip(cli_before.splitlines(), clients.read_text().splitlines(), strict=False) if a != b]
    assert changed == [("      total_bookings: 14", "      total_bookings: 16"),
                       ("  valid_until: 2027-06-30", "  valid_until: 2027-07-31")]
    assert len(catalog.read_text().splitlines()) == len(cat_before.splitlines())

    assert cli("validate")[0] == 0
    code, out, _ = cli("plan", "--detailed-exitcode")
    assert code == 0, out
    assert cli("drift")[0] == 0  # the baseline records vcita's values: no drift reported again


def test_write_back_leaves_a_conflict_alone(workdir: Path, applied: dict[str, str], cli: CLI, operator: Any) -> None:
    operator("PATCH", f"/objects/packages/{applied['catalog_package.piano-10']}", json={"price": "560.0"})
    catalog = workdir / "manifests" / "catalog-packages.yaml"
    catalog.write_text(catalog.read_text().replace("price: 540", "price: 580"))
    state = workdir / "manifests" / ".reconciler" / "state.json"
    state_before, text_before = state.read_bytes(), catalog.read_text()

    code, out, _ = cli("drift", "--write-back")
    assert code == 2
    assert "not written: catalog_package.piano-10 price: conflict" in out
    assert "CONFLICT: changed in vcita and in the manifest" in out
    assert catalog.read_text() == text_before and state.read_bytes() == state_before

    # Resolving it by hand (taking vcita's value) leaves both sides equal: write-back records it.
    catalog.write_text(text_before.replace("price: 580", "price: 560"))
    code, out, _ = cli("drift", "--format", "json")
    price = _field(_obj(json.loads(out), "catalog_package.piano-10"), "price")
    assert code == 2 and price["remote"] == price["desired"] == "560"
    assert cli("drift", "--write-back")[0] == 0
    assert cli("drift")[0] == 0 and cli("plan", "--detailed-exitcode")[0] == 0


def test_unmanaged_fields_are_informational_and_only_accepts_named_objects(
        workdir: Path, applied: dict[str, str], cli: CLI, operator: Any) -> None:
    # alice-piano's manifest does not set a price: a price set in vcita is not drift.
    operator("PATCH", f"/objects/client_packages/{applied['client_package.alice-piano']}", json={"amount": "500"})
    operator("PATCH", f"/objects/packages/{applied['catalog_package.guitar-5']}", json={"price": "270.0"})
    code, out, _ = cli("drift", "--format", "json")
    report = json.loads(out)
    alice = _obj(report, "client_package.alice-piano")
    assert alice["status"] == "unmanaged_drift"
    assert _field(alice, "price") == {"path": "price", "applied": "540", "remote": "500", "desired": None,
                                      "managed": False, "remote_drift": True, "pending": False}
    assert code == 2 and [o["address"] for o in report["objects"] if o["status"] == "drift"] == \
        ["catalog_package.guitar-5"]

    code, _, err = cli("drift", "--write-back", "--only", "catalog_package.piano-10")
    assert code == 1 and "no remote drift to accept" in err
    code, out, _ = cli("drift", "--write-back", "--only", "catalog_package.guitar-5")
    assert code == 0
    assert "price: 270" in (workdir / "manifests" / "catalog-packages.yaml").read_text()
    code, out, _ = cli("drift", "--format", "json")
    assert [o["address"] for o in json.loads(out)["objects"]] == ["client_package.alice-piano"]
    cli("drift", "--write-back")  # accepting an unmanaged change adds nothing to the manifest
    assert "price" not in _alice_spec(workdir)
    code, out, _ = cli("drift", "--format", "json")
    assert code == 0 and json.loads(out)["objects"] == []


def _alice_spec(workdir: Path) -> str:
    text = (workdir / "manifests" / "client-packages.yaml").read_text()
    return text.split("name: alice-piano", 1)[1].split("---", 1)[0]


def test_a_vanished_object_is_drift(workdir: Path, applied: dict[str, str], cli: CLI) -> None:
    path = workdir / "manifests" / ".reconciler" / "state.json"
    state = json.loads(path.read_text())
    state["resources"]["client_package.alice-piano"]["id"] = "gone0000gone0000"
    path.write_text(json.dumps(state))
    code, out, _ = cli("drift", "--format", "json")
    assert code == 2
    alice = _obj(json.loads(out), "client_package.alice-piano")
    assert alice["status"] == "vanished" and "reconciler state rm client_package.alice-piano" in alice["notes"][0]


def test_a_copied_client_package_is_called_a_second_sale_not_a_create(
        workdir: Path, applied: dict[str, str], cli: CLI) -> None:
    # A manifest copied under a new name: plan refuses it (a second sale of alice's package); drift
    # said "apply creates it".
    path = workdir / "manifests" / "client-packages.yaml"
    copy = ("---\napiVersion: reconciler/v1\nkind: ClientPackage\nmetadata:\n  name: alice-piano-2\nspec:\n"
            "  client: ktsrl7f6h94run82\n  package: piano-10\n")
    path.write_text(path.read_text() + copy)
    code, out, err = cli("drift", "--format", "json")
    note = " ".join(_obj(json.loads(out), "client_package.alice-piano-2")["notes"])
    assert "a second sale, which plan refuses unless this object says 'repeat_purchase: true'" in note, note
    assert "client_package.alice-piano" in note
    code, out, err = cli("plan")
    assert code == 1 and "second sale" in out + err, out + err
    path.write_text(path.read_text() + "  repeat_purchase: true\n")  # the copy, last: a further sale
    code, out, err = cli("drift", "--format", "json")
    note = " ".join(_obj(json.loads(out), "client_package.alice-piano-2")["notes"])
    assert "apply creates it" in note, note

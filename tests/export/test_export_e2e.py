"""Adopting an existing business: export its 50 catalog packages, import a client package, and
the next plan shows no changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLI = Callable[..., tuple[int, str, str]]


def _state(folder: Path) -> dict[str, Any]:
    return json.loads((folder / ".reconciler" / "state.json").read_text())


def test_export_of_50_packages_validates_and_plans_no_changes(business: dict[str, Any], cli: CLI,
                                                              tmp_path: Path) -> None:
    code, out, err = cli("export", "--out", "manifests")
    assert code == 0, out + err
    assert "Exported 50 catalog packages to manifests/" in out
    files = sorted((tmp_path / "manifests").glob("*.yaml"))
    assert [f.name for f in files][:3] == ["bulk-package-1.yaml", "bulk-package-10.yaml", "bulk-package-11.yaml"]
    assert len(files) == 50
    first = files[0].read_text()
    assert first.startswith("# yaml-language-server: $schema=../schema/reconciler-v1.schema.json\n")
    state = _state(tmp_path / "manifests")
    rid = state["resources"]["catalog_package.bulk-package-1"]["id"]
    assert f"# vcita catalog package id: {rid}\n" in first
    assert "  price: 10\n" in first and "  expiration_unit: M\n" in first and "services: [" in first
    assert set(state["resources"]) == {f"catalog_package.{f.stem}" for f in files}
    assert set(business["package_ids"]) == {r["id"] for r in state["resources"].values()}

    assert cli("validate")[0] == 0
    code, out, _ = cli("plan", "--detailed-exitcode")
    assert code == 0 and "No changes." in out, out
    assert cli("drift")[0] == 0


def test_export_refuses_to_overwrite_or_to_contradict_the_state(business: dict[str, Any], cli: CLI,
                                                                tmp_path: Path) -> None:
    assert cli("export")[0] == 0
    before = {p: p.read_bytes() for p in (tmp_path / "manifests").rglob("*") if p.is_file()}
    code, _, err = cli("export")
    assert code == 1 and "export refused, nothing was written" in err and "exists" in err
    assert {p: p.read_bytes() for p in (tmp_path / "manifests").rglob("*") if p.is_file()} == before
    assert cli("export", "--force")[0] == 0  # same names, same ids: rewritten

    # A package the state tracks under another address is not exported again under a new one.
    moved = tmp_path / "manifests" / "bulk-package-7.yaml"
    moved.unlink()
    state_path = tmp_path / "manifests" / ".reconciler" / "state.json"
    state = json.loads(state_path.read_text())
    state["resources"]["catalog_package.piano"] = state["resources"].pop("catalog_package.bulk-package-7")
    state_path.write_text(json.dumps(state))
    code, _, err = cli("export", "--force")
    assert code == 1 and "is tracked as catalog_package.piano" in err
    code, _, err = cli("export", "--force", "--skip-tracked")
    assert code == 0 and "already tracked as catalog_package.piano" in err
    assert not moved.exists()


def test_names_are_slugified_and_deduplicated_by_id(business: dict[str, Any], cli: CLI, tmp_path: Path,
                                                    operator: Any) -> None:
    a, b, c = business["package_ids"][:3]
    operator("PATCH", f"/objects/packages/{a}", json={"name": "Piano: 10 Lessons!"})
    operator("PATCH", f"/objects/packages/{b}", json={"name": "piano 10 lessons"})
    operator("PATCH", f"/objects/packages/{c}", json={"name": "Crème Brûlée"})
    assert cli("export", "--out", "one")[0] == 0
    resources = _state(tmp_path / "one")["resources"]
    names = {r["id"]: a.split(".", 1)[1] for a, r in resources.items()}
    assert names[c] == "creme-brulee"
    assert names[a].startswith("piano-10-lessons-") and names[b].startswith("piano-10-lessons-")
    assert names[a] != names[b] and names[a].endswith(a.lower()[:6])
    # Deterministic: a second export of the same business names everything the same way.
    assert cli("export", "--out", "two")[0] == 0
    again = {r["id"]: a.split(".", 1)[1] for a, r in _state(tmp_path / "two")["resources"].items()}
    assert again == names


def test_import_of_a_client_package_by_uid_then_plan_shows_no_changes(business: dict[str, Any], cli: CLI,
                                                                      tmp_path: Path, operator: Any) -> None:
    assert cli("export")[0] == 0
    package = _state(tmp_path / "manifests")["resources"]["catalog_package.bulk-package-3"]["id"]
    client = business["clients"][1]
    uid = operator("POST", "/bulk/client_packages", json={
        "business_id": business["business_id"], "package_id": package, "client_ids": [client["id"]],
        "count": 1})["ids"][0]
    (tmp_path / "manifests" / "clients.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: ClientPackage\nmetadata:\n  name: client-two\nspec:\n"
        f"  client: {{email: {client['email']}}}\n  package: bulk-package-3\n")
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 1 and f"already exists in vcita as {uid}" in out + err  # the second memory refuses a second one
    code, out, err = cli("import", "client_package.client-two", uid)
    assert code == 0, out + err
    code, out, _ = cli("plan", "--detailed-exitcode")
    assert code == 0 and "No changes." in out, out
    assert cli("drift")[0] == 0


def test_export_writes_the_schema_its_editor_line_points_to(business: dict[str, Any], cli: CLI,
                                                          tmp_path: Path) -> None:
    import jsonschema
    from ruamel.yaml import YAML

    from reconciler.model.schema import manifest_schema

    code, out, err = cli("export", "--out", "manifests")
    assert code == 0, out + err
    schema_file = tmp_path / "schema" / "reconciler-v1.schema.json"
    assert json.loads(schema_file.read_text()) == json.loads(json.dumps(manifest_schema()))
    assert "Wrote the manifest JSON Schema to schema/reconciler-v1.schema.json" in err
    validator = jsonschema.Draft202012Validator(json.loads(schema_file.read_text()))
    for f in sorted((tmp_path / "manifests").glob("*.yaml")):
        ref = f.read_text().splitlines()[0].removeprefix("# yaml-language-server: $schema=")
        assert (f.parent / ref).resolve() == schema_file.resolve()
        doc = json.loads(json.dumps(YAML(typ="safe", pure=True).load(f.read_text()), default=str))
        assert not list(validator.iter_errors(doc)), f.name
    # A schema file of the project's own is left alone; with --schema, none is written.
    schema_file.write_text("{}\n")
    assert cli("export", "--out", "more")[0] == 0
    assert schema_file.read_text() == "{}\n"
    schema_file.unlink()
    assert cli("export", "--out", "other", "--schema", "https://example.com/s.json")[0] == 0
    assert not schema_file.exists()
    # A schema/ that is a file: the export is done all the same, with a warning.
    schema_file.parent.rmdir()
    schema_file.parent.write_text("not a folder")
    code, out, err = cli("export", "--out", "last")
    assert code == 0 and "Exported 50 catalog packages" in out
    assert "Warning: could not write schema/reconciler-v1.schema.json" in err

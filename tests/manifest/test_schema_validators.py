"""The manifest JSON Schema, as editors and validators use it.

check-jsonschema (the ``lint`` extra) validates the demo manifests and the good cases, split one
document per file as an editor's ``yaml.schemas`` association applies it, and every known-bad
case: each is caught by the schema, refused by the YAML parser, or listed below among the rules
only ``reconciler validate`` can check (the list the README shows; a change either way fails).
Every field has a description and examples, every enum explains its values, and ``kind`` picks
the spec so a validator reports the document's own kind's errors.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reconciler.model.manifest import (
    CatalogOrderSpec,
    CatalogPackageSpec,
    ClientPackageSetSpec,
    ClientPackageSpec,
    CreditOverride,
    Item,
    Product,
    SetClient,
)
from reconciler.model.schema import SCHEMA_VERSION, manifest_schema

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "schema" / "reconciler-v1.schema.json"
CASES = Path(__file__).parent / "cases"

# Known-bad cases the schema cannot catch: the rules only 'reconciler validate' checks.
VALIDATE_ONLY = {
    "package-unknown": "a reference to a CatalogPackage of another document",
    "credit-no-item": "booking_credits naming an item of the referenced CatalogPackage",
    "dup-name": "metadata.name unique per kind across documents and files",
    "dates-order": "valid_until not before valid_from",
    "service-in-two-items": "a service in one item only",
    "service-twice-forms": "a service listed twice in its two forms (abc and {id: abc})",
    "expiration-whole-float": "whole numbers written as 1.0 (JSON Schema counts 1.0 as an integer)",
    "set-duplicate-client": "a client listed once per ClientPackageSet (by id, or by e-mail in any case)",
    "set-member-dates": "each ClientPackageSet member's dates, once its overrides are applied",
}
# Refused by the YAML parser before any schema applies (editors' parsers refuse them too).
YAML_LEVEL = {"dup-key", "syntax", "tag"}


def tool(name: str) -> str:
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        message = f"{name} is not installed: pip install '.[lint]'"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run every linter)")
        pytest.skip(message)
    return found


def split(path: Path, into: Path) -> list[Path]:
    """One file per YAML document (check-jsonschema reads one document per file)."""
    docs = [d for d in re.split(r"(?m)^---[ \t]*$", path.read_text()) if d.strip()]
    out = []
    for i, doc in enumerate(docs):
        f = into / f"{path.parent.name}--{path.stem}--{i}.yaml"
        f.write_text(doc)
        out.append(f)
    return out


def check(files: list[Path]) -> dict[str, Any]:
    p = subprocess.run([tool("check-jsonschema"), "--schemafile", str(SCHEMA_FILE), "-o", "json", *map(str, files)],
                       capture_output=True, text=True, timeout=120, check=False)
    result: dict[str, Any] = json.loads(p.stdout)
    assert (p.returncode == 0) == (result["status"] == "ok"), p.stderr
    return result


def test_schema_is_valid_2020_12_and_committed() -> None:
    p = subprocess.run([tool("check-jsonschema"), "--check-metaschema", str(SCHEMA_FILE)],
                       capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    committed = json.loads(SCHEMA_FILE.read_text())
    assert committed == json.loads(json.dumps(manifest_schema()))  # regenerate: reconciler schema --out ...
    assert committed["$id"].startswith("urn:reconciler:") and committed["x-schema-version"] == SCHEMA_VERSION


def test_demo_and_good_manifests_pass_per_document(tmp_path: Path) -> None:
    files = [f for src in [*sorted((REPO / "manifests").glob("*.yaml")), *sorted((CASES / "good").glob("*.yaml"))]
             for f in split(src, tmp_path)]
    assert len(files) >= 11 + 4
    result = check(files)
    assert result["status"] == "ok", result


def test_each_bad_case_is_caught_or_listed_as_validate_only(tmp_path: Path) -> None:
    bad = sorted((CASES / "bad").glob("*.yaml"))
    files = {case.stem: split(case, tmp_path) for case in bad}
    result = check([f for fs in files.values() for f in fs])
    failed = {Path(e["filename"]).name for e in result.get("errors", [])}
    unparsed = {Path(e["filename"]).name for e in result.get("parse_errors", [])}
    caught, parser, missed = set(), set(), set()
    for stem, fs in files.items():
        names = {f.name for f in fs}
        if names & unparsed:
            parser.add(stem)
        elif names & failed:
            caught.add(stem)
        else:
            missed.add(stem)
    assert parser == YAML_LEVEL
    assert missed == set(VALIDATE_ONLY), "update VALIDATE_ONLY and the README's list"
    assert len(caught) == len(bad) - len(YAML_LEVEL) - len(VALIDATE_ONLY) >= 29
    readme = (REPO / "README.md").read_text()
    for reason in VALIDATE_ONLY.values():
        assert reason in readme, reason


def test_kind_selects_the_spec_so_errors_are_about_the_documents_own_kind() -> None:
    schema = manifest_schema()
    validator = jsonschema.Draft202012Validator(schema)
    client_spec = {"client": "abc", "package": "piano-10"}
    errors = list(validator.iter_errors({"apiVersion": "reconciler/v1", "kind": "CatalogPackage",
                                         "metadata": {"name": "x"}, "spec": client_spec}))
    messages = [e.message for e in errors]
    assert any("'name' is a required property" in m for m in messages)
    assert any("'client', 'package' were unexpected" in m for m in messages)  # judged as a CatalogPackage only
    assert not any("oneOf" in str(e.validator) for e in errors)
    errors = list(validator.iter_errors({"apiVersion": "reconciler/v1", "kind": "ClientPackag",
                                         "metadata": {"name": "x"}, "spec": client_spec}))
    assert [list(e.path) for e in errors] == [["kind"]]  # one error, on kind, not one per possible kind


def test_discount_pair_and_percentage_are_in_the_schema() -> None:
    validator = jsonschema.Draft202012Validator(manifest_schema()["$defs"]["CatalogPackageSpec"])
    base = {"name": "a", "price": 1, "currency": "usd", "expiration": 1, "expiration_unit": "m",
            "items": [{"total_bookings": 1, "services": ["abc"]}]}
    assert validator.is_valid({**base, "discount_amount": 150, "discount_unit": "F"})
    assert not validator.is_valid({**base, "discount_amount": 150, "discount_unit": "p"})
    assert validator.is_valid({**base, "discount_amount": 100, "discount_unit": "P"})
    assert not validator.is_valid({**base, "discount_unit": "F"})
    assert not validator.is_valid({**base, "discount_amount": 5})
    assert validator.is_valid({**base, "currency": "Eur"}) and not validator.is_valid({**base, "currency": "EUX"})
    # reconciler's bounds of numbers (issue 15f), as far as JSON Schema can say them:
    assert not validator.is_valid({**base, "price": 10_000_000_000})
    assert not validator.is_valid({**base, "items": [{"total_bookings": 1_000_001, "services": ["abc"]}]})
    assert validator.is_valid({**base, "expiration": 1200, "expiration_unit": "m"})
    assert not validator.is_valid({**base, "expiration": 101, "expiration_unit": "y"})
    assert validator.is_valid({**base, "price": 10.12345})  # decimals: validate's alone (listed in the README)
    assert "money with at most 4 decimal places" in (REPO / "README.md").read_text()


def _properties(node: Any) -> dict[str, Any]:
    return node["properties"]  # type: ignore[no-any-return]


def test_every_field_is_documented_with_examples_and_matches_the_models() -> None:
    schema = manifest_schema()
    defs = schema["$defs"]
    tables = {
        "CatalogPackageSpec": (CatalogPackageSpec, _properties(defs["CatalogPackageSpec"])),
        "ClientPackageSpec": (ClientPackageSpec, _properties(defs["ClientPackageSpec"])),
        "Item": (Item, _properties(defs["CatalogPackageSpec"]["properties"]["items"]["items"])),
        "Product": (Product, _properties(defs["CatalogPackageSpec"]["properties"]["products"]["items"])),
        "CreditOverride": (CreditOverride,
                           _properties(defs["ClientPackageSpec"]["properties"]["booking_credits"]["items"])),
        "ClientPackageSetSpec": (ClientPackageSetSpec, _properties(defs["ClientPackageSetSpec"])),
        "CatalogOrderSpec": (CatalogOrderSpec, _properties(defs["CatalogOrderSpec"])),
        "SetClient": (SetClient,
                      defs["ClientPackageSetSpec"]["properties"]["clients"]["items"]["anyOf"][1]["properties"]),
    }
    for name, (model, props) in tables.items():
        assert set(props) == set(model.model_fields), name
        for field, node in props.items():
            assert len(node.get("description", "")) >= 20, f"{name}.{field}"
            assert node.get("examples"), f"{name}.{field}"
    for node in (schema["properties"]["kind"], defs["CatalogPackageSpec"]["properties"]["expiration_unit"],
                 defs["CatalogPackageSpec"]["properties"]["discount_unit"]):
        assert len(node["enumDescriptions"]) == len(node["enum"])
        for value in node["enum"]:
            assert f"`{value.upper() if len(value) == 1 else value}`" in node["description"]
    assert _properties(defs["Metadata"])["name"]["description"]


def test_readme_shows_the_glob_association_for_every_document() -> None:
    readme = (REPO / "README.md").read_text()
    assert '"yaml.schemas"' in readme and "manifests/**/*.yaml" in readme

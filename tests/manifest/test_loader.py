"""The loader on whole trees and hostile inputs: files, folders, encodings, bombs, random YAML."""

from __future__ import annotations

import json
import string
import time
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from reconciler.core.errors import ManifestError
from reconciler.manifest.load import load_manifests
from reconciler.model.manifest import document_json_schema

ROOT = Path(__file__).resolve().parents[2]


def _errors(paths: list[Path | str]) -> list[str]:
    with pytest.raises(ManifestError) as exc:
        load_manifests(paths)
    return [d.render() for d in exc.value.diagnostics]


def test_demo_manifests_are_valid() -> None:
    ms = load_manifests([ROOT / "manifests"])
    assert len(ms.catalog_packages) == 3
    assert len(ms.client_packages) == 8
    assert ms.digest().startswith("sha256:")


def test_directory_tree_is_walked_and_hidden_folders_skipped(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".reconciler").mkdir()
    (tmp_path / ".reconciler" / "junk.yaml").write_text("not: [valid")
    src = (ROOT / "manifests" / "catalog-packages.yaml").read_text()
    (tmp_path / "a" / "b" / "catalog.yml").write_text(src)
    (tmp_path / "a" / "notes.txt").write_text("ignored")
    ms = load_manifests([tmp_path])
    assert len(ms.catalog_packages) == 3


def test_errors_in_several_files_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text("a: [1\n")
    (tmp_path / "two.yaml").write_text("")
    (tmp_path / "three.yaml").write_bytes(b"kind: \xff\n")
    errs = _errors([tmp_path])
    assert len(errs) == 3
    assert any("one.yaml:" in e and "YAML syntax error" in e for e in errs)
    assert any("two.yaml: file is empty" in e for e in errs)
    assert any("three.yaml:1:7: file is not valid UTF-8" in e for e in errs)


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    errs = _errors([tmp_path / "nope.yaml"])
    assert errs == [f"{tmp_path / 'nope.yaml'}: no such file or directory"]
    (tmp_path / "empty").mkdir()
    errs = _errors([tmp_path / "empty"])
    assert "no manifests here" in errs[0]


def test_same_name_across_files_is_a_duplicate(tmp_path: Path) -> None:
    src = (ROOT / "manifests" / "catalog-packages.yaml").read_text()
    (tmp_path / "a.yaml").write_text(src)
    (tmp_path / "b.yaml").write_text(src)
    errs = _errors([tmp_path])
    assert len(errs) == 3
    assert all("b.yaml:" in e and "duplicate name" in e and "a.yaml" in e for e in errs)


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i-1}"] * 10) + "]")
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    errs = _errors([tmp_path / "bomb.yaml"])
    assert "through aliases; refused" in errs[0]
    # Not a timing assertion of speed, only that it terminates without expanding 10**12 nodes.
    assert time.perf_counter() - start < 30


def test_committed_schema_is_current_and_accepts_the_demo() -> None:
    committed = json.loads((ROOT / "schema" / "reconciler-v1.schema.json").read_text())
    assert committed == json.loads(json.dumps(document_json_schema()))
    y = YAML(typ="safe", pure=True)
    for f in sorted((ROOT / "manifests").glob("*.yaml")):
        for doc in y.load_all(f.read_text()):
            jsonschema.validate(json.loads(json.dumps(doc, default=str)), committed)


# --- property: any input ends in models or located errors, never an exception -----------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=True),
    st.text(string.printable, max_size=12),
    st.sampled_from(["USD", "m", "P", "2026-01-01", "2026-13-01", "abc", "{id: x}", "*x", "&a", "!!str"]),
)
_keys = st.sampled_from([
    "apiVersion", "kind", "metadata", "spec", "name", "price", "currency", "expiration",
    "expiration_unit", "items", "total_bookings", "services", "products", "id", "quantity",
    "discount_amount", "discount_unit", "client", "package", "valid_from", "valid_until",
    "booking_credits", "email", "bogus",
])
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=6)), max_leaves=25)


def _document(draw_kind: str, spec: object, name: object) -> dict[str, object]:
    return {"apiVersion": "reconciler/v1", "kind": draw_kind, "metadata": {"name": name}, "spec": spec}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["CatalogPackage", "ClientPackage", "Other"]),
    spec=_values,
    name=st.one_of(st.text(max_size=8), st.integers()),
)
def test_random_documents_give_models_or_located_errors(tmp_path: Path, kind: str, spec: object, name: object) -> None:
    y = YAML(typ="safe", pure=True)
    f = tmp_path / "doc.yaml"
    with f.open("w") as fh:
        y.dump(_document(kind, spec, name), fh)
    _load_or_located(f)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list(": -[]{}\n\t'\"#&*!|>%@`,?abcxyz0129.")), max_size=120))
def test_random_text_gives_models_or_located_errors(tmp_path: Path, text: str) -> None:
    f = tmp_path / "doc.yaml"
    f.write_text(text)
    _load_or_located(f)


def _load_or_located(f: Path) -> None:
    try:
        ms = load_manifests([f])
    except ManifestError as e:
        assert e.diagnostics
        for d in e.diagnostics:
            assert d.file.endswith("doc.yaml")
            assert d.message
            assert "Traceback" not in d.render()
    else:
        assert ms.documents


_TRICKY = ["0o17", "017", "yes", "1_000", "0x1F", "-0b101", ".5", "1e3", "1.", "2026-1-2", "2026-01-02",
           "+12", "-0", ".inf", "~", "Null", "TRUE", "on", "1:20", "12e", "0.1e+2", "00", "'5'", "\"x\"",
           "[1, 2]", "{id: abc}", "", "null", "False", "3.50", "-7"]


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.sampled_from(_TRICKY), min_size=1, max_size=6))
def test_fast_and_exact_passes_read_values_alike(values: list[str]) -> None:
    """The fast pass, the exact pass (positions) and ruamel (which drift --write-back edits with)
    must never disagree about a value."""
    import yaml

    from reconciler.manifest.load import _fast_value, _FastLoader
    from reconciler.manifest.locate import plain, positioned

    text = "".join(f"k{i}: {v}\n" for i, v in enumerate(values))
    loader = _FastLoader(text)
    try:
        fast = _fast_value(loader, loader.get_single_node(), [0])
    finally:
        loader.dispose()
    assert repr(fast) == repr(plain(yaml.load(text, Loader=_FastLoader), [0]))  # noqa: S506 - our own loader, tested
    exact = plain(positioned(text, _FastLoader), [0])
    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    edited = plain(y.load(text), [0])
    assert repr(fast) == repr(exact) == repr(edited)


def test_a_cross_document_error_is_located_in_the_text_read_once(tmp_path: Path) -> None:
    """The file is opened once (an audit hook counts the opens): the line of a cross-document
    error comes from the text that was validated, not from a second read of a file that may have
    changed since."""
    import sys

    source = Path(__file__).parent / "cases" / "bad" / "package-unknown.yaml"
    target = tmp_path / "p.yaml"
    target.write_text(source.read_text())
    opened: list[str] = []

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event == "open" and args and str(args[0]) == str(target):
            opened.append(event)

    sys.addaudithook(hook)  # hooks cannot be removed: this one only counts opens of a file of tmp_path
    with pytest.raises(ManifestError) as caught:
        load_manifests([tmp_path])
    assert len(opened) == 1
    [d] = caught.value.diagnostics
    assert "unknown catalog package 'piano-11'" in d.message and (d.line, d.col) == (8, 12), d

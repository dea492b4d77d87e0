"""Export without a server: names, what is left out, and the rendered manifest."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from reconciler.adopt.export import assign_names, prepare, render, slugify
from reconciler.manifest.load import load_manifests
from reconciler.model.remote import RemoteCatalogItem, RemoteCatalogPackage, RemoteProduct
from reconciler.model.values import NAME_PATTERN
from reconciler.state.store import State


def pkg(rid: str, name: str, **kw: object) -> RemoteCatalogPackage:
    base: dict[str, object] = {
        "id": rid, "name": name, "price": Decimal("99.90"), "currency": "eur", "expiration": 3, "expiration_unit": "W",
        "items": (RemoteCatalogItem(total_bookings=4, services=("s2", "s1")),), "discount_amount": Decimal(0),
        "discount_unit": "F", "online_payment_enabled": True}
    base.update(kw)
    return RemoteCatalogPackage(**base)  # type: ignore[arg-type]


def test_slugify() -> None:
    assert slugify("10 Piano Lessons") == "10-piano-lessons"
    assert slugify("  Piano -- Lessons!! ") == "piano-lessons"
    assert slugify("日本") == "package"
    assert len(slugify("x" * 300)) == 63


@given(st.lists(st.tuples(st.from_regex(r"[A-Za-z0-9_-]{8,16}", fullmatch=True),
                          st.sampled_from(["Piano", "piano", "PIANO!", "Guitar", "", "x" * 80])),
                unique_by=lambda t: t[0], max_size=12))
def test_names_are_unique_valid_and_independent_of_order(rows: list[tuple[str, str]]) -> None:
    import re

    packages = [pkg(rid, name or "n") for rid, name in rows]
    names = assign_names(packages)
    assert names == assign_names(list(reversed(packages)))
    assert len(set(names.values())) == len(packages)
    assert all(re.fullmatch(NAME_PATTERN, n) and len(n) <= 63 for n in names.values())


def test_rendered_manifest_is_normalised_and_loads(tmp_path: Path) -> None:
    p = pkg("abc123", "Piano & Co", products=(RemoteProduct(id="pr1", quantity=2, name="Book"),),
            description="Weekly", image_path="https://img/x.png")
    text = render(p, "piano-co", {"s1": "Piano (45 min)"}, "../schema/x.json")
    assert text.startswith("# yaml-language-server: $schema=../schema/x.json\n")
    assert "# vcita catalog package id: abc123\n" in text
    for line in ("  price: 99.9\n", "  currency: EUR\n", "  expiration_unit: W\n",
                 "      services: [s1, s2]  # Piano (45 min)\n", "    - id: pr1  # Book\n",
                 "  discount_amount: 0\n", "  image_path: https://img/x.png\n"):
        assert line in text
    (tmp_path / "p.yaml").write_text(text)
    spec = load_manifests([tmp_path]).catalog_packages["piano-co"].spec
    assert spec.price == Decimal("99.9") and spec.currency == "EUR"


def test_packages_no_manifest_can_describe_are_left_out(tmp_path: Path) -> None:
    packages = [pkg("a1", "Good"), pkg("b2", "No items", items=()), pkg("c3", "Deleted", deleted_at="2026-01-01")]
    export = prepare(packages, {}, State.new(), tmp_path, schema_ref="s.json")
    assert [f.name for f in export.files] == ["good"]
    reasons = dict(export.skipped)
    assert "deleted" in reasons["c3"] and "cannot be written as a valid manifest" in reasons["b2"]

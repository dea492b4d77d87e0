"""In-place manifest edits: the file's own style is kept byte for byte around the edited values."""

from __future__ import annotations

import pytest

from reconciler.manifest.yamledit import RoundTripFile, WriteBackError, number, set_catalog, set_client

FLAT_DASHES = """\
---
# the first document
apiVersion: reconciler/v1
kind: CatalogPackage
metadata:
  name: piano
spec:
  name: "Piano"   # quoted on purpose
  price: 99.99
  currency: usd
  expiration: 6
  expiration_unit: m
  items:
  - total_bookings: 10
    services:
    - {id: s2}
    - s1
  - total_bookings: 4   # theory
    services: [s3]
  products:
  - id: p1
    quantity: 1
---
apiVersion: reconciler/v1
kind: ClientPackage
metadata:
  name: alice
spec:
  client: {id: c1}
  package: piano
  valid_until: 2027-01-31
  booking_credits:
  - services: [s3]
    total_bookings: 4
"""


def edited(text: str, edits: list[tuple[str, str, str, object]]) -> str:
    rt = RoundTripFile(text)
    for kind, name, path, value in edits:
        spec = rt.find(kind, name)["spec"]
        reason = (set_catalog if kind == "CatalogPackage" else set_client)(spec, path, value)
        assert reason is None, reason
    return rt.dump()


def diff(a: str, b: str) -> list[tuple[str, str]]:
    return [(x, y) for x, y in zip(a.splitlines(), b.splitlines(), strict=False) if x != y]


def test_an_unedited_file_is_reproduced_exactly() -> None:
    assert RoundTripFile(FLAT_DASHES).dump() == FLAT_DASHES
    assert RoundTripFile("\ufeff" + FLAT_DASHES).dump() == "\ufeff" + FLAT_DASHES


def test_scalars_keep_their_comments_and_the_file_its_style() -> None:
    out = edited(FLAT_DASHES, [
        ("CatalogPackage", "piano", "price", "120"),
        ("CatalogPackage", "piano", "currency", "EUR"),
        ("CatalogPackage", "piano", "items[s3]", 5),
        ("CatalogPackage", "piano", "items[s1,s2]", 12),  # found by its services, written as {id:} or not
        ("ClientPackage", "alice", "valid_until", "2027-02-28"),
        ("ClientPackage", "alice", "booking_credits[s3]", 6),
    ])
    assert diff(FLAT_DASHES, out) == [
        ("  price: 99.99", "  price: 120"),
        ("  currency: usd", "  currency: EUR"),
        ("  - total_bookings: 10", "  - total_bookings: 12"),
        ("  - total_bookings: 4   # theory", "  - total_bookings: 5   # theory"),
        ("  valid_until: 2027-01-31", "  valid_until: 2027-02-28"),
        ("    total_bookings: 4", "    total_bookings: 6"),
    ]


def test_entries_added_in_vcita_are_appended_in_the_siblings_style_and_removed_ones_deleted() -> None:
    out = edited(FLAT_DASHES, [
        ("CatalogPackage", "piano", "items[s4,s5]", 2),
        ("CatalogPackage", "piano", "items[s3]", None),
        ("CatalogPackage", "piano", "products[p1]", None),
        ("CatalogPackage", "piano", "products[p2]", 3),
    ])
    spec = out.split("items:", 1)[1].split("---", 1)[0]
    assert "theory" not in spec and "s3" not in spec
    assert "  - total_bookings: 2\n    services:\n    - s4\n    - s5\n" in spec  # block, like the first item
    assert "  products:\n  - id: p2\n    quantity: 3\n" in spec


def test_values_are_written_in_the_manifest_language() -> None:
    assert number("540") == 540 and isinstance(number("540"), int)
    assert number("99.99") == 99.99
    out = edited(FLAT_DASHES, [("CatalogPackage", "piano", "discount_amount", "10"),
                               ("CatalogPackage", "piano", "discount_unit", "P"),
                               ("CatalogPackage", "piano", "online_payment_enabled", True),
                               ("CatalogPackage", "piano", "description", None)])
    assert "discount_amount: 10\n  discount_unit: P\n  online_payment_enabled: true\n  description: ''\n" in out


def test_references_that_cannot_be_written_say_why() -> None:
    rt = RoundTripFile(FLAT_DASHES.replace("client: {id: c1}", "client: {email: a@b.co}"))
    spec = rt.find("ClientPackage", "alice")["spec"]
    assert "e-mail" in (set_client(spec, "client_id", "c2") or "")
    assert "by hand" in (set_client(spec, "package_id", "P2") or "")
    spec = RoundTripFile(FLAT_DASHES).find("ClientPackage", "alice")["spec"]
    assert set_client(spec, "client_id", "c2") is None and spec["client"]["id"] == "c2"


def test_a_file_no_style_reproduces_is_refused() -> None:
    mixed = "apiVersion: reconciler/v1\nkind: CatalogPackage\nmetadata:\n    name: a\nspec:\n  name: b\n"
    with pytest.raises(WriteBackError, match="without changing its formatting"):
        RoundTripFile(mixed, "mixed.yaml")


def test_a_missing_document_is_an_error() -> None:
    with pytest.raises(WriteBackError, match="no CatalogPackage named 'nope'"):
        RoundTripFile(FLAT_DASHES).find("CatalogPackage", "nope")

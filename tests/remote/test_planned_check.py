"""Apply's check that a plan's requests are what this reconciler sends (``calls.unlike``) decides
exactly as comparing ``describe(op)`` with them did: the same operation, method, path and body,
doors aside; every edit of any of them is caught, and only those.  The body it compares, built
without encoding and decoding it, is the encoded body decoded, for any body."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.model.manifest import CatalogPackageSpec, CreditOverride
from reconciler.plan.operations import (
    KNOWN_AFTER_APPLY,
    CreateCatalogPackage,
    CreateClientPackage,
    CreditIdOf,
    CreditTotal,
    IdOf,
    Operation,
    ReorderCatalogPackage,
    Request,
    SetBookingCredits,
    UpdateCatalogPackage,
    UpdateClientPackage,
)
from reconciler.remote import calls
from reconciler.remote.dispatch import encode_body
from reconciler.remote.routes import DEFAULT_ROUTES

SPEC = CatalogPackageSpec(name="Piano", price=Decimal("540.50"), currency="USD", expiration=6, expiration_unit="M",
                          items=({"total_bookings": 10, "services": ["s1"]},), description="")  # type: ignore[arg-type]
OPS: list[Operation] = [
    CreateCatalogPackage(address="catalog_package.piano", spec=SPEC),
    UpdateCatalogPackage(address="catalog_package.piano", remote_id=IdOf("catalog_package.piano"), spec=SPEC,
                         fields=("active", "price")),
    ReorderCatalogPackage(address="catalog_package.piano", remote_id="pk1", order=3),
    CreateClientPackage(address="client_package.a", client_id="c1", package_id=IdOf("catalog_package.piano"),
                        valid_from=date(2026, 2, 1), price=Decimal("250.25"), tax_uids=("t1",)),
    CreateClientPackage(address="client_package.b", client_id="c1", package_id="pk/1 x"),
    UpdateClientPackage(address="client_package.b", remote_id="cp 9", valid_until=date(2027, 1, 31),
                        credits=(CreditTotal("cr1", 4), CreditTotal(CreditIdOf("client_package.b", ("s1",)), 5))),
    SetBookingCredits(address="client_package.a", credits=(CreditOverride(services=("s1",), total_bookings=14),)),
]


def _described_equal(op: Operation, planned: tuple[Request, ...]) -> bool:
    """The comparison apply made before: describe(op), doors aside."""
    now = [(r.operation, r.method, r.path, r.body) for r in calls.describe(op, DEFAULT_ROUTES)]
    return now == [(r.operation, r.method, r.path, r.body) for r in planned]


def _edits(planned: tuple[Request, ...]) -> list[tuple[str, tuple[Request, ...]]]:
    out: list[tuple[str, tuple[Request, ...]]] = [("as planned", planned), ("no request", ()),
                                                  ("one more", planned + planned[:1])]
    for i, r in enumerate(planned):
        def swap(**change: Any) -> tuple[Request, ...]:
            return (*planned[:i], dataclasses.replace(r, **change), *planned[i + 1:])  # noqa: B023
        out += [("door", swap(door="fallback" if r.door != "fallback" else "gateway")),
                ("operation", swap(operation=r.operation + "x")), ("method", swap(method="PATCH")),
                ("path", swap(path=r.path + "/x")), ("no body", swap(body=None))]
        body = r.body or {}
        for key, value in body.items():
            out.append((f"{key} edited", swap(body={**body, key: [value]})))
            out.append((f"{key} removed", swap(body={k: v for k, v in body.items() if k != key})))
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out.append((f"{key} as float", swap(body={**body, key: float(value)})))
        out.append(("key added", swap(body={**body, "extra": 1})))
    return out


@pytest.mark.parametrize("op", OPS, ids=lambda op: f"{op.op}-{op.address}")
def test_unlike_decides_as_the_described_comparison(op: Operation) -> None:
    planned = calls.describe(op, DEFAULT_ROUTES, lambda route: "gateway")
    assert not calls.unlike(op, DEFAULT_ROUTES, planned)
    caught = 0
    for what, edited in _edits(planned):
        assert calls.unlike(op, DEFAULT_ROUTES, edited) == (not _described_equal(op, edited)), what
        caught += calls.unlike(op, DEFAULT_ROUTES, edited)
    assert caught >= 6  # operation, method, path, body, count... each edit is caught


def test_a_reference_reads_as_known_after_apply_in_the_compared_body() -> None:
    op = OPS[3]
    planned = calls.describe(op, DEFAULT_ROUTES)
    assert planned[0].body is not None and planned[0].body["package_id"] == KNOWN_AFTER_APPLY
    bound = dataclasses.replace(op, package_id="pk1")  # a plan showing a bound id is not this plan
    assert calls.unlike(bound, DEFAULT_ROUTES, planned)


def test_a_fixed_path_is_the_routes_own_and_a_missing_parameter_still_fails() -> None:
    for route in DEFAULT_ROUTES:
        if "{" in route.template:
            for _ in range(2):  # not cached as a path
                with pytest.raises(ValueError, match="missing path parameter"):
                    calls.fixed_path(route)
        else:
            assert calls.fixed_path(route) == route.path()


class _Str(str):
    pass


_leaf = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
         | st.builds(_Str, st.text(max_size=3)) | st.decimals(allow_infinity=False, allow_nan=False)
         | st.dates() | st.datetimes()
         | st.builds(IdOf, st.just("catalog_package.a"))
         | st.builds(CreditIdOf, st.just("client_package.a"), st.tuples(st.text(max_size=3))))
_body = st.recursive(_leaf, lambda inner: st.lists(inner, max_size=3) | st.lists(inner, max_size=2).map(tuple)
                     | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=12)


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(st.text(max_size=4), _body, max_size=6))
def test_the_compared_body_is_the_encoded_body_decoded(body: dict[str, Any]) -> None:
    expected = json.loads(encode_body(calls._shown(body)))
    got = calls._described_body(calls.Call("create_client_package", {}, body))
    assert json.dumps(got) == json.dumps(expected)  # NaN-safe, type-exact, and keys in the same order
    assert got == expected or "NaN" in json.dumps(expected)


def test_a_nan_is_decoded_afresh_so_it_equals_nothing_as_before() -> None:
    nan = float("nan")
    body = calls._described_body(calls.Call("create_client_package", {}, {"x": nan, "y": [1.5]}))
    assert body is not None and body["x"] is not nan and body["x"] != body["x"] and body["y"] == [1.5]
    assert body != {"x": nan, "y": [1.5]}  # a plan showing that very object is still unlike it

"""Records the apply builds without validating them again are the records validation builds.

``ResourceState.of_client`` skips pydantic's validation (its parts are valid by construction) and
``check_json_safe`` decides its common case in one pass: both are checked here against the slow,
validated way, over generated inputs, so that a field or validator added later cannot make them
diverge unseen.
"""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from reconciler.model.remote import BookingCredit, RemoteClientPackage
from reconciler.state.jsonsafe import _check_json_walk, check_json_safe
from reconciler.state.store import ResourceState, State, StateStore

_id = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=10)
_money = st.none() | st.decimals(min_value=-10**6, max_value=10**6, places=2, allow_nan=False, allow_infinity=False)
_day = st.none() | st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1))
_credit = st.builds(BookingCredit, id=_id, total_bookings=st.integers(-5, 10**6), bookings_usage=st.integers(0, 99),
                    services=st.lists(_id, max_size=3).map(tuple))
_client_package = st.builds(
    RemoteClientPackage, id=_id, client_id=_id, package_id=_id, price=_money, valid_from=_day, valid_until=_day,
    booking_credits=st.lists(_credit, max_size=3).map(tuple), matter_uid=st.none() | _id)


def _validated(rs: ResourceState) -> ResourceState:
    return ResourceState(**{name: getattr(rs, name) for name in ResourceState.model_fields})


@settings(max_examples=300, deadline=None)
@given(_client_package)
def test_a_client_record_equals_the_validated_one(cp: RemoteClientPackage) -> None:
    if not cp.id:  # validation refuses it, and of_client with it
        with pytest.raises(ValidationError, match="id"):
            ResourceState.of_client(cp)
        return
    rs = ResourceState.of_client(cp)
    again = _validated(rs)
    assert rs == again and rs.model_dump_json() == again.model_dump_json()
    assert rs.model_fields_set == again.model_fields_set


def test_client_records_read_back_equal_from_the_state_file(tmp_path: Any) -> None:
    store = StateStore(tmp_path / "state.json")
    cp = RemoteClientPackage(id="cp1", client_id="c1", package_id="p1", price=Decimal("223.50"),
                             valid_from=date(2026, 3, 1), matter_uid="m1",
                             booking_credits=(BookingCredit(id="b1", total_bookings=4, bookings_usage=1,
                                                            services=("s2", "s1")),))
    state = store.write(State.new().with_resource("client_package.a", ResourceState.of_client(cp)), expected_serial=0)
    assert StateStore(tmp_path / "state.json").load().resources == state.resources


class _Str(str):
    pass


class _Int(int):
    pass


_leaf = (st.none() | st.booleans() | st.integers() | st.floats() | _id | st.builds(_Str, _id) | st.builds(_Int)
         | st.decimals(allow_nan=False) | st.tuples(st.integers()) | st.sets(st.integers(), max_size=2))
_key = _id | st.integers() | st.builds(_Str, _id) | st.none()
_value = st.recursive(_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_key, inner, max_size=3),
                      max_leaves=10)


def _outcome(check: Any, value: Any) -> str | None:
    try:
        check(value, "applied")
    except ValueError as e:
        return str(e)
    return None


@settings(max_examples=500, deadline=None)
@given(_value)
def test_the_one_pass_json_check_decides_as_the_full_walk(value: Any) -> None:
    assert _outcome(check_json_safe, value) == _outcome(_check_json_walk, value)


@pytest.mark.parametrize("value, message", [
    ({"a": [1, {"b": math.inf}]}, "applied.a[1].b: inf is not a finite number"),
    ({"a": {1: "x"}}, "applied.a: key 1 is not a string"),
    ({"a": [Decimal("1.5")]}, "applied.a[0]: Decimal is not JSON"),
    ({"a": (1, 2)}, "applied.a: tuple is not JSON"),
])
def test_what_is_not_json_is_refused_with_where_it_is(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_json_safe(value, "applied")


def test_subclasses_of_json_types_are_accepted_as_before() -> None:
    check_json_safe({_Str("k"): [_Int(3), _Str("v"), True, None, 1.5]}, "applied")

"""The client's JSON text (`reconciler/core/jsontext.py`): request bodies, fingerprints and answers
read through orjson must be exactly what the standard library made before, because they are
compared with digests and fingerprints older versions wrote (pending records, states, saved
plans).  Checked against ``json.dumps``/``json.loads`` on the values where the two libraries part,
on generated values, and through the functions that use it (``encode_body``, ``fingerprint``,
``parse_json``).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core import jsontext
from reconciler.plan.document import fingerprint
from reconciler.remote.dispatch import _json_default, encode_body
from reconciler.remote.envelope import parse_json


class Unit(str, enum.Enum):
    MONTH = "month"


class Rank(enum.IntEnum):
    ONE = 1


class Named(str):
    pass


def stdlib(value: Any, sort_keys: bool, default: Any) -> bytes | type[BaseException]:
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=sort_keys, default=default).encode()
    except (TypeError, ValueError) as e:
        return type(e)


def ours(value: Any, sort_keys: bool, default: Any) -> bytes | type[BaseException]:
    try:
        return jsontext.dumps(value, sort_keys=sort_keys, default=default)
    except (TypeError, ValueError) as e:
        return type(e)


PARTING = [
    float("nan"), float("inf"), -float("inf"), 1e-5, 1.5e-07, 5e-324, 0.0001, 1e16, 1e300, -0.0, 0.1, 2**64, -(2**63) - 1, 10**40,
    "é", "名前", "\u2028", "\x7f", "\x1b[31m", "\x00\n\t\"\\/", "\ud800", "one-off 0.00001",
    {"b": 1, "a": 2, "é": 3}, {1: "int key"}, (1, 2), {1, 2}, None, True,
    Decimal("540"), Decimal("540.10"), Decimal("0.00001"), Decimal("NaN"), Decimal("1E+30"),
    dt.date(2026, 12, 2), dt.datetime(2026, 12, 2, 5, 0, tzinfo=dt.timezone.utc),
    Unit.MONTH, Rank.ONE, Named("x"), {Unit.MONTH: 1}, object(),
]


@pytest.mark.parametrize("value", PARTING, ids=repr)
@pytest.mark.parametrize("sort_keys", [False, True])
@pytest.mark.parametrize("default", [None, str, _json_default], ids=["none", "str", "body"])
def test_dumps_is_the_standard_librarys_text_where_orjson_parts_from_it(value: Any, sort_keys: bool,
                                                                         default: Any) -> None:
    wrapped = {"v": value, "w": [value, {"k": value}]}
    assert ours(wrapped, sort_keys, default) == stdlib(wrapped, sort_keys, default)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False, places=4) | st.dates(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(json_values, st.booleans())
def test_generated_bodies_and_views_encode_to_the_same_bytes(value: Any, sort_keys: bool) -> None:
    for default in (str, _json_default):
        assert ours(value, sort_keys, default) == stdlib(value, sort_keys, default)


def test_a_request_body_and_a_fingerprint_are_what_older_versions_wrote() -> None:
    body = {"client_id": "ktsrl7f6h94run82", "package_id": "uf5bp640qa9l4zy3", "price": Decimal("540.5"),
            "valid_from": dt.date(2026, 12, 2), "items": ("a", "b"), "note": "Üben 1e-5"}
    assert encode_body(body) == json.dumps(body, default=_json_default, separators=(",", ":"),
                                           sort_keys=True).encode()
    view = {"client_id": "c", "price": "540.50", "valid_from": "2026-12-02", "valid_until": None,
            "booking_credits": {"sv1": 10}, "matter_uid": None}
    old = json.dumps(view, sort_keys=True, separators=(",", ":"), default=str).encode()
    assert fingerprint(view) == "sha256:" + hashlib.sha256(old).hexdigest()[:32]


ANSWERS = [
    b'{"status":"OK","data":{"client_package":{"id":"x","amount":"540.0","total":10}}}',
    b'{"a":1,"a":2}', b"NaN", b"[Infinity, -Infinity]", b"[1e400]", b"\xef\xbb\xbf{}", b'"\\ud800"',
    b"123456789012345678901234567890", b"-9223372036854775809", b"18446744073709551616",
    b'{"id": "1234567890123456789012"}', b"-0", b"1E-7", b"[1,2,]", b"\xff", b"{", "{\"a\":1}".encode("utf-16"),
    b"[" * 3000 + b"]" * 3000, b'{"x":"\\u00e9\\u001b"}',
]


@pytest.mark.parametrize("text", ANSWERS, ids=lambda t: repr(t[:30]))
def test_loads_reads_what_the_standard_library_reads(text: bytes) -> None:
    def read(f: Any) -> Any:
        try:
            return ("value", repr(f(text)))
        except (ValueError, RecursionError) as e:
            return ("error", type(e))
    assert read(jsontext.loads) == read(json.loads)


def test_an_integer_beyond_64_bits_in_an_answer_stays_an_integer() -> None:
    # orjson would read it as a float: 1.8446744073709552e+19
    assert parse_json(b'{"data":{"amount":18446744073709551616}}') == {"data": {"amount": 2**64}}
    assert parse_json(b"<html>busy</html>") is None and parse_json(b" ") is None

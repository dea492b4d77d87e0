"""The sandbox's JSON text (`reconciler/sandbox/jsontext.py`): orjson where its text is the
standard library's, the standard library everywhere else, so that answers and stored documents
are the same bytes as before. Checked against ``json.dumps`` on the values where the two
libraries part (floats below 1e-4, NaN and infinities read from a body, non-ASCII, DEL, control
characters, lone surrogates, integers beyond 64 bits, non-string keys, deep nesting, circular
values), on generated values, and end to end through a served sandbox.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.sandbox import jsontext, serve_in_thread
from reconciler.sandbox.jsontext import NonFinite, dumps, loads


def stdlib(value: Any, sort_keys: bool = False) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=sort_keys).encode()


PARTING = [
    1e-5, 6.293529e-05, -7.1850441006303285e-09, 1.5e-07, 5e-324, 0.0001, 9.999999999999999e-05,
    1e16, 1e+300, -0.0, 0.1, 100.5, 2**64, -(2**63) - 1, 10**40,
    "é", "名前", "\u2028", "\x7f", "\x1b[31mred", "\x00\x1f\b\f\n\r\t\"\\/", "\ud800", "x\udfff",
    "time-out 0.00001", "one-off", "x1e-5", {"b": 1, "a": 2, "é": 3}, {1: "int key"}, {None: 1}, {True: 1, "x": 2},
    (1, 2), [], {}, None, True, False,
]


@pytest.mark.parametrize("value", PARTING, ids=repr)
@pytest.mark.parametrize("sort_keys", [False, True])
def test_dumps_gives_the_standard_librarys_bytes_where_orjson_parts_from_it(value: Any, sort_keys: bool) -> None:
    try:
        expected = stdlib({"v": value, "w": [value, {"k": value}]}, sort_keys)
    except TypeError:  # e.g. sorting keys of several types: it must raise the same
        with pytest.raises(TypeError):
            dumps({"v": value, "w": [value, {"k": value}]}, sort_keys=sort_keys)
        return
    assert dumps({"v": value, "w": [value, {"k": value}]}, sort_keys=sort_keys) == expected


def test_nan_and_infinities_read_from_json_are_written_back_as_the_standard_library_writes_them() -> None:
    body = loads(b'{"matter_uid": NaN, "price": Infinity, "low": -Infinity, "n": [NaN]}')
    assert math.isnan(body["matter_uid"]) and body["price"] == math.inf and body["low"] == -math.inf
    assert isinstance(body["matter_uid"], NonFinite) and isinstance(body["price"], float)
    assert dumps(body) == b'{"matter_uid":NaN,"price":Infinity,"low":-Infinity,"n":[NaN]}'
    assert dumps(body, sort_keys=True) == stdlib(body, sort_keys=True)
    overflowing = loads('{"matter_uid": 1e400, "low": -1e999, "fine": 1e308, "small": 1e-400}')
    assert isinstance(overflowing["matter_uid"], NonFinite) and type(overflowing["fine"]) is float
    assert dumps(overflowing) == b'{"matter_uid":Infinity,"low":-Infinity,"fine":1e+308,"small":0.0}'
    stored = dumps(body, sort_keys=True).decode()  # stored, and read back
    assert dumps(loads(stored), sort_keys=True).decode() == stored and "NaN" in stored


def test_loads_is_json_loads_for_every_encoding_and_error() -> None:
    for text in ['{"a": 1}', '"é"', "[1, 2.5, 1e400, -1e999, 0.1, 1e-400, 123456789012345678901234567890]",
                 '"\\ud800"']:
        assert loads(text) == json.loads(text)
        for codec in ("utf-8", "utf-16", "utf-32-le"):
            assert loads(text.encode(codec)) == json.loads(text.encode(codec))
    assert type(loads("123456789012345678901234567890")) is int  # not a float, as orjson would read it
    for bad in ["\ufeff{}", "{", b"\xff\xfe\xff", "[1,]", "NaNa"]:
        with pytest.raises((ValueError, UnicodeDecodeError)) as mine:
            loads(bad)
        with pytest.raises((ValueError, UnicodeDecodeError)) as theirs:
            json.loads(bad)
        assert type(mine.value) is type(theirs.value) and str(mine.value) == str(theirs.value)
    with pytest.raises(TypeError):
        loads(1)  # type: ignore[arg-type]


class ItemsOfItsOwn(dict[str, Any]):
    def items(self) -> Any:  # what the standard library's encoder lists
        return [("shown", 1)]


class Text(str):
    pass


def test_subclasses_dates_and_dataclasses_are_left_to_the_standard_library() -> None:
    import collections
    import dataclasses
    import datetime as dt

    @dataclasses.dataclass
    class Point:
        x: int

    for value in [ItemsOfItsOwn(hidden=2), Text("x"), collections.OrderedDict(b=1, a=2), [Text("é")]]:
        assert dumps({"v": value}) == stdlib({"v": value})
    for value in [dt.date(2026, 1, 1), dt.datetime(2026, 1, 1), Point(1)]:
        with pytest.raises(TypeError, match="not JSON serializable"):
            dumps({"v": value})


def test_values_no_library_can_write_raise_what_the_standard_library_raises() -> None:
    circular: list[Any] = []
    circular.append(circular)
    with pytest.raises(ValueError, match="Circular reference"):
        dumps(circular)
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps({"x": b"bytes"})
    deep: Any = "x"
    for _ in range(300):  # deeper than orjson goes
        deep = [deep]
    assert dumps(deep) == stdlib(deep)


NUMBER_LITERALS = ["1e400", "-1e400", "1E999", "NaN", "Infinity", "-Infinity", "1e-400", "0.1", "1.5e-7",
                   "6.293529e-05", "123456789012345678901234", "-0", "-0.0", "1E5", "2.5", "17"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(NUMBER_LITERALS), max_size=8), st.booleans())
def test_any_number_read_from_json_is_written_back_as_the_standard_library_writes_it(
        literals: list[str], as_object: bool) -> None:
    text = ("{" + ",".join(f'"k{i}":{n}' for i, n in enumerate(literals)) + "}" if as_object
            else "[" + ",".join(literals) + "]")
    assert dumps(loads(text)) == stdlib(json.loads(text))
    assert dumps(loads(text), sort_keys=True) == stdlib(json.loads(text), sort_keys=True)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
    | st.text() | st.sampled_from(["e-", "0.0000", "\x7f", "é"]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(json_values, st.booleans())
def test_dumps_is_the_standard_library_on_generated_values(value: Any, sort_keys: bool) -> None:
    # floats made by Python (not read from JSON): orjson writes NaN as null, so the sandbox's own
    # code must never make one; the fast path must still never be taken for them wrongly
    text = stdlib(value, sort_keys)
    if b"NaN" in text or b"Infinity" in text:
        value = loads(text)  # how such a value reaches the sandbox: read from JSON text
    assert dumps(value, sort_keys=sort_keys) == stdlib(value, sort_keys)


def test_a_served_answer_and_stored_document_keep_their_bytes(tmp_path: Path) -> None:
    import httpx

    from reconciler.sandbox import DEMO

    with serve_in_thread(tmp_path / "s.db") as served, httpx.Client() as http:
        headers = {"Authorization": f"Bearer {DEMO['tokens']['staff']}", "Content-Type": "application/json"}
        api = served.fallback_url
        package = http.post(api + "/platform/v1/payment/packages", headers=headers, json={
            "name": "Caf\u00e9 one-off", "price": 100, "currency": "USD", "expiration": 6, "expiration_unit": "M",
            "products": [], "items": [{"total_bookings": 2, "services": [{"id": DEMO["services"][0]["id"]}]}],
        })
        assert package.status_code == 201, package.text
        assert package.content == stdlib(json.loads(package.content))  # "Caf\u00e9", escaped as before
        raw = (b'{"client_id": "%s", "package_id": "%s", "price": "0.00001", "matter_uid": NaN}'
               % (DEMO["clients"][0]["id"].encode(), package.json()["data"]["package"]["id"].encode()))
        refused = http.post(api + "/platform/v1/payment/client_packages", content=raw, headers=headers)
        assert refused.status_code == 400 and b"NaN" not in refused.content  # NaN is not JSON: nothing echoed
        answer = http.post(api + "/platform/v1/payment/client_packages", headers=headers,
                           content=raw.replace(b"NaN", b'"m-1"'))
        assert answer.status_code == 201, answer.text
        assert answer.content == stdlib(json.loads(answer.content))  # the standard library's text
        assert b'"amount":1e-05' in answer.content and b'"conversation_id":"m-1"' in answer.content
        uid = json.loads(answer.content)["data"]["client_package"]["id"]
        stored = served.app.state.sandbox.store.conn().execute(
            "SELECT doc FROM objects WHERE id = ?", (uid,)).fetchone()[0]
        assert stored == stdlib(json.loads(stored), sort_keys=True).decode() and '"m-1"' in stored
        again = http.get(api + f"/business/payments/v1/client_packages/{uid}", headers=headers)
        assert b'"conversation_id":"m-1"' in again.content and b'"amount":1e-05' in again.content
        # an ordinary create takes the fast way for its answer and both its stored documents
        ten = http.post(api + "/platform/v1/payment/packages", headers=headers, json={
            "name": "Ten lessons", "price": "250", "currency": "USD", "expiration": 6, "expiration_unit": "M",
            "products": [], "items": [{"total_bookings": 10, "services": [{"id": DEMO["services"][0]["id"]}]}],
        }).json()["data"]["package"]
        plain = http.post(api + "/platform/v1/payment/client_packages", headers=headers, json={
            "client_id": DEMO["clients"][1]["id"], "package_id": ten["id"], "price": "25.50"})
        assert plain.status_code == 201, plain.text
        shown = json.loads(plain.content)["data"]["client_package"]
        rows = served.app.state.sandbox.store.conn().execute(
            "SELECT doc FROM objects WHERE id IN (?, ?)", (shown["id"], shown["payment_request_id"])).fetchall()
        assert len(rows) == 2
        for value, sort_keys in [(json.loads(plain.content), False)] + [(json.loads(r[0]), True) for r in rows]:
            fast = orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
            assert jsontext._same_as_stdlib(fast) and fast == stdlib(value, sort_keys)

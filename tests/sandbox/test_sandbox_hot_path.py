"""The cheaper create path of the sandbox keeps every promise of the one before it.

- Timestamps of client packages and payment requests: the text strftime made.
- UIDs from the pool: the alphabet and length of vcita's, each character uniform (rejection
  sampling: no byte >= 252 is used), no repeats across many draws, threads or a fork.
- The JSON encoders give exactly the bytes of ``json.dumps`` with the same options, over tricky
  values (escapes, non-ASCII, lone surrogates, floats, key order, non-str keys); NaN and the
  infinities as they reach the sandbox, read from JSON text (`jsontext.loads`; more cases in
  test_sandbox_jsontext.py).
- A create is visible to another connection (another process) as soon as it is answered; a
  refused create leaves nothing written and no transaction open; its reads are made inside its
  write transaction, and the business's products are read only when its package has some.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import math
import os
import sqlite3
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.sandbox import DEMO, envelopes, jsontext, store, values

CLIENTS = [c["id"] for c in DEMO["clients"]]
STAFF = DEMO["tokens"]["staff"]

CREATE = "/platform/v1/payment/client_packages"


# --- UIDs ----------------------------------------------------------------------------------------

def test_uids_have_the_alphabet_and_length_and_do_not_repeat() -> None:
    drawn = [values.new_uid() for _ in range(100_000)]  # ~400 refills of the pool
    assert all(values.is_uid(uid) for uid in drawn)
    assert len(set(drawn)) == len(drawn)


def test_each_uid_character_is_uniform_over_the_alphabet() -> None:
    counts = collections.Counter("".join(values.new_uid() for _ in range(20_000)))
    assert set(counts) == set(values.UID_ALPHABET)
    expected = 20_000 * values.UID_LENGTH / len(values.UID_ALPHABET)  # ~8,900, sd ~93
    assert all(abs(n - expected) < 0.06 * expected for n in counts.values()), counts
    # the mapping itself: bytes 0..251 give each character exactly 7 times, 252..255 nothing
    kept = bytes(range(256)).translate(values._TO_ALPHABET, values._OVER).decode()
    assert len(kept) == 252 and collections.Counter(kept) == dict.fromkeys(values.UID_ALPHABET, 7)


def test_threads_drawing_at_once_get_distinct_uids() -> None:
    results: list[list[str]] = [[] for _ in range(8)]

    def draw(out: list[str]) -> None:
        out.extend(values.new_uid() for _ in range(5_000))

    threads = [threading.Thread(target=draw, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [uid for out in results for uid in out]
    assert len(set(everything)) == len(everything) == 40_000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_a_forked_child_does_not_hand_out_its_parents_next_uids() -> None:
    values.new_uid()  # the pool holds characters now
    read, write = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns about forking a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: its next UIDs, to the parent
        try:
            os.write(write, json.dumps([values.new_uid() for _ in range(50)]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = json.loads(pipe.read())
    os.waitpid(pid, 0)
    parent = [values.new_uid() for _ in range(50)]
    assert len(child) == 50 and not set(child) & set(parent)


# --- JSON encoders -------------------------------------------------------------------------------

_tricky_text = st.one_of(
    st.text(),
    st.sampled_from(["", "é", "日本", "\u2028\u2029", "\x00\x1f\x7f", '"\\/', "\ud800", "\U0001f600", "</script>"]),
)
_numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.1, 1e16, 1e-7, -0.0, 123456789.123456789, 2.5e-300]),
)
_scalars = st.one_of(st.none(), st.booleans(), _numbers, _tricky_text)
_json = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_tricky_text, children, max_size=4),
        # keys json turns into strings (and sorts among the others: all of one type here)
        st.dictionaries(st.integers(min_value=-5, max_value=5), children, max_size=3),
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(_json)
def test_the_encoders_made_once_give_the_bytes_of_json_dumps(value: Any) -> None:
    text = json.dumps(value, separators=(",", ":"))
    if "NaN" in text or "Infinity" in text:  # the only way such a float reaches the sandbox
        value = jsontext.loads(text)
    if not isinstance(value, str):  # a str body is sent as text, not as JSON
        assert envelopes.encode(value) == json.dumps(value, separators=(",", ":")).encode()
    if isinstance(value, dict):
        assert store._dumps(value) == json.dumps(value, separators=(",", ":"), sort_keys=True)


def test_the_encoders_on_values_the_sandbox_stores_and_answers() -> None:
    doc = {"id": "abc", "amount": "223.5", "price": 25.0, "big": 10**20, "nan": jsontext.loads("NaN"),
           "name": "Café \"10\" <lessons>\n", "z": None, "a": [True, False, {"k": "\u2028"}]}
    assert math.isnan(doc["nan"])
    assert store._dumps(doc) == json.dumps(doc, separators=(",", ":"), sort_keys=True)
    assert envelopes.encode(doc) == json.dumps(doc, separators=(",", ":")).encode()
    assert envelopes.encode("Bad Gateway") == b"Bad Gateway"  # text answers as they are
    with pytest.raises(TypeError):
        envelopes.encode({"when": object()})
    circular: list[Any] = []
    circular.append(circular)
    with pytest.raises(ValueError, match="Circular"):
        envelopes.encode(circular)


# --- the create's transaction --------------------------------------------------------------------

def test_a_create_is_visible_to_another_process_as_soon_as_it_is_answered(api: Any) -> None:
    db = api.served.app.state.sandbox.db_path
    package = api.make_package()
    script = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
              "print(c.execute(\"SELECT count(*) FROM objects WHERE id = ?\", (sys.argv[2],)).fetchone()[0])")
    for _ in range(3):
        answer = api.call("gateway", "POST", CREATE, json={"client_id": CLIENTS[0], "package_id": package["id"]})
        assert answer.status_code == 201, answer.text
        created = answer.json()["data"]["client_package"]
        other = sqlite3.connect(db)  # another connection, opened after the answer
        try:
            found = other.execute("SELECT kind, business_id FROM objects WHERE id IN (?, ?) ORDER BY kind",
                                  (created["id"], created["payment_request_id"])).fetchall()
        finally:
            other.close()
        assert [kind for kind, _ in found] == ["client_package", "payment_request"]
        seen = subprocess.run([sys.executable, "-c", script, db, created["id"]],
                              capture_output=True, text=True, timeout=60, check=True)
        assert seen.stdout.strip() == "1"


def test_a_refused_create_writes_nothing_and_leaves_no_transaction_open(api: Any) -> None:
    sandbox = api.served.app.state.sandbox
    package = api.make_package()
    refusals = [({"client_id": "nobody", "package_id": package["id"]}, "Client not found"),
                ({"client_id": CLIENTS[0], "package_id": "nothing"}, "Package not found"),
                ({"client_id": CLIENTS[0], "package_id": package["id"], "valid_from": "soon"},
                 "Valid from is not a valid date (YYYY-MM-DD)"),
                ({"client_id": CLIENTS[0], "package_id": package["id"], "price": "-1"}, "Price is not a number")]
    count = len(sandbox.store.all("client_package")), len(sandbox.store.all("payment_request"))
    for body, message in refusals:
        answer = api.call("gateway", "POST", CREATE, json=body)
        assert (answer.status_code, answer.json()) == (422, {"status": "Error", "error": message})
    assert (len(sandbox.store.all("client_package")), len(sandbox.store.all("payment_request"))) == count
    # the served connection is not left inside a transaction: a write of another connection
    # (which would wait for the write lock, then time out) goes through at once
    other = sqlite3.connect(sandbox.db_path, timeout=0.5, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()
    api.make_client_package(package["id"])


def test_a_package_with_products_still_names_them_and_one_without_reads_none(api: Any) -> None:
    sandbox = api.served.app.state.sandbox
    product = sandbox.store.all("product", sandbox.store.all("business")[0]["id"])[0]
    with_products = api.make_package(products=[{"id": product["id"], "quantity": 2}])
    created = api.make_client_package(with_products["id"])
    assert created["products"] == [{"id": product["id"], "name": product["name"], "quantity": 2}]
    assert api.make_client_package(api.make_package()["id"])["products"] == []


def test_a_create_reads_inside_its_write_transaction_and_skips_products_it_does_not_need(
        tmp_path: Path, sandbox_app_factory: Any) -> None:
    import httpx

    app = sandbox_app_factory()
    sandbox = app.state.sandbox

    async def run() -> list[str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            headers = {"Authorization": f"Bearer {STAFF}"}
            made = await client.post("/api2/platform/v1/payment/packages", headers=headers, json={
                "name": "P", "price": 10, "currency": "USD", "expiration": 1, "expiration_unit": "M",
                "products": [], "items": [{"total_bookings": 1, "services": [{"id": DEMO["services"][0]["id"]}]}]})
            package = made.json()["data"]["package"]["id"]
            seen: list[str] = []
            sandbox.store.conn().set_trace_callback(seen.append)
            answer = await client.post("/apigw" + CREATE, headers=headers,
                                       json={"client_id": CLIENTS[0], "package_id": package})
            sandbox.store.conn().set_trace_callback(None)
            assert answer.status_code == 201, answer.text
            return seen

    statements = [s for s in asyncio.run(run()) if not s.startswith("PRAGMA")]  # the token cache's check
    assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT", statements
    reads = [s for s in statements if s.startswith("SELECT")]
    # the client and the package (`get_in`); no list of the business's products (`all`: ORDER BY)
    assert len(reads) == 2 and not any("ORDER BY" in s for s in reads), reads


# --- timestamps ----------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
                    timezones=st.just(dt.UTC)))
def test_stamp_ms_is_what_strftime_made(moment: dt.datetime) -> None:
    before = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    assert values.stamp_ms(moment) == before


def test_a_frozen_clock_stamps_as_before() -> None:
    clock = values.Clock()
    clock.frozen_today = dt.date(2026, 3, 21)
    assert values.stamp_ms(dt.datetime(2026, 3, 21, 10, 0, 0, 999999, tzinfo=dt.UTC)) == "2026-03-21T10:00:00.999Z"
    assert clock.stamp_ms().startswith("2026-03-21T") and clock.stamp_ms().endswith("Z")
    assert len(clock.stamp_ms()) == len("2026-03-21T10:00:00.000Z")

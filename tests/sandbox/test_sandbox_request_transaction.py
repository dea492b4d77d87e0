"""One transaction per API request (`Store.request`), and what it must never do.

- A create is committed before the first byte of its answer leaves: another connection (which
  sees committed data only) already finds it when the answer's head is sent.
- A create's authentication, reads and writes are one write transaction (one BEGIN, one
  COMMIT); a GET's reads are one read transaction.
- A request that fails after a write leaves nothing written, no transaction open and no cached
  business or token that only the rolled-back write made.
- A COMMIT that fails rolls back: the connection is not left inside a transaction.
- A write inside a read request is refused rather than made outside the request's snapshot.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from reconciler.sandbox import DEMO
from reconciler.sandbox.envelopes import ApiError
from reconciler.sandbox.store import Store

CLIENTS = [c["id"] for c in DEMO["clients"]]
STAFF = {"Authorization": f"Bearer {DEMO['tokens']['staff']}"}
CREATE = "/platform/v1/payment/client_packages"
PACKAGE = {"name": "P", "price": 10, "currency": "USD", "expiration": 1, "expiration_unit": "M",
           "products": [], "items": [{"total_bookings": 1, "services": [{"id": DEMO["services"][0]["id"]}]}]}


def _count(db: str, kind: str) -> int:
    other = sqlite3.connect(db, timeout=5)  # another connection: committed data only
    try:
        return int(other.execute("SELECT count(*) FROM objects WHERE kind = ?", (kind,)).fetchone()[0])
    finally:
        other.close()


async def _asgi(app: Any, method: str, path: str, body: bytes, on_start: Any) -> tuple[int, bytes]:
    """One request straight through the ASGI interface; ``on_start`` runs when the answer's head
    is sent (before anything of it could reach a client)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": b"", "server": ("sandbox", 80), "client": ("127.0.0.1", 1),
             "headers": [(b"authorization", STAFF["Authorization"].encode()),
                         (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}
    sent = [{"type": "http.request", "body": body, "more_body": False}]
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        return sent.pop(0) if sent else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            on_start()
        else:
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


def test_a_create_is_committed_before_its_answer_starts(sandbox_app_factory: Any) -> None:
    import json

    app = sandbox_app_factory()
    db = app.state.sandbox.db_path
    seen_at_start: list[tuple[int, int]] = []

    async def run() -> None:
        status, made = await _asgi(app, "POST", "/api2/platform/v1/payment/packages",
                                   json.dumps(PACKAGE).encode(), lambda: None)
        assert status == 201, made
        package = json.loads(made)["data"]["package"]["id"]
        for i in range(5):
            before = _count(db, "client_package"), _count(db, "payment_request")
            body = json.dumps({"client_id": CLIENTS[i % len(CLIENTS)], "package_id": package}).encode()

            def at_start(before: tuple[int, int] = before) -> None:
                seen_at_start.append((_count(db, "client_package") - before[0],
                                      _count(db, "payment_request") - before[1]))

            status, answer = await _asgi(app, "POST", "/apigw" + CREATE, body, at_start)
            assert status == 201, answer

    asyncio.run(run())
    assert seen_at_start == [(1, 1)] * 5  # both rows committed when the head was sent


def _statements(app: Any, method: str, path: str, body: dict[str, Any] | None) -> tuple[Any, list[str]]:
    import httpx

    store = app.state.sandbox.store

    async def run() -> tuple[Any, list[str]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            seen: list[str] = []
            store.conn().set_trace_callback(seen.append)
            try:
                answer = await client.request(method, path, headers=STAFF, json=body)
            finally:
                store.conn().set_trace_callback(None)
            return answer, seen

    return asyncio.run(run())


def test_a_create_with_its_authentication_is_one_write_transaction(sandbox_app_factory: Any) -> None:
    app = sandbox_app_factory()
    made, _ = _statements(app, "POST", "/api2/platform/v1/payment/packages", PACKAGE)
    package = made.json()["data"]["package"]["id"]
    answer, seen = _statements(app, "POST", "/apigw" + CREATE, {"client_id": CLIENTS[0], "package_id": package})
    assert answer.status_code == 201, answer.text
    assert seen[0] == "BEGIN IMMEDIATE" and seen[-1] == "COMMIT", seen
    assert seen.count("BEGIN IMMEDIATE") == 1 and seen.count("COMMIT") == 1, seen
    assert "PRAGMA data_version" in seen  # the token cache's freshness check, inside it
    assert sum(s.startswith("INSERT") for s in seen) == 2  # the client package and its payment request

    uid = answer.json()["data"]["client_package"]["id"]
    shown, seen = _statements(app, "GET", f"/api2/business/payments/v1/client_packages/{uid}", None)
    assert shown.status_code == 200, shown.text
    assert seen[0] == "BEGIN" and seen[-1] == "COMMIT" and seen.count("BEGIN") == 1, seen
    assert not any(s.startswith(("INSERT", "UPDATE", "DELETE")) for s in seen)


def test_a_refused_request_after_a_write_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    with pytest.raises(ApiError), store.request(write=True):
        with store.write() as tx:  # joins the request's transaction: not committed here
            tx.insert("business", {"id": "b1", "name": "Gone"})
            tx.add_token("tok-1", "staff", "b1")
        assert store.business("b1") == {"id": "b1", "name": "Gone"}  # cached in the transaction
        assert store.token("tok-1") == ("staff", "b1")
        raise ApiError(422, {"status": "Error", "error": "refused"})
    assert not store.conn().in_transaction
    assert store.business("b1") is None and store.token("tok-1") is None  # not served from the cache
    other = sqlite3.connect(store.path)
    try:
        assert other.execute("SELECT count(*) FROM objects").fetchone()[0] == 0
    finally:
        other.close()
    with store.request(write=True), store.write() as tx:  # the next request goes through
        tx.insert("business", {"id": "b2"})
    assert store.get("business", "b2") == {"id": "b2"}
    store.close()


def test_a_write_inside_a_read_request_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    with (pytest.raises(sqlite3.OperationalError, match="within a transaction"),
          store.request(write=False), store.write() as tx):
        tx.insert("business", {"id": "b1"})
    assert not store.conn().in_transaction and store.get("business", "b1") is None
    store.close()


@pytest.mark.parametrize("through_request", [False, True])
def test_a_commit_that_fails_leaves_no_transaction_open(tmp_path: Path, through_request: bool) -> None:
    store = Store(tmp_path / "s.db")
    conn = store.conn()
    # a deferred foreign key is checked at COMMIT: a real COMMIT failure, which leaves
    # SQLite's transaction open until someone rolls it back
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("CREATE TABLE parent (id TEXT PRIMARY KEY)")
    conn.execute("CREATE TABLE child (id TEXT, parent TEXT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        if through_request:
            with store.request(write=True), store.write() as tx:
                tx.insert("business", {"id": "b1"})
                conn.execute("INSERT INTO child VALUES ('c', 'nobody')")
        else:
            with store.write() as tx:
                tx.insert("business", {"id": "b1"})
                conn.execute("INSERT INTO child VALUES ('c', 'nobody')")
    assert not conn.in_transaction
    assert store.get("business", "b1") is None
    with store.write() as tx:  # and the connection takes the next write
        tx.insert("business", {"id": "b2"})
    assert store.get("business", "b2") == {"id": "b2"}
    store.close()

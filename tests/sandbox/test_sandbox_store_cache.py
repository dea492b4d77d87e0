"""The sandbox store's read cache of tokens and businesses (read on every API request).

A create of a client package, the hot path, must leave it in place; a write that adds or changes
a business or a token, in this connection or in another one (another thread, another process),
must empty it: a cached business would otherwise hide a change of its settings (a feature gate
turned off), a cached "no such token" a token just added. The same holds for the client and the
package a create reads (`cached_in`): a change through the API, the operator API or another
connection reaches the next create, and nothing cached for one business reaches another.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from reconciler.sandbox import DEMO
from reconciler.sandbox.store import Store

CLIENTS = [c["id"] for c in DEMO["clients"]]


def _reads(store: Store) -> list[str]:
    seen: list[str] = []
    store.conn().set_trace_callback(lambda sql: seen.append(sql) if sql.startswith("SELECT") else None)
    return seen


def test_a_client_package_write_keeps_the_cache_and_a_business_or_token_write_empties_it(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    with store.write() as tx:
        tx.insert("business", {"id": "b1", "name": "One", "payments": True})
    assert store.token("tok-1") is None  # cached as absent
    assert store.business("b1") == {"id": "b1", "name": "One", "payments": True}

    reads = _reads(store)
    with store.write() as tx:
        tx.insert("client_package", {"id": "cp1", "client_id": "c1"}, business_id="b1")
    assert store.business("b1")["name"] == "One" and store.token("tok-1") is None
    assert reads == []  # both answered from the cache

    with store.write() as tx:
        tx.update("business", {"id": "b1", "name": "One", "payments": False})
    assert store.business("b1")["payments"] is False
    with store.write() as tx:
        tx.add_token("tok-1", "staff", "b1")
    assert store.token("tok-1") == ("staff", "b1")
    store.close()


def test_a_business_changed_through_another_connection_is_read_again(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    with store.write() as tx:
        tx.insert("business", {"id": "b1", "payments": True})
    assert store.business("b1")["payments"] is True

    def elsewhere() -> None:  # another thread: another connection to the same file
        with store.write() as tx:
            tx.update("business", {"id": "b1", "payments": False})

    worker = threading.Thread(target=elsewhere)
    worker.start()
    worker.join()
    assert store.business("b1")["payments"] is False
    store.close()


# --- the create's client and package (`Store.cached_in`) -----------------------------------------

CREATE = "/platform/v1/payment/client_packages"


def _edit(db: str, uid: str, **changes: object) -> None:
    """Change a stored document from another connection (another writer of the same file)."""
    other = sqlite3.connect(db, timeout=10)
    try:
        doc = json.loads(other.execute("SELECT doc FROM objects WHERE id = ?", (uid,)).fetchone()[0])
        doc.update(changes)
        other.execute("UPDATE objects SET doc = ? WHERE id = ?", (json.dumps(doc), uid))
        other.commit()
    finally:
        other.close()


def test_a_create_sees_its_package_and_client_changed_through_the_api_or_another_connection(api: Any) -> None:
    db = api.served.app.state.sandbox.db_path
    package = api.make_package(price=250)
    assert api.make_client_package(package["id"])["amount"] == 250  # both now cached
    changed = api.call("fallback", "PUT", f"/platform/v1/payment/packages/{package['id']}",
                       json={"package": {"price": 300}})
    assert changed.status_code == 200, changed.text
    assert api.make_client_package(package["id"])["amount"] == 300  # our own update

    _edit(db, package["id"], price="410")
    assert api.make_client_package(package["id"])["amount"] == 410
    _edit(db, CLIENTS[0], matter_uid="matter-moved-elsewhere")
    assert api.make_client_package(package["id"])["conversation_id"] == "matter-moved-elsewhere"
    _edit(db, package["id"], active=False)
    refused = api.call("fallback", "POST", CREATE, json={"client_id": CLIENTS[0], "package_id": package["id"]})
    assert (refused.status_code, refused.json()["error"]) == (422, "Package is not active")


def test_a_cached_client_or_package_never_reaches_another_business(api: Any) -> None:
    other = api.new_business()  # made first: a new business empties the cache
    theirs = api.make_package(token=other["staff_token"],
                              items=[{"total_bookings": 1, "services": [{"id": other["services"][0]["id"]}]}])
    package = api.make_package()
    api.make_client_package(package["id"])  # CLIENTS[0] and the package cached for the demo business
    api.make_client_package(theirs["id"], client_id=other["clients"][0]["id"], token=other["staff_token"])
    for body, message in (({"client_id": CLIENTS[0], "package_id": theirs["id"]}, "Client not found"),
                          ({"client_id": other["clients"][0]["id"], "package_id": package["id"]},
                           "Package not found")):
        answer = api.call("fallback", "POST", CREATE, token=other["staff_token"], json=body)
        assert (answer.status_code, answer.json()["error"]) == (422, message)


def test_an_absent_client_is_not_kept_and_a_kept_one_follows_updates(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    assert store.cached_in("client", "c1", "b1") is None
    with store.write() as tx:  # the same connection: data_version does not move for it
        tx.insert("client", {"id": "c1", "matter_uid": "m1"}, business_id="b1")
    assert store.cached_in("client", "c1", "b1") == {"id": "c1", "matter_uid": "m1"}
    assert store.cached_in("client", "c1", "b2") is None  # another business's view of it
    with store.write() as tx:
        tx.update("client", {"id": "c1", "matter_uid": "m2"})
    assert store.cached_in("client", "c1", "b1") == {"id": "c1", "matter_uid": "m2"}
    store.close()


def test_a_change_through_the_operator_api_reaches_the_next_create(api: Any) -> None:
    package = api.make_package(price=250)
    api.make_client_package(package["id"])
    api.op("PATCH", f"/objects/clients/{CLIENTS[0]}", json={"matter_uid": "matter-patched"})
    assert api.make_client_package(package["id"])["conversation_id"] == "matter-patched"
    api.op("PATCH", f"/objects/packages/{package['id']}", json={"active": False})
    refused = api.call("fallback", "POST", CREATE, json={"client_id": CLIENTS[0], "package_id": package["id"]})
    assert (refused.status_code, refused.json()["error"]) == (422, "Package is not active")

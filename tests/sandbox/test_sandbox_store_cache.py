"""The sandbox store's read cache of tokens and businesses (read on every API request).

A create of a client package, the hot path, must leave it in place; a write that adds or changes
a business or a token, in this connection or in another one (another thread, another process),
must empty it: a cached business would otherwise hide a change of its settings (a feature gate
turned off), a cached "no such token" a token just added.
"""

from __future__ import annotations

import threading
from pathlib import Path

from reconciler.sandbox.store import Store


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

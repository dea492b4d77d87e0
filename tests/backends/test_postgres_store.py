"""The postgres state backend against a real PostgreSQL server (the `pg_server` fixture).

Round trips of the state document (tracked, archived and pending records), compare-and-swap on
the serial (a concurrent writer meets "the state moved on", never a lost update), the advisory
lock (exclusive, holder shown, released by the server when the holding process is SIGKILLed),
the schema (created once by many first runs at once, refused when another tool's table has its
name or when it is newer), and rows that cannot be used (newer format, another business).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from reconciler.core.errors import StateError, StateLockedError
from reconciler.remote.target import Secret
from reconciler.state.backends.config import StateConfig
from reconciler.state.backends.pg_schema import SCHEMA_VERSION
from reconciler.state.backends.postgres import PostgresStateStore
from reconciler.state.store import ResourceState, State, StateStore, TargetRef

REPO = Path(__file__).resolve().parents[2]
ACME = TargetRef(gateway_url="https://api.example.test/apigw", business_id="acme000000000001")
OTHER = TargetRef(gateway_url="https://api.example.test/apigw", business_id="other00000000002")


def rows(dsn: str, statement: str, params: Any = None) -> list[Any]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def store_for(dsn: str, key: TargetRef = ACME, **kw: Any) -> PostgresStateStore:
    return PostgresStateStore(Secret(dsn), key, dsn_env="TEST_DSN", **kw)


def resource(n: int) -> ResourceState:
    return ResourceState(kind="ClientPackage", id=f"cp{n:06d}", fingerprint="f" * 8,
                         applied={"client_id": f"c{n}", "package_id": "p1", "price": 10.5, "valid_from": "2026-01-01"},
                         updated_at="2026-01-01T00:00:00Z")


def filled(n: int = 3) -> State:
    st = State.new(ACME)
    for i in range(n):
        st = st.with_resource(f"client_package.c-{i}", resource(i))
    return st.archive("client_package.c-0", reason="left the manifests", at="2026-02-01T00:00:00Z")


def test_round_trip_keeps_every_kind_of_record(pg_dsn: str) -> None:
    store = store_for(pg_dsn)
    assert not store.exists()
    empty = store.load()
    assert empty.serial == 0 and not empty.resources
    st = filled()
    from reconciler.state.store import PendingCreate

    st = st.replace(pending={"ab12": PendingCreate(id="ab12", address="client_package.new", kind="ClientPackage",
                                                   request_digest="sha256:x", details={"client": "c9"},
                                                   opened_at="2026-03-01T00:00:00Z")})
    written = store.write(st, expected_serial=0)
    assert written.serial == 1
    again = store_for(pg_dsn).load()
    assert again == written
    assert set(again.archived) == {"cp000000"} and set(again.pending) == {"ab12"}
    # the row is the same JSON document the state file holds
    doc = rows(pg_dsn, "SELECT document FROM reconciler_state")[0][0]
    assert State.model_validate(doc) == written


def test_write_is_conditional_on_the_serial(pg_dsn: str) -> None:
    a, b = store_for(pg_dsn), store_for(pg_dsn)
    first = a.write(filled(), expected_serial=0)
    seen_by_b = b.load()
    a.write(first.without("client_package.c-1"), expected_serial=first.serial)
    with pytest.raises(StateError, match=r"the state moved on: .* serial 2 .* this run read serial 1"):
        b.write(seen_by_b.with_resource("client_package.extra", resource(99)), expected_serial=seen_by_b.serial)
    final = store_for(pg_dsn).load()
    assert final.serial == 2 and "client_package.extra" not in final.resources
    # the first write of a business that another run created meanwhile is refused too
    with pytest.raises(StateError, match="moved on"):
        store_for(pg_dsn).write(State.new(ACME), expected_serial=0)
    # another lineage is another state
    with pytest.raises(StateError, match="another state"):
        store_for(pg_dsn).write(State.new(ACME), expected_serial=2)


def test_concurrent_writers_never_lose_an_update(pg_dsn: str) -> None:
    """Eight threads each add their resources read-modify-write, retrying on 'moved on': every
    resource is there at the end, and the serial counts exactly the successful writes."""
    store_for(pg_dsn).write(State.new(ACME), expected_serial=0)
    successes = []
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        store = store_for(pg_dsn)
        try:
            for i in range(10):
                while True:
                    st = store.load()
                    try:
                        store.write(st.with_resource(f"client_package.w{w}-{i}", resource(w * 100 + i)),
                                    expected_serial=st.serial)
                        successes.append(1)
                        break
                    except StateError as e:
                        assert "moved on" in e.message
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    final = store_for(pg_dsn).load()
    assert len(final.resources) == 80 and final.serial == 1 + len(successes) == 81


def test_lock_is_exclusive_and_names_its_holder(pg_dsn: str) -> None:
    a, b = store_for(pg_dsn), store_for(pg_dsn, lock_wait=0.2)
    with a.lock("apply") as held:
        assert held.id
        status = b.lock_status()
        assert status.held and status.lock_id == held.id and status.holder["operation"] == "apply"
        with pytest.raises(StateLockedError) as info:
            b.lock("apply").acquire()
        text = info.value.message
        assert f"pid {os.getpid()}" in text and "for 'apply'" in text and held.id in text
        assert "nothing to break" in (info.value.hint or "")
        # another business is another lock
        with store_for(pg_dsn, OTHER).lock("apply"):
            pass
        # writes go through the lock's session
        st = a.write(filled(), expected_serial=0)
        with pytest.raises(StateError, match="held by a live database session"):
            b.unlock(held.id)
    assert not b.lock_status().held
    assert "Nothing to break" in b.unlock("whatever")
    with b.lock("state rm"):
        assert b.load() == st


def test_the_server_releases_the_lock_of_a_killed_process(pg_dsn: str, tmp_path: Path) -> None:
    script = tmp_path / "holder.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        from reconciler.state.backends.postgres import PostgresStateStore
        from reconciler.remote.target import Secret
        from reconciler.state.store import TargetRef
        store = PostgresStateStore(Secret(sys.argv[1]), TargetRef(gateway_url={ACME.gateway_url!r},
                                   business_id={ACME.business_id!r}))
        with store.lock("apply"):
            print("held", flush=True)
            time.sleep(600)
    """))
    proc = subprocess.Popen([sys.executable, str(script), pg_dsn], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        store = store_for(pg_dsn, lock_wait=0.3)
        with pytest.raises(StateLockedError, match=f"pid {proc.pid}"):
            store.lock("apply").acquire()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        deadline = time.monotonic() + 10
        while store.lock_status().held and time.monotonic() < deadline:
            time.sleep(0.05)
        with store.lock("apply") as lock:  # taken without anyone breaking anything
            assert lock.id
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_schema_is_created_once_by_many_first_runs(pg_dsn: str) -> None:
    from reconciler.state.backends import postgres

    postgres._checked.clear()
    errors: list[BaseException] = []

    def first(n: int) -> None:
        try:
            store_for(pg_dsn, TargetRef(gateway_url="https://x.test/apigw", business_id=f"b{n}")).load()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=first, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert rows(pg_dsn, "SELECT key, value FROM reconciler_meta ORDER BY key") == [("created_by", "reconciler"), ("schema_version", str(SCHEMA_VERSION))]


def test_another_tools_table_of_the_same_name_is_refused_and_left_alone(pg_dsn: str) -> None:
    from reconciler.state.backends import postgres

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE reconciler_state (id serial PRIMARY KEY, payload text)")
        conn.execute("INSERT INTO reconciler_state (payload) VALUES ('theirs')")
    postgres._checked.clear()
    with pytest.raises(StateError, match="already has a table reconciler_state that reconciler did not create"):
        store_for(pg_dsn).load()
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT payload FROM reconciler_state").fetchall() == [("theirs",)]
        assert conn.execute("SELECT to_regclass('reconciler_meta')").fetchone() == (None,)


def test_a_newer_schema_or_row_format_is_refused(pg_dsn: str) -> None:
    from reconciler.state.backends import postgres

    store = store_for(pg_dsn)
    st = store.write(filled(), expected_serial=0)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        doc = json.loads(st.to_json())
        doc["format_version"] = 3
        conn.execute("UPDATE reconciler_state SET document = %s::jsonb, format_version = 3", [json.dumps(doc)])
    with pytest.raises(StateError, match="format_version 3 was written by a newer reconciler"):
        store.load()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE reconciler_meta SET value = '99' WHERE key = 'schema_version'")
    postgres._checked.clear()
    with pytest.raises(StateError, match="schema is version 99, newer than this reconciler's"):
        store_for(pg_dsn).load()


def test_a_row_of_another_business_is_not_used(pg_dsn: str) -> None:
    store_for(pg_dsn).write(filled(), expected_serial=0)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE reconciler_state SET business_id = %s", [OTHER.business_id])
    with pytest.raises(StateError, match="belongs to business acme000000000001"):
        store_for(pg_dsn, OTHER).load()


def test_locate_returns_the_configured_backend(pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_DSN", pg_dsn)
    local = StateStore.locate([tmp_path / "manifests"])
    assert isinstance(local, StateStore) and local.kind == "local"
    pg = StateStore.locate([tmp_path / "manifests"], target=ACME,
                           backend=StateConfig(backend="postgres", dsn_env="MY_DSN"))
    assert isinstance(pg, PostgresStateStore) and pg.key == ACME
    assert pg_dsn not in pg.where and "host 127.0.0.1" in pg.where


def test_any_text_a_manifest_may_hold_round_trips(pg_dsn: str) -> None:
    """NUL, lone surrogates escaped, quotes, emoji: what the file keeps, the row keeps."""
    odd = {"description": "a\u0000b \"quoted\" \\ back\\slash \U0001f3b9 \t tab", "price": 1e-7, "n": 10**15}
    st = State.new(ACME).with_resource("catalog_package.odd", ResourceState(
        kind="CatalogPackage", id="pkg1", fingerprint="f", applied=odd, updated_at="2026-01-01T00:00:00Z"))
    written = store_for(pg_dsn).write(st, expected_serial=0)
    assert store_for(pg_dsn).load() == written
    assert store_for(pg_dsn).load().resources["catalog_package.odd"].applied == odd


def test_an_older_schema_is_migrated_in_place(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The migration step, with a version 2 as a future reconciler would add it: a database at
    version 1 holding a state is migrated once (by one of many runs starting at once), and its
    state is read unchanged."""
    from reconciler.state.backends import pg_schema, postgres

    st = store_for(pg_dsn).write(filled(), expected_serial=0)
    v2 = (2, ["ALTER TABLE reconciler_state ADD COLUMN note text NOT NULL DEFAULT ''",
              "UPDATE reconciler_state SET note = 'migrated'"])
    monkeypatch.setattr(pg_schema, "MIGRATIONS", [*pg_schema.MIGRATIONS, v2])
    monkeypatch.setattr(pg_schema, "SCHEMA_VERSION", 2)
    postgres._checked.clear()
    errors: list[BaseException] = []
    loaded: list[State] = []

    def start() -> None:
        try:
            loaded.append(store_for(pg_dsn).load())
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and loaded == [st] * 6
    assert rows(pg_dsn, "SELECT value FROM reconciler_meta WHERE key = 'schema_version'") == [("2",)]
    assert rows(pg_dsn, "SELECT note FROM reconciler_state") == [("migrated",)]  # ran exactly once, in place

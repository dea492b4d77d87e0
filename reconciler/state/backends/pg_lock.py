"""The lock of the postgres state backend: a session-level advisory lock and its holder record.

:class:`PostgresLock` takes ``pg_advisory_lock`` on the store's own connection (waiting the
store's ``lock_wait`` at most, through the server's ``lock_timeout``), keeps that session open
while it is held (the store writes through it), and records who holds it in
``reconciler_lock``.  The server releases the lock when the session ends, however the process
ends; the record is only a description, checked against ``pg_locks`` before it is believed
(:class:`LockInfo`).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from reconciler.core.errors import StateLockedError
from reconciler.state.backends.pg_schema import LOCK, database_errors


@dataclass(frozen=True)
class LockInfo:
    """Who holds a business's lock now (``held`` False: nobody)."""

    held: bool
    lock_id: str | None = None
    holder: dict[str, Any] = field(default_factory=dict)
    session: int | None = None  # the database session (backend pid) holding it

    def describe(self) -> str:
        if not self.held:
            return "not locked"
        if not self.holder:
            return f"locked by database session {self.session} (its holder record is not written yet)"
        h = self.holder
        who = (f"pid {h.get('pid', '?')} on host {h.get('host', '?')} (user {h.get('user', '?')}) "
               f"since {h.get('created_at', '?')}" + (f", for '{h['operation']}'" if h.get("operation") else ""))
        return f"locked by {who} (lock id {self.lock_id}, database session {self.session})"


class PostgresLock:
    """A session-level advisory lock on one business's state, with its holder recorded."""

    def __init__(self, store: Any, operation: str) -> None:
        self.store = store
        self.operation = operation
        self.id: str | None = None

    def acquire(self) -> PostgresLock:
        from reconciler.state.backends.postgres import _now, _user

        store = self.store
        if self.id is not None or store._conn is not None:
            raise RuntimeError("this state's lock is already held by this process")
        conn = store.connect()
        lock_id = secrets.token_hex(4)
        record = {"id": lock_id, "pid": os.getpid(), "host": socket.gethostname(), "user": _user(),
                  "operation": self.operation, "lock": "postgres", "created_at": _now()}
        try:
            with database_errors(store._server, store.dsn, "cannot take the state lock"):
                # The lock session idles while an apply runs: no idle timeout may end it, and a
                # holder whose machine vanished is noticed by keepalives (the lock then ends).
                conn.execute("SET idle_session_timeout = 0; SET idle_in_transaction_session_timeout = 0; "
                             "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; "
                             "SET tcp_keepalives_count = 3")
                conn.execute(f"SET lock_timeout = '{max(1, int(store.lock_wait * 1000))}ms'")
                import psycopg

                try:
                    conn.execute("SELECT pg_advisory_lock(%s)", [store.lock_key])
                except psycopg.errors.LockNotAvailable:
                    status = store._status(conn)
                    raise _locked(status, store) from None
                conn.execute("SET lock_timeout = 0")
                conn.execute(
                    f"INSERT INTO {LOCK} (gateway_url, business_id, lock_id, backend_pid, holder) "
                    "VALUES (%s, %s, %s, pg_backend_pid(), %s::jsonb) ON CONFLICT (gateway_url, business_id) DO UPDATE "
                    "SET lock_id = EXCLUDED.lock_id, backend_pid = EXCLUDED.backend_pid, holder = EXCLUDED.holder, "
                    "taken_at = now()", [store.key.gateway_url, store.key.business_id, lock_id, json.dumps(record)])
        except BaseException:
            conn.close()  # the server releases whatever this session held
            raise
        store._conn, self.id = conn, lock_id
        return self

    def release(self) -> bool:
        store, lock_id = self.store, self.id
        conn, store._conn, self.id = store._conn, None, None
        if conn is None or lock_id is None:
            return False
        try:
            conn.execute(f"DELETE FROM {LOCK} WHERE gateway_url = %s AND business_id = %s AND lock_id = %s",
                         [store.key.gateway_url, store.key.business_id, lock_id])
            conn.execute("SELECT pg_advisory_unlock(%s)", [store.lock_key])
        except Exception:  # noqa: BLE001 - closing the session releases the lock all the same
            return False
        finally:
            conn.close()
        return True

    def __enter__(self) -> PostgresLock:
        return self.acquire()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _locked(status: LockInfo, store: Any) -> StateLockedError:
    err = StateLockedError(f"{store.where} is {status.describe()}", lock_id=status.lock_id or "none",
                           holder=status.holder)
    err.hint = ("Wait for that run to finish: the database releases the lock when its session ends, even if its "
                "process is killed, so there is nothing to break.")
    return err

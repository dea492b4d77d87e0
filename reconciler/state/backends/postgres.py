"""The postgres state backend: one row of state per (gateway URL, business id), written only
over the serial that was read, and a lock the server releases when its session ends.

- :meth:`PostgresStateStore.load` reads the row's document (the same JSON document as the state
  file: tracked, archived and pending records together); no row is a fresh, empty state.
- :meth:`PostgresStateStore.write` is one ``UPDATE ... WHERE lineage = %s AND serial = %s``
  (or an ``INSERT`` for the first write): a write over a state that moved on changes nothing and
  raises "the state moved on".  The previous document is kept in the row (``previous``).
- :meth:`PostgresStateStore.lock` takes a session-level advisory lock
  (``pg_advisory_lock``, waiting ``lock_wait`` seconds at most) on a connection it keeps open
  while it is held, and records its holder in ``reconciler_lock``.  Every write made while the
  lock is held goes through that same session, so a write can only succeed while the lock is
  still held; if the process dies, its connection closes and the server releases the lock:
  there is never a stale lock to break.  Without the lock, each call opens its own connection.

The row key comes from the run's target (:class:`reconciler.state.store.TargetRef`), so a state can
never be read for another business.  The DSN never reaches a message (see ``pg_schema``).
"""

from __future__ import annotations

import getpass
import json
import os
import random
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from reconciler.core.errors import StateError
from reconciler.remote.target import Secret
from reconciler.state.backends.config import StateConfig, describe_dsn
from reconciler.state.backends.pg_lock import LockInfo, PostgresLock
from reconciler.state.backends.pg_schema import (
    LOCK,
    STATE,
    business_lock_key,
    database_errors,
    ensure_schema,
    lock_key_parts,
    scrub,
)
from reconciler.state.store import FORMAT_VERSION, READABLE_VERSIONS, State, TargetRef

#: how long a connection waits for a free slot on a full server (seconds)
CONNECT_PATIENCE = 30.0
#: schemas already checked by this process, by DSN (each connection need not ask again)
_checked: set[int] = set()
_checked_guard = threading.Lock()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _connect_when_a_slot_frees(connect: Any, patience: float = CONNECT_PATIENCE) -> Any:
    """``connect()``, tried again (with jittered back-off, ``patience`` seconds at most) while the
    server has no free connection slot (SQLSTATE 53300): a fleet run with many jobs against a
    server with few slots waits for one instead of failing businesses."""
    import psycopg

    deadline = time.monotonic() + patience
    delay = 0.05
    while True:
        try:
            return connect()
        except psycopg.OperationalError as e:
            full = getattr(e, "sqlstate", None) == "53300" or "too many clients" in str(e).lower() \
                or "remaining connection slots" in str(e).lower()
            if not full or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter, not a secret
        delay = min(delay * 2, 1.0)


class PostgresStateStore:
    """The state of one business in a PostgreSQL database (see the module docstring)."""

    kind = "postgres"

    def __init__(self, dsn: Secret, key: TargetRef, *, dsn_env: str = "", lock_wait: float = 5.0) -> None:
        self.dsn = dsn
        self.key = key
        self.dsn_env = dsn_env
        self.lock_wait = lock_wait
        self._server = describe_dsn(dsn) + (f", from ${dsn_env}" if dsn_env else "")
        self._conn: Any = None  # the session holding the lock, while it is held
        self._guard = threading.Lock()

    @classmethod
    def from_config(cls, config: StateConfig, key: TargetRef, env: dict[str, str] | None = None) -> PostgresStateStore:
        return cls(config.dsn(env if env is not None else dict(os.environ)), key, dsn_env=config.dsn_env)

    @property
    def where(self) -> str:
        """What this state is, for messages: business, gateway and database (never the DSN)."""
        return f"the postgres state of business {self.key.business_id} at {self.key.gateway_url} ({self._server})"

    # --- connections ----------------------------------------------------------------------------

    def connect(self) -> Any:
        """A new autocommit connection whose schema is checked (created or migrated if needed)."""
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        given = conninfo_to_dict(self.dsn.reveal())
        defaults: dict[str, Any] = {k: v for k, v in (("connect_timeout", 15), ("application_name", "reconciler"))
                                    if k not in given}
        with database_errors(self._server, self.dsn):
            conn = _connect_when_a_slot_frees(lambda: psycopg.connect(self.dsn.reveal(), autocommit=True, **defaults))
        try:
            with database_errors(self._server, self.dsn):
                token = hash(self.dsn)
                if token not in _checked:
                    ensure_schema(conn)
                    with _checked_guard:
                        _checked.add(token)
        except BaseException:
            conn.close()
            raise
        return conn

    def _session(self) -> tuple[Any, bool]:
        """The lock's session when held (shared), else a new connection (to close after)."""
        if self._conn is not None:
            return self._conn, False
        return self.connect(), True

    def close(self) -> None:
        """Nothing to close outside a lock (each call closes its own connection)."""

    # --- reading ------------------------------------------------------------------------------

    def exists(self) -> bool:
        return self._row() is not None

    def _row(self) -> tuple[str, int, int, str] | None:
        conn, own = self._session()
        try:
            with database_errors(self._server, self.dsn, "cannot read the state"):
                row: tuple[str, int, int, str] | None = conn.execute(
                    f"SELECT lineage, serial, format_version, document::text FROM {STATE} "
                    "WHERE gateway_url = %s AND business_id = %s",
                    [self.key.gateway_url, self.key.business_id]).fetchone()
                return row
        finally:
            if own:
                conn.close()

    def load(self) -> State:
        """The state in the database; a fresh empty one (not written) when it has no row yet."""
        row = self._row()
        if row is None:
            return State.new()
        _, serial, version, text = row
        return self._parse(text, version, serial)

    def _parse(self, text: str, column_version: int, serial: int) -> State:
        try:
            raw = json.loads(text)
        except ValueError:
            raise self._damaged("its document is not JSON") from None
        if not isinstance(raw, dict):
            raise self._damaged(f"its document is a JSON {type(raw).__name__}, not an object")
        version = raw.get("format_version")
        for v in (version, column_version):
            if isinstance(v, int) and not isinstance(v, bool) and v > FORMAT_VERSION:
                raise self._damaged(f"format_version {v} was written by a newer reconciler (this one reads "
                                    f"{' and '.join(map(str, READABLE_VERSIONS))})",
                                    hint="Upgrade reconciler; nothing was changed.")
        if version == 1 and not isinstance(version, bool):
            raw = {**raw, "format_version": FORMAT_VERSION}  # read as format 2, written back as such
        elif version != FORMAT_VERSION or isinstance(version, bool):
            raise self._damaged(f"format_version {version!r} is not supported")
        if raw.get("serial") != serial:
            raise self._damaged(f"its document's serial {raw.get('serial')!r} is not the row's serial {serial}")
        try:
            state = State.model_validate(raw)
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "(top)"
            raise self._damaged(f"{loc}: {err['msg']}") from None
        if state.target is not None and state.target != self.key:
            raise self._damaged(f"its document belongs to {state.target.describe()}")
        return state

    def _damaged(self, what: str, hint: str | None = None) -> StateError:
        return StateError(f"{self.where} cannot be used: {scrub(what, self.dsn)}",
                          hint=hint or "Nothing was changed. The row's previous document is in its 'previous' column.")

    def check_target(self, state: State, target: TargetRef) -> None:
        """StateError when ``state`` belongs to another target than ``target`` (or this row's)."""
        for want in (target, self.key):
            if state.target is not None and state.target != want:
                raise StateError(f"{self.where} belongs to {state.target.describe()}; this run targets "
                                 f"{want.describe()}")

    # --- writing ------------------------------------------------------------------------------

    def write(self, state: State, *, expected_serial: int, set_serial: int | None = None) -> State:
        """Write ``state`` with serial ``expected_serial + 1`` (or ``set_serial``, higher) and return
        what was written; refused (StateError, nothing written) unless the row holds the same
        lineage at serial ``expected_serial`` (no row, for 0)."""
        if expected_serial < 0:
            raise ValueError("expected_serial must be >= 0")
        new_serial = expected_serial + 1 if set_serial is None else set_serial
        if new_serial <= expected_serial:
            raise ValueError("a write must raise the serial")
        target = state.target or self.key
        if target != self.key:
            raise StateError(f"refusing to write a state of {target.describe()} into {self.where}")
        new = state.model_copy(update={"serial": new_serial, "target": target})
        data = new.model_dump_json()
        conn, own = self._session()
        try:
            with database_errors(self._server, self.dsn, "cannot write the state (the database keeps the one "
                                                          "before this write, unless the server committed it)"):
                if expected_serial == 0:
                    cur = conn.execute(
                        f"INSERT INTO {STATE} (gateway_url, business_id, lineage, serial, format_version, document, "
                        "updated_by) VALUES (%s, %s, %s, %s, %s, %s::json, %s) ON CONFLICT DO NOTHING",
                        [self.key.gateway_url, self.key.business_id, new.lineage, new.serial, FORMAT_VERSION, data,
                         self._by()])
                else:
                    cur = conn.execute(
                        f"UPDATE {STATE} SET previous = document, document = %s::json, serial = %s, "
                        "format_version = %s, updated_at = now(), updated_by = %s "
                        "WHERE gateway_url = %s AND business_id = %s AND lineage = %s AND serial = %s",
                        [data, new.serial, FORMAT_VERSION, self._by(), self.key.gateway_url, self.key.business_id,
                         new.lineage, expected_serial])
                if cur.rowcount != 1:
                    raise self._moved_on(conn, new.lineage, expected_serial)
        finally:
            if own:
                conn.close()
        return new

    def _by(self) -> str:
        return f"{_user()}@{socket.gethostname()} pid {os.getpid()}"

    def _moved_on(self, conn: Any, lineage: str, expected: int) -> StateError:
        row = conn.execute(f"SELECT lineage, serial, updated_at, updated_by FROM {STATE} "
                           "WHERE gateway_url = %s AND business_id = %s",
                           [self.key.gateway_url, self.key.business_id]).fetchone()
        if row is None:
            return StateError(f"{self.where} has disappeared since it was read (at serial {expected}); "
                              "refusing to write a new one over whatever happened",
                              hint="Find out who deleted the row, and restore it before running again.")
        by = scrub(str(row[3]), self.dsn)
        if expected == 0:
            return StateError(f"the state moved on: {self.where} was created by another run meanwhile "
                              f"(serial {row[1]}, "
                              f"by {by}); refusing to overwrite it",
                              hint="Run again: reconciler reads the state afresh. Take the state lock to avoid this.")
        if row[0] != lineage:
            return StateError(f"{self.where} is another state (lineage {row[0]}, expected {lineage}); "
                              "refusing to overwrite it")
        return StateError(f"the state moved on: {self.where} is at serial {row[1]} (written {row[2]:%Y-%m-%d %H:%M:%S} "
                          f"by {by}), this run read serial {expected}; refusing to overwrite it",
                          hint="Run again: reconciler reads the state afresh. Take the state lock to avoid this.")

    # --- the lock -----------------------------------------------------------------------------

    @property
    def lock_key(self) -> int:
        return business_lock_key(self.key.gateway_url, self.key.business_id)

    def lock(self, operation: str) -> PostgresLock:
        """The (not yet taken) lock of this state; use it as a context manager."""
        return PostgresLock(self, operation)

    def lock_status(self) -> LockInfo:
        """Who holds the lock now, from the server's own lock table and the holder records."""
        conn, own = self._session()
        try:
            with database_errors(self._server, self.dsn, "cannot read the state lock"):
                return self._status(conn)
        finally:
            if own:
                conn.close()

    def _status(self, conn: Any) -> LockInfo:
        classid, objid = lock_key_parts(self.lock_key)
        held = conn.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s "
                            "AND objid = %s AND objsubid = 1", [classid, objid]).fetchone()
        if held is None:
            return LockInfo(held=False)
        row = conn.execute(f"SELECT lock_id, backend_pid, holder FROM {LOCK} WHERE gateway_url = %s "
                           "AND business_id = %s", [self.key.gateway_url, self.key.business_id]).fetchone()
        if row is None or row[1] != held[0]:
            return LockInfo(held=True, session=held[0])
        return LockInfo(held=True, lock_id=row[0], holder=row[2], session=held[0])

    def unlock(self, lock_id: str) -> str:
        """What ``state unlock`` says: a server-released lock is never broken by hand."""
        status = self.lock_status()
        if not status.held:
            return (f"Nothing to break: {self.where} is not locked (a lock ends with its database session, "
                    "even when its process is killed).")
        if status.lock_id != lock_id:
            raise StateError(f"lock {lock_id} is not the lock held now ({status.describe()}); nothing was unlocked",
                             hint="Run the command that reported the lock again to see the current holder and lock id.")
        raise StateError(f"lock {lock_id} is held by a live database session: {status.describe()}; nothing was "
                         "unlocked", hint="The server releases it when that session ends (its process exits or is "
                                          "killed); stop that process, or wait.")

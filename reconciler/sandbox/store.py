"""SQLite persistence of the sandbox: one database file, WAL mode, one transaction per write.

Every object (directory, business, staff, service, client, product, package, client_package,
payment_status, payment_request) is one row of `objects`: its UID, its kind, the business it belongs to, and a JSON
document holding its fields (its text: `jsontext.dumps`, keys sorted). Documents keep the values as
the sandbox stores them; `render` turns them into the API's shapes (strings for numbers and so on).
Bearer tokens are rows of `tokens`.

Connections are per thread (sqlite3 objects must stay on their thread); the ASGI app runs its
handlers on the event loop thread, so a served sandbox uses one connection for all requests.
A write is `with store.write() as tx: ...`: BEGIN IMMEDIATE, the changes, COMMIT (or ROLLBACK on
error), so a crash never leaves half an operation, and a committed write survives a killed process.
An API request runs in one transaction (`request()`): its authentication, reads and writes, and
the handler's `write()` blocks join it; it commits before the answer is built.

Durability: `synchronous=OFF`. A COMMIT hands the WAL frames to the OS before it returns, so a
committed write survives a killed or crashed sandbox process (the promise the API imitation and
its tests rely on); what it gives up is the fsync at each checkpoint, i.e. the last writes (or,
rarely, the file: `reconciler sandbox reset` replaces it) when the machine itself loses power.
The fsyncs cost ~20 us of CPU per create and stalled the event loop (bench/bench_sandbox_creates.py).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .jsontext import dumps, loads

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    business_id TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_by_business ON objects (kind, business_id, seq);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner_id TEXT NOT NULL
);
"""

KINDS = (
    "directory", "business", "staff", "service", "client",
    "product", "package", "client_package", "payment_status", "payment_request",
)


#: kinds whose decoded documents a connection keeps between requests (`Store.cached_in`): a
#: create of a client package reads its client and its package, and rarely changes either
CACHED_KINDS = frozenset({"business", "client", "package"})


def _dumps(doc: dict[str, Any]) -> str:
    """A document's stored text: ``json.dumps(doc, separators=(",", ":"), sort_keys=True)``."""
    return dumps(doc, sort_keys=True).decode("ascii")


def _commit(conn: sqlite3.Connection) -> None:
    """COMMIT; when it fails, roll back before raising, so the connection (the served sandbox's
    only one) is never left inside a transaction that every later BEGIN would trip on."""
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class Transaction:
    """The changes of one write; only valid inside `Store.write()`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        #: whether it wrote what the read cache holds (CACHED_KINDS, tokens): see Store._fresh_cache
        self.touches_cache = False

    def insert(self, kind: str, doc: dict[str, Any], business_id: str | None = None) -> None:
        # a new client or package cannot make the cache stale (`cached_in` keeps no absence);
        # a new business can (`business()` keeps "no such business")
        self.touches_cache = self.touches_cache or kind == "business"
        self._conn.execute(
            "INSERT INTO objects (id, kind, business_id, doc) VALUES (?, ?, ?, ?)",
            (doc["id"], kind, business_id, _dumps(doc)),
        )

    def update(self, kind: str, doc: dict[str, Any]) -> None:
        self.touches_cache = self.touches_cache or kind in CACHED_KINDS
        cur = self._conn.execute(
            "UPDATE objects SET doc = ? WHERE id = ? AND kind = ?", (_dumps(doc), doc["id"], kind)
        )
        if cur.rowcount != 1:
            raise KeyError(f"{kind} {doc['id']} does not exist")

    def get(self, kind: str, uid: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT doc FROM objects WHERE id = ? AND kind = ?", (uid, kind)
        ).fetchone()
        return loads(row[0]) if row else None

    def add_token(self, token: str, kind: str, owner_id: str) -> None:
        self.touches_cache = True
        self._conn.execute(
            "INSERT INTO tokens (token, kind, owner_id) VALUES (?, ?, ?)", (token, kind, owner_id)
        )

    def wipe(self) -> None:
        self.touches_cache = True
        self._conn.execute("DELETE FROM objects")
        self._conn.execute("DELETE FROM tokens")


class Store:
    """The sandbox database at `path` (created with its schema when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        conn = self.conn()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode; writes go through `write()`)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=10.0)
            conn.execute("PRAGMA synchronous=OFF")  # see the module's docstring
            conn.execute("PRAGMA busy_timeout=10000")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection opened by any thread."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        """One write transaction: committed when the block ends, rolled back if it raises.

        Inside `request(write=True)` it joins the request's transaction, which commits (or
        rolls back) when the request's block ends."""
        conn = self.conn()
        if getattr(self._local, "request_writes", False):  # joins the request's (see request())
            tx = Transaction(conn)
            try:
                yield tx
            finally:
                if tx.touches_cache:
                    self._local.cache = {}
            return
        conn.execute("BEGIN IMMEDIATE")
        tx = Transaction(conn)
        try:
            yield tx
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            if tx.touches_cache:  # a create of a client package leaves tokens and businesses cached
                self._local.cache = {}
        _commit(conn)

    @contextmanager
    def request(self, *, write: bool) -> Iterator[None]:
        """One API request's transaction, around its authentication and its handler: a write
        transaction (BEGIN IMMEDIATE; the handler's `write()` blocks join it, and it commits
        when the block ends, before the answer can leave) or a read transaction (one snapshot
        for all the request's reads). One transaction instead of one per statement: each
        costs lock and unlock calls on the WAL's shared memory, and the freshness check of the
        read cache (`PRAGMA data_version`) is free inside one."""
        conn = self.conn()
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        local = self._local
        local.request_writes = write
        try:
            self._fresh_cache()  # checked once: the transaction's snapshot cannot move under it
            local.checked = True
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            local.cache = {}  # it may hold what the rolled-back writes made
            raise
        finally:
            local.request_writes = local.checked = False
        _commit(conn)

    # -- reads -----------------------------------------------------------------------------

    def get(self, kind: str, uid: str) -> dict[str, Any] | None:
        row = self.conn().execute(
            "SELECT doc FROM objects WHERE id = ? AND kind = ?", (uid, kind)
        ).fetchone()
        return loads(row[0]) if row else None

    def get_in(self, kind: str, uid: str, business_id: str) -> dict[str, Any] | None:
        """The object only if it belongs to `business_id` (isolation between businesses)."""
        row = self.conn().execute(
            "SELECT doc FROM objects WHERE id = ? AND kind = ? AND business_id = ?",
            (uid, kind, business_id),
        ).fetchone()
        return loads(row[0]) if row else None

    def cached_in(self, kind: str, uid: str, business_id: str) -> dict[str, Any] | None:
        """`get_in` of a kind of CACHED_KINDS, from this connection's read cache when it holds
        it (kept like tokens and businesses: see `_fresh_cache`). The document is shared with
        the cache: read it, never change it."""
        cache = self._fresh_cache()
        key = (kind, uid, business_id)
        found = cache.get(key)
        if found is None:
            found = self.get_in(kind, uid, business_id)
            if found is not None:  # an absent one is read again (it may be made next)
                cache[key] = found
        return found

    def all(self, kind: str, business_id: str | None = None, *, limit: int = -1,
             offset: int = 0) -> list[dict[str, Any]]:
        """Objects of a kind (of one business when given), oldest first."""
        if business_id is None:
            rows = self.conn().execute(
                "SELECT doc FROM objects WHERE kind = ? ORDER BY seq LIMIT ? OFFSET ?",
                (kind, limit, offset),
            )
        else:
            rows = self.conn().execute(
                "SELECT doc FROM objects WHERE kind = ? AND business_id = ? "
                "ORDER BY seq LIMIT ? OFFSET ?",
                (kind, business_id, limit, offset),
            )
        return [loads(row[0]) for row in rows]

    def select(self, kind: str, business_id: str, where: list[str], params: list[Any], order: str,
               limit: int = -1, offset: int = 0) -> list[dict[str, Any]]:
        """Objects of a kind of one business matching SQL conditions on ``doc`` (``json_extract``),
        in ``order`` (an ORDER BY clause built by the caller from fixed names), paged in SQL."""
        clause = "".join(f" AND ({w})" for w in where)
        rows = self.conn().execute(
            f"SELECT doc FROM objects WHERE kind = ? AND business_id = ?{clause} ORDER BY {order} LIMIT ? OFFSET ?",
            (kind, business_id, *params, limit, offset),
        )
        return [loads(row[0]) for row in rows]

    def count(self, kind: str, business_id: str) -> int:
        row = self.conn().execute(
            "SELECT COUNT(*) FROM objects WHERE kind = ? AND business_id = ?", (kind, business_id)
        ).fetchone()
        return int(row[0])

    def token(self, token: str) -> tuple[str, str] | None:
        """(kind, owner id) of a bearer token: staff → business id, directory → directory id."""
        cache = self._fresh_cache()
        key = ("token", token)
        if key not in cache:
            row = self.conn().execute(
                "SELECT kind, owner_id FROM tokens WHERE token = ?", (token,)
            ).fetchone()
            cache[key] = (row[0], row[1]) if row else None
        return cache[key]  # type: ignore[no-any-return]

    def business(self, business_id: str) -> dict[str, Any] | None:
        """A business document, cached like tokens (read on every API request)."""
        cache = self._fresh_cache()
        key = ("business", business_id)
        if key not in cache:
            cache[key] = self.get("business", business_id)
        found = cache[key]
        return dict(found) if found is not None else None

    def _fresh_cache(self) -> dict[tuple[str, ...], Any]:
        """This thread's read cache of tokens and of documents of CACHED_KINDS, emptied whenever
        they may have changed: `PRAGMA data_version` moves when another connection (thread or
        process) committed, and our own writes that add or change a document of those kinds or
        a token clear it in `write()` (a create of a client package, the hot path, keeps it).
        Inside a request's transaction it was checked when the transaction began (`request()`)."""
        local = self._local
        if getattr(local, "checked", False):
            return local.cache  # type: ignore[no-any-return]
        version = self.conn().execute("PRAGMA data_version").fetchone()[0]
        if getattr(local, "version", None) != version or not hasattr(local, "cache"):
            local.version = version
            local.cache = {}
        return local.cache  # type: ignore[no-any-return]

    def tokens_of(self, owner_id: str) -> list[tuple[str, str]]:
        rows = self.conn().execute(
            "SELECT token, kind FROM tokens WHERE owner_id = ? ORDER BY rowid", (owner_id,)
        )
        return [(row[0], row[1]) for row in rows]

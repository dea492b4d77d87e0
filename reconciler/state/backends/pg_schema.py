"""The postgres backend's tables, their version and migrations, and its one error translator.

Tables (in the first schema of the connection's ``search_path``, usually ``public``; choose
another with ``options=-csearch_path=NAME`` in the DSN):

- ``reconciler_meta (key, value)``: ``schema_version`` and ``created_by = reconciler``;
- ``reconciler_state``: one row per (gateway URL, business id): the state document (the same
  JSON as the state file, as ``json`` text: ``jsonb`` would refuse the ``\\u0000`` a manifest
  value may hold), its lineage, serial and format version, the document before the
  last write (``previous``, the file backend's ``.backup``), when and by whom it was written;
- ``reconciler_lock``: who holds each business's lock (the lock itself is a session-level
  advisory lock, which the server releases when the session ends: this row only describes it).

:func:`ensure_schema` creates them on first use and migrates an older schema, under a
transaction-scoped advisory lock so that many first runs at once create them once.  A table of
the same name that reconciler did not create (another tool's) is refused, as is a schema newer
than this reconciler's.

:func:`database_errors` is the single place where psycopg's exceptions become StateErrors: one
sentence per failure (unreachable, login refused, TLS required but not offered, no such
database, no privilege...), with the DSN's password and the DSN itself scrubbed from anything
the server or the driver said.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

from reconciler.core.errors import StateError
from reconciler.remote.target import Secret

SCHEMA_VERSION = 1
META, STATE, LOCK = "reconciler_meta", "reconciler_state", "reconciler_lock"
#: the columns each table must have (a table missing one is not ours)
COLUMNS = {
    META: {"key", "value"},
    STATE: {"gateway_url", "business_id", "lineage", "serial", "format_version", "document", "previous",
            "updated_at", "updated_by"},
    LOCK: {"gateway_url", "business_id", "lock_id", "backend_pid", "holder", "taken_at"},
}

#: (version, statements): applied in order to a database whose schema_version is below version
MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        f"CREATE TABLE {META} (key text PRIMARY KEY, value text NOT NULL)",
        f"""CREATE TABLE {STATE} (
            gateway_url text NOT NULL,
            business_id text NOT NULL,
            lineage text NOT NULL,
            serial bigint NOT NULL CHECK (serial >= 0),
            format_version integer NOT NULL,
            document json NOT NULL,
            previous json,
            updated_at timestamptz NOT NULL DEFAULT now(),
            updated_by text NOT NULL DEFAULT '',
            PRIMARY KEY (gateway_url, business_id))""",
        f"""CREATE TABLE {LOCK} (
            gateway_url text NOT NULL,
            business_id text NOT NULL,
            lock_id text NOT NULL,
            backend_pid integer NOT NULL,
            holder jsonb NOT NULL,
            taken_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (gateway_url, business_id))""",
        f"COMMENT ON TABLE {STATE} IS 'reconciler: one state document per (gateway URL, business id)'",
        f"INSERT INTO {META} (key, value) VALUES ('created_by', 'reconciler')",
    ]),
]

#: the advisory lock (bigint key) under which the schema is created or migrated
SCHEMA_LOCK_KEY = int.from_bytes(hashlib.sha256(b"reconciler schema").digest()[:8], "big", signed=True)


def business_lock_key(gateway_url: str, business_id: str) -> int:
    """The advisory lock key (signed 64 bits) of one business's state."""
    digest = hashlib.sha256(f"reconciler state\0{gateway_url}\0{business_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_key_parts(key: int) -> tuple[int, int]:
    """(classid, objid) under which ``pg_locks`` shows the advisory lock of bigint ``key``."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


def _found(conn: Any) -> tuple[dict[str, set[str]], int | None]:
    rows = conn.execute(
        """SELECT c.relname, array_agg(a.attname::text)
             FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(%s)
            GROUP BY c.relname""", [list(COLUMNS)]).fetchall()
    tables = {name: set(cols) for name, cols in rows}
    version = None
    if META in tables and COLUMNS[META] <= tables[META]:
        row = conn.execute(f"SELECT value FROM {META} WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row and str(row[0]).isdigit() else None
    return tables, version


def _check_ours(tables: dict[str, set[str]], version: int | None) -> None:
    strangers = [t for t in COLUMNS if t in tables and (not COLUMNS[t] <= tables[t] or version is None)]
    if strangers:
        name = strangers[0]
        why = ("its columns are not reconciler's" if not COLUMNS[name] <= tables[name]
               else "no reconciler schema version beside it")
        raise StateError(
            f"the state database already has a table {name} that reconciler did not create ({why}); "
            "refusing to use or change it",
            hint="Give reconciler a database (or a schema: options=-csearch_path=NAME in the DSN) of its own.")
    if version is not None and version > SCHEMA_VERSION:
        raise StateError(f"the state database's reconciler schema is version {version}, newer than this "
                         f"reconciler's ({SCHEMA_VERSION}); nothing was changed",
                         hint="Upgrade reconciler (every runner sharing this database).")


def ensure_schema(conn: Any) -> int:
    """Create or migrate reconciler's tables (an autocommit connection); the schema version."""
    tables, version = _found(conn)
    _check_ours(tables, version)
    if version == SCHEMA_VERSION:
        return version
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEMA_LOCK_KEY])
        tables, version = _found(conn)  # another first run may have done it meanwhile
        _check_ours(tables, version)
        current = version or 0
        for target, statements in MIGRATIONS:
            if target <= current:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"INSERT INTO {META} (key, value) VALUES ('schema_version', %s) "
                         "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", [str(target)])
            current = target
    return SCHEMA_VERSION


# --- errors -------------------------------------------------------------------------------------


def scrub(text: str, dsn: Secret | None) -> str:
    """``text`` without the DSN or its password, one line, control characters escaped."""
    if dsn is not None:
        secret = dsn.reveal()
        text = text.replace(secret, "***")
        with contextlib.suppress(Exception):
            from psycopg.conninfo import conninfo_to_dict

            password = conninfo_to_dict(secret).get("password")
            if password:
                text = text.replace(str(password), "***")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    text = "; ".join(lines)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _explain(e: Exception, where: str, dsn: Secret | None) -> tuple[str, str | None]:
    import psycopg

    said = scrub(str(e), dsn)
    low = said.lower()
    sqlstate = getattr(e, "sqlstate", None) or ""
    if "password authentication failed" in low or sqlstate == "28P01":
        return (f"the state database ({where}) refused the login: password authentication failed",
                "Check the user and password in the DSN's variable.")
    if "server does not support ssl" in low or ("ssl" in low and "required" in low):
        return (f"the state database ({where}) does not offer TLS, but the DSN requires it (sslmode)",
                "Enable TLS on the server, or (on a trusted network only) lower sslmode in the DSN.")
    if sqlstate == "3D000" or ("database" in low and "does not exist" in low):
        return f"the state database ({where}) does not exist: {said}", "Create it, or fix dbname in the DSN."
    if sqlstate.startswith("28") or "no pg_hba.conf entry" in low:
        return (f"the state database ({where}) refused the login: {said}",
                "Check the user, password and the server's pg_hba.conf.")
    if sqlstate == "42501":
        return (f"the state database's user may not do what reconciler needs ({where}): {said}",
                "Grant it CREATE on the schema (for the first run) and read/write on reconciler_* tables.")
    if sqlstate == "53300" or "too many clients" in low or "remaining connection slots" in low:
        return f"the state database ({where}) has no free connection: {said}", "Try again, or run fewer --jobs."
    if isinstance(e, psycopg.OperationalError):
        return (f"cannot reach the state database ({where}): {said}",
                "Check that the server runs and the DSN's host and port; nothing was changed.")
    return f"the state database ({where}) failed: {said}", None


@contextlib.contextmanager
def database_errors(where: str, dsn: Secret | None, doing: str = "") -> Iterator[None]:
    """Turn psycopg's exceptions inside the block into one StateError each (see module)."""
    import psycopg

    try:
        yield
    except psycopg.Error as e:
        message, hint = _explain(e, where, dsn)
        if doing:
            message = f"{doing}: {message}"
        raise StateError(message, hint=hint) from None

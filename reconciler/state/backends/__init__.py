"""State backends: where the state document of a business is kept, and who may write it.

Every backend stores the same document (:class:`reconciler.state.store.State`: tracked, archived and
pending records together) and offers the same small interface, :class:`StateBackend`:

====================  =====================================================================
``load()``            the state (a fresh empty one when there is none yet)
``write(s, expected_serial=N)``  write ``s`` at serial N+1 only over serial N (compare-and-swap)
``lock(operation)``   a context manager: one writer at a time, released when the holder ends
``check_target()``    refuse a state that belongs to another business
``where``             what the state is, for messages (never a secret)
====================  =====================================================================

- ``local`` (:class:`reconciler.state.store.StateStore`): the state file next to the manifests, a
  lock file beside it; what a single business committing its state in git uses.
- ``postgres`` (:class:`reconciler.state.backends.postgres.PostgresStateStore`): one row per
  (gateway URL, business id) in a PostgreSQL database, an advisory lock the server releases when
  the session ends; what teams and fleets share.

:meth:`reconciler.state.store.StateStore.locate` returns the backend a run's configuration chooses
(:mod:`reconciler.state.backends.config`); :func:`list_businesses` lists a database's states.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from reconciler.core.errors import ConfigError
from reconciler.state.backends.config import StateConfig, resolve_state_config
from reconciler.state.store import State, TargetRef

__all__ = ["BusinessRow", "StateBackend", "StateConfig", "list_businesses", "open_backend", "resolve_state_config"]


class StateBackend(Protocol):
    """What the applier, the committer and the commands need of a state, wherever it lives."""

    kind: str

    @property
    def where(self) -> str: ...

    def load(self) -> State: ...

    def write(self, state: State, *, expected_serial: int, set_serial: int | None = None) -> State: ...

    def lock(self, operation: str) -> Any: ...

    def check_target(self, state: State, target: TargetRef) -> None: ...

    def exists(self) -> bool: ...

    def close(self) -> None: ...


def _key(target: Any) -> TargetRef:
    return target if isinstance(target, TargetRef) else TargetRef.of(target)


def open_backend(config: StateConfig, *, target: Any, state_path: str | Path | None = None,
                 env: dict[str, str] | None = None) -> Any:
    """The non-local backend ``config`` names, for ``target``'s business."""
    if state_path is not None:
        raise ConfigError(f"--state names a state file, but the state backend is {config.backend} ({config.source})",
                          hint="Drop --state, or choose the file backend with --state-backend local.")
    if target is None:
        raise ConfigError(f"the {config.backend} state backend keeps one state per business: this command needs "
                          "a target (VCITA_* variables, --target NAME, or the folder's target.toml)")
    if config.backend == "postgres":
        from reconciler.state.backends.postgres import PostgresStateStore

        return PostgresStateStore.from_config(config, _key(target), env)
    raise ConfigError(f"unknown state backend {config.backend!r}")


@dataclass(frozen=True)
class BusinessRow:
    """One state a database holds."""

    gateway_url: str
    business_id: str
    serial: int
    lineage: str
    updated_at: datetime
    updated_by: str
    resources: int
    archived: int
    pending: int
    lock: str  # "" or a description of the holder


def list_businesses(config: StateConfig, env: dict[str, str] | None = None) -> list[BusinessRow]:
    """Every business whose state the configured database holds, with its lock holder."""
    if config.is_local:
        raise ConfigError("listing businesses needs a database state backend (--state-backend postgres)")
    from reconciler.state.backends.pg_schema import STATE, database_errors
    from reconciler.state.backends.postgres import PostgresStateStore

    probe = PostgresStateStore.from_config(config, TargetRef(gateway_url="-", business_id="-"),
                                           env if env is not None else dict(os.environ))
    conn = probe.connect()
    try:
        with database_errors(probe._server, probe.dsn, "cannot list the states"):
            rows = conn.execute(
                f"""SELECT gateway_url, business_id, serial, lineage, updated_at, updated_by,
                           (SELECT count(*) FROM json_object_keys(document->'resources')),
                           (SELECT count(*) FROM json_object_keys(COALESCE(document->'archived', '{{}}'::json))),
                           (SELECT count(*) FROM json_object_keys(COALESCE(document->'pending', '{{}}'::json)))
                      FROM {STATE} ORDER BY gateway_url, business_id""").fetchall()
            out = []
            for r in rows:
                one = PostgresStateStore(probe.dsn, TargetRef(gateway_url=r[0], business_id=r[1]),
                                         dsn_env=probe.dsn_env)
                status = one._status(conn)
                url, business, serial, lineage, updated_at, updated_by, resources, archived, pending = r
                out.append(BusinessRow(url, business, serial, lineage, updated_at, updated_by, resources, archived,
                                       pending, lock=status.describe() if status.held else ""))
    finally:
        conn.close()
    return out

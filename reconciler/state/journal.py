"""The write-ahead journal of creates: no POST without a record of the intent first.

Owns ``.reconciler/journal.jsonl`` (beside the state file; see
:attr:`reconciler.state.store.StateStore.journal_path`).  The API cannot list client packages, so
if a create's answer is lost (timeout, crash, dropped connection) the journal is the only
trace that the object may exist.  The applier opens an intent before each create and closes
it once the outcome is known and recorded in state; an intent still open at the next run
means "outcome unknown" and must be resolved (looked up, imported or forgotten by a person)
before anything is created again.

The file is append-only JSON lines, mode 0600, each append flushed and fsynced::

    {"op": "open", "id": ..., "address": ..., "kind": ..., "request_digest": ..., "details": {...}, "at": ...}
    {"op": "close", "id": ..., "outcome": "created", "remote_id": ..., "at": ...}

A crash can tear only the last line (the append in flight, which never returned, so its
create was never sent): it is ignored when reading and cut off before the next append.  A bad
line anywhere else is corruption and is refused.  :meth:`Journal.compact` rewrites the file
atomically with only the open intents.  :meth:`Journal.open_many` and
:meth:`Journal.close_many` record a batch with one write and one fsync (the applier's group
commit).  Writers must hold the state lock; within a process, appends are serialised by a
mutex, and a reader re-reads the file only when it changed since it last saw it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, ValidationError

from reconciler.core.errors import StateError
from reconciler.core.fsutil import atomic_write_bytes, open_regular
from reconciler.model.base import Frozen
from reconciler.state.store import JOURNAL_NAME, Kind, StateStore, check_json_safe, kind_of_address, utc_now

Outcome = Literal["created", "failed", "forgotten", "imported"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)

# Details are for a person checking vcita by hand; credentials never belong there.
_SECRET_KEY = re.compile(r"token|secret|password|authorization|api[_-]?key", re.IGNORECASE)


class Intent(Frozen):
    """One create that was about to be sent: what, to whom, and when."""

    id: str
    address: str
    kind: Kind
    request_digest: str
    details: dict[str, Any] = Field(default_factory=dict)  # client id/email, package id/name...
    opened_at: str


class _Open(Frozen):
    op: Literal["open"]
    id: str = Field(min_length=1)
    address: str
    kind: Kind
    request_digest: str
    details: dict[str, Any]
    at: str


class _Close(Frozen):
    op: Literal["close"]
    id: str = Field(min_length=1)
    outcome: Outcome
    remote_id: str | None = None
    at: str


class Journal:
    """The journal file in ``dir``; reading it never creates it."""

    def __init__(self, dir: Path, *, name: str = JOURNAL_NAME) -> None:
        self.path = Path(dir) / name
        self._mutex = threading.Lock()
        # What was last read or written, keyed by the file's (inode, size, mtime): appends then
        # cost one stat instead of a re-read, and any change made elsewhere forces a re-read.
        self._cache: tuple[tuple[int, int, int], dict[str, Intent]] | None = None

    @classmethod
    def for_state(cls, store: StateStore) -> Journal:
        """The journal that belongs to ``store``'s state file."""
        return cls(store.dir, name=store.journal_path.name)

    def open_intent(self, address: str, kind: Kind, request_digest: str, details: dict[str, Any]) -> str:
        """Record, durably, that a create of ``address`` is about to be sent; return the intent id.

        ``details`` is what a person needs to check vcita by hand (client id/email, package
        id/name); keys that look like credentials are refused (ValueError).  StateError when an
        intent for ``address`` is already open: its outcome must be resolved first."""
        return self.open_many([{"address": address, "kind": kind, "request_digest": request_digest,
                                "details": details}])[0]

    def open_many(self, requests: Sequence[Mapping[str, Any]]) -> list[str]:
        """:meth:`open_intent` for several creates with one write and one fsync (group commit).

        Each request is ``{address, kind, request_digest, details}``; all are recorded or none
        (StateError if any address is already pending or appears twice).  Returns the ids in order."""
        checked = [_checked_open(r) for r in requests]
        with self._mutex:
            intents, torn = self._read()
            pending = {it.address: it for it in intents.values()}
            records = []
            for address, kind, digest, details in checked:
                if address in pending:
                    it = pending[address]
                    raise StateError(
                        f"a create of {address} is already pending (intent {it.id}, opened {it.opened_at}); "
                        "its outcome is unknown",
                        hint=f"Check vcita by hand, then run 'reconciler import {address} ID' if it exists, "
                             f"or 'reconciler state forget-intent {address}' if it does not.",
                    )
                now = utc_now()
                it = Intent(id=secrets.token_hex(8), address=address, kind=kind, request_digest=digest,
                            details=details, opened_at=now)
                pending[address] = intents[it.id] = it
                records.append(_open_record(it))
            self._append(records, torn, intents)
        return [r["id"] for r in records]

    def close_intent(self, intent_id: str, outcome: Outcome, remote_id: str | None = None) -> None:
        """Record the outcome of an open intent (``created``/``imported`` with the remote id,
        ``failed``, ``forgotten``); StateError when no intent with that id is open."""
        self.close_many([(intent_id, outcome, remote_id)])

    def close_many(self, closes: Sequence[tuple[str, str, str | None]]) -> None:
        """:meth:`close_intent` for several ``(intent_id, outcome, remote_id)`` with one write and
        one fsync; all are recorded or none (StateError if any id is not open)."""
        for _, outcome, _ in closes:
            if outcome not in OUTCOMES:
                raise ValueError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
        with self._mutex:
            intents, torn = self._read()
            records = []
            for intent_id, outcome, remote_id in closes:
                if intents.pop(intent_id, None) is None:
                    raise StateError(f"no open intent {intent_id} in the journal {self.path} "
                                     "(unknown or already closed)")
                records.append({"op": "close", "id": intent_id, "outcome": outcome, "remote_id": remote_id,
                                "at": utc_now()})
            self._append(records, torn, intents)

    def open_intents(self) -> list[Intent]:
        """The intents without a close record, oldest first."""
        with self._mutex:
            return list(self._read()[0].values())

    def forget(self, address: str) -> Intent:
        """Close the open intent of ``address`` as ``forgotten`` and return it; StateError when
        ``address`` has no open intent."""
        with self._mutex:
            intents, torn = self._read()
            found = next((it for it in intents.values() if it.address == address), None)
            if found is not None:
                del intents[found.id]
                self._append([{"op": "close", "id": found.id, "outcome": "forgotten", "remote_id": None,
                               "at": utc_now()}], torn, intents)
                return found
        raise StateError(f"no pending create of {address} in the journal {self.path}",
                         hint="'reconciler state list' shows the pending creates, if any.")

    def compact(self) -> None:
        """Rewrite the journal atomically keeping only the open intents (an empty file when
        none are open); nothing is written when there is nothing to drop."""
        with self._mutex:
            try:
                with os.fdopen(open_regular(self.path, os.O_RDONLY), "rb") as f:
                    key = _key(os.fstat(f.fileno()))
                    # This process wrote the file last: what is open is known without a re-read
                    # (parsing 1,000 records took longer than the rest of compacting).
                    known = self._cache[1] if self._cache is not None and self._cache[0] == key else None
                    data = None if known is not None else f.read()
            except FileNotFoundError:
                return
            except OSError as e:
                raise StateError(f"cannot read the journal {self.path}: {e.strerror or e}") from None
            intents = self._parse(data)[0] if data is not None else known or {}  # known when not read
            kept = b"".join(_line(_open_record(it)) for it in intents.values())
            if (kept != data) if data is not None else (len(kept) != key[1]):
                self._cache = None
                try:
                    atomic_write_bytes(self.path, kept, mode=0o600)
                except OSError as e:
                    raise StateError(f"cannot compact the journal {self.path}: {e.strerror or e}; "
                                     "it is unchanged") from None

    # --- reading and appending ----------------------------------------------------------------

    def _read(self) -> tuple[dict[str, Intent], int | None]:
        """Open intents by id (a copy the caller may change), and where a torn last line starts
        (None when there is none)."""
        try:
            with os.fdopen(open_regular(self.path, os.O_RDONLY), "rb") as f:
                key = _key(os.fstat(f.fileno()))
                if self._cache is not None and self._cache[0] == key:
                    return dict(self._cache[1]), None
                data = f.read()
        except FileNotFoundError:
            self._cache = None
            return {}, None
        except OSError as e:
            raise StateError(f"cannot read the journal {self.path}: {e.strerror or e}") from None
        intents, torn = self._parse(data)
        self._cache = (key, dict(intents)) if torn is None and len(data) == key[1] else None
        return intents, torn

    def _parse(self, data: bytes) -> tuple[dict[str, Intent], int | None]:
        end = data.rfind(b"\n") + 1
        torn = end if end < len(data) else None  # a final line without its newline: never acknowledged
        intents: dict[str, Intent] = {}
        closed: set[str] = set()
        for n, raw in enumerate(data[:end].split(b"\n")[:-1], start=1):
            if not raw.strip():
                continue
            rec = self._record(raw, n)
            if isinstance(rec, _Open):
                if rec.id in intents or rec.id in closed:
                    raise self._corrupt(n, f"intent {rec.id} is opened twice")
                intents[rec.id] = Intent(id=rec.id, address=rec.address, kind=rec.kind,
                                         request_digest=rec.request_digest, details=rec.details,
                                         opened_at=rec.at)
            else:
                if rec.id not in intents:
                    raise self._corrupt(n, f"it closes intent {rec.id}, which is not open")
                del intents[rec.id]
                closed.add(rec.id)
        return intents, torn

    def _record(self, raw: bytes, n: int) -> _Open | _Close:
        try:
            obj = json.loads(raw)
        except ValueError:
            raise self._corrupt(n, "it is not a JSON record") from None
        if not isinstance(obj, dict) or obj.get("op") not in ("open", "close"):
            raise self._corrupt(n, 'it is not an "open" or "close" record')
        try:
            return _Open.model_validate(obj) if obj["op"] == "open" else _Close.model_validate(obj)
        except ValidationError as e:
            err = e.errors()[0]
            raise self._corrupt(n, f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None

    def _corrupt(self, line: int, what: str) -> StateError:
        return StateError(
            f"the journal {self.path} is damaged at line {line}: {what}",
            hint="Nothing was changed. Each line is one JSON record of a create; do not delete the file. "
                 "Fix or remove only that line by hand, after checking in vcita what it refers to.",
        )

    def _append(self, records: list[dict[str, Any]], torn: int | None, intents: dict[str, Intent]) -> None:
        """Append records durably (one write, one fsync); ``intents`` is the open set after them."""
        if not records:
            return
        data = b"".join(_line(r) for r in records)
        created = not self.path.exists()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._write(data, torn, intents)
            if created:
                _fsync_dir(self.path.parent)
        except OSError as e:
            self._cache = None
            raise StateError(f"cannot write the journal {self.path}: {e.strerror or e}",
                             hint="Free disk space or fix permissions, then run again (reconciler never "
                                  "sends a create whose intent is not on disk).") from None

    def _write(self, data: bytes, torn: int | None, intents: dict[str, Intent]) -> None:
        fd = open_regular(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
            if torn is not None:  # cut the torn tail so the new record starts on a line of its own
                os.ftruncate(fd, torn)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            self._cache = (_key(os.fstat(fd)), dict(intents))
        except BaseException:
            self._cache = None
            raise
        finally:
            os.close(fd)


def _checked_open(r: Mapping[str, Any]) -> tuple[str, Kind, str, dict[str, Any]]:
    # Programming errors (ValueError), found before anything is written.
    address, kind, digest, details = r["address"], r["kind"], r["request_digest"], dict(r["details"])
    if kind_of_address(address) != kind:
        raise ValueError(f"{address} is not a {kind}")
    check_json_safe(details, "details")
    for key in details:
        if _SECRET_KEY.search(key):
            raise ValueError(f"details.{key}: credentials never go into the journal")
    return address, kind, str(digest), details


def _key(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_size, st.st_mtime_ns


def _open_record(it: Intent) -> dict[str, Any]:
    return {"op": "open", "id": it.id, "address": it.address, "kind": it.kind,
            "request_digest": it.request_digest, "details": it.details, "at": it.opened_at}


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def _fsync_dir(folder: Path) -> None:
    # A new file's name is durable only once its folder is synced.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""The state file and its lock: what reconciler remembers between runs, and who may write it.

Owns ``.reconciler/state.json`` (next to the manifests by default, any file with ``--state``),
its previous version ``state.json.backup``, and the lock ``state.lock`` beside them.  The
write-ahead journal of creates lives beside them too, in :mod:`reconciler.state.journal`.

The API cannot list client packages across a business, so the state is the only record of
which remote object each manifest address became.  It therefore fails loudly and changes
nothing when it is damaged, written by someone else meanwhile, or used against another target:

- :class:`State` is a frozen pydantic model; its helpers return new objects.
- :class:`StateStore` reads and writes one file: atomic (temp + fsync + rename), mode 0600,
  sorted keys and indent 2 (stable diffs in a GitOps repo), the serial grows by one on every
  write, and a write is refused when the file on disk is not the one that was read.
- :class:`StateLock` (from :mod:`reconciler.state.lock`, re-exported here) is an exclusive
  flock on a file holding who took it, released by the kernel when its holder ends.

Names derive from the state file: ``state.json`` pairs with ``state.lock`` and
``journal.jsonl``; another file ``prod.json`` pairs with ``prod.lock`` and
``prod.journal.jsonl``, so two state files in one folder never share a lock or a journal.

Over 400 lines on purpose: the state document and the store that reads and writes it share the
format checks and migrations; its text (``encoder``), lock (``lock``), journal (``journal``) and
backends (``backends/``) are their own modules.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from reconciler.core.errors import StateError
from reconciler.core.fsutil import atomic_write_bytes, check_replaceable, link_replace, read_regular
from reconciler.core.permissions import check_state_files
from reconciler.model import views
from reconciler.model.base import Frozen
from reconciler.model.remote import RemoteCatalogPackage, RemoteClientPackage
from reconciler.model.values import NAME_PATTERN
from reconciler.plan.document import fingerprint
from reconciler.state.encoder import StateEncoder
from reconciler.state.jsonsafe import check_json_safe
from reconciler.state.lock import LOCK_NAME, StateLock, read_lock, unlock

__all__ = [
    "ADDRESS_RE", "DEFAULT_MANIFESTS", "FORMAT_VERSION", "IDENTITY_FIELDS", "JOURNAL_NAME", "LOCK_NAME",
    "STATE_DIR", "STATE_NAME", "ArchivedResource", "Kind", "PendingCreate", "ResourceState", "State",
    "StateLock", "StateStore", "TargetRef", "check_json_safe", "identity_of", "kind_of_address", "read_lock",
    "state_dir_for", "unlock", "utc_now",
]

FORMAT_VERSION: Literal[2] = 2
#: Older formats this reconciler reads (and writes back in the current one)
READABLE_VERSIONS = (1, 2)
STATE_DIR = ".reconciler"
STATE_NAME = "state.json"
JOURNAL_NAME = "journal.jsonl"
DEFAULT_MANIFESTS = "manifests"

Kind = Literal["CatalogPackage", "ClientPackage"]
ADDRESS_PREFIXES: dict[str, Kind] = {"catalog_package": "CatalogPackage", "client_package": "ClientPackage",
                                     "client_package_set": "ClientPackage"}
#: ``catalog_package.NAME``, ``client_package.NAME``, or a set member ``client_package_set.NAME["KEY"]``
#: (KEY: the member's client id or e-mail, without quotes, brackets, backslashes or blanks)
ADDRESS_RE = re.compile(r"^(?:(catalog_package|client_package)\.(" + NAME_PATTERN.strip("^$") + r")"
                        r"|(client_package_set)\.(" + NAME_PATTERN.strip("^$") + r')\["([^"\\\s\[\]]{1,254})"\])$')


#: warnings a user must see (the CLI prints them as ``Warning: ...`` lines)
log = logging.getLogger("reconciler.warnings")

_now: tuple[int, str] = (-1, "")


def utc_now() -> str:
    """The current time as ISO 8601 UTC to the second, e.g. ``2025-01-31T09:30:00Z`` (formatted
    once per second: an apply asks for it twice per create)."""
    global _now
    second = int(time.time())
    if second != _now[0]:
        _now = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
    return _now[1]


@functools.lru_cache(maxsize=65536)
def kind_of_address(address: str) -> Kind:
    """The resource kind an address names; ValueError when it is not ``catalog_package.<name>``
    or ``client_package.<name>``."""
    m = ADDRESS_RE.match(address)
    if not m:
        raise ValueError(f"{address!r} is not an address (catalog_package.<name>, client_package.<name> or "
                         f'client_package_set.<name>["<client>"])')
    return ADDRESS_PREFIXES[m.group(1) or m.group(3)]


class TargetRef(Frozen):
    """The vcita business a state belongs to: gateway URL (no trailing slash) and business id."""

    gateway_url: str = Field(min_length=1)
    business_id: str = Field(min_length=1)

    @field_validator("gateway_url")
    @classmethod
    def _no_trailing_slash(cls, v: str) -> str:
        return v.rstrip("/") or v

    def describe(self) -> str:
        """``business X at URL`` for messages."""
        return f"business {self.business_id} at {self.gateway_url}"

    @classmethod
    def of(cls, target: Any) -> TargetRef:
        """The identity of a target (a :class:`reconciler.remote.target.Target`) as state records
        it (no secrets)."""
        return cls(gateway_url="embedded" if target.embedded else target.gateway_url,
                   business_id=target.business_id)


class ResourceState(Frozen):
    """What reconciler last applied to one remote object, and the object's ids."""

    kind: Kind
    id: str = Field(min_length=1)
    fingerprint: str = Field(min_length=1)
    applied: dict[str, Any]  # normalised field values last applied: plain JSON, never secrets
    booking_credit_ids: dict[str, str] = Field(default_factory=dict)  # "svcA,svcB" -> credit id
    updated_at: str

    @field_validator("applied")
    @classmethod
    def _json_safe(cls, v: dict[str, Any]) -> dict[str, Any]:
        check_json_safe(v, "applied")
        return v

    @field_validator("updated_at")
    @classmethod
    def _utc_iso(cls, v: str) -> str:
        try:
            t = datetime.fromisoformat(v)
        except ValueError:
            raise ValueError(f"{v!r} is not an ISO 8601 time") from None
        if t.utcoffset() != timedelta(0):
            raise ValueError(f"{v!r} is not in UTC (write it like 2025-01-31T09:30:00Z)")
        return v

    @classmethod
    def of_catalog(cls, pkg: RemoteCatalogPackage) -> ResourceState:
        """The record of a catalog package as vcita answered it (its view, fingerprinted, now)."""
        view = views.catalog_remote(pkg)
        return cls(kind="CatalogPackage", id=pkg.id, fingerprint=fingerprint(view), applied=view, updated_at=utc_now())

    @classmethod
    def of_client(cls, cp: RemoteClientPackage) -> ResourceState:
        """The record of a client package as vcita answered it (its view and credit ids, now)."""
        view = views.client_remote(cp)
        parts: dict[str, Any] = {"kind": "ClientPackage", "id": cp.id, "fingerprint": fingerprint(view),
                                 "applied": view, "booking_credit_ids": views.client_credit_ids(cp),
                                 "updated_at": utc_now()}
        if not cp.id:  # refused by validation (min_length), with its own message: validate to raise it
            return cls(**parts)
        # Built without validating again (an apply builds one per create): every part is valid by
        # construction.  ``cp`` is a validated RemoteClientPackage; its view (views.client_remote) is
        # plain JSON (str and None values, booking credits as {str: int}), its credit ids {str: str};
        # the id is a non-empty str (checked above), the fingerprint "sha256:..." and updated_at
        # utc_now()'s UTC form.  tests/state/test_state_records.py checks that this record equals
        # the validated one for any client package.
        return cls.model_construct(**parts)


def identity_of(kind: Kind, applied: dict[str, Any]) -> dict[str, Any]:
    """What makes a remote object the same object whatever its manifest name: a client package's
    client, catalog package, ``valid_from`` and price; a catalog package's display name."""
    if kind == "ClientPackage":
        return {k: applied.get(k) for k in IDENTITY_FIELDS}
    return {"name": applied.get("name")}


IDENTITY_FIELDS = ("client_id", "package_id", "valid_from", "price")


class PendingCreate(Frozen):
    """A create that was about to be sent (written before it was): its outcome is unknown until
    it is confirmed (tracked), proven not executed (dropped), or resolved by a person."""

    id: str = Field(min_length=1)
    address: str
    kind: Kind
    request_digest: str
    details: dict[str, Any] = Field(default_factory=dict)  # client id/email, package id/name...
    opened_at: str

    @field_validator("details")
    @classmethod
    def _json_safe(cls, v: dict[str, Any]) -> dict[str, Any]:
        check_json_safe(v, "details")
        return v


class ArchivedResource(Frozen):
    """An object reconciler created or adopted that left the manifests: never erased, so that a
    manifest object of the same identity is re-adopted rather than created again."""

    kind: Kind
    id: str = Field(min_length=1)
    address: str  # the address it last had
    identity: dict[str, Any]
    applied: dict[str, Any]
    booking_credit_ids: dict[str, str] = Field(default_factory=dict)
    fingerprint: str = "archived"
    archived_at: str
    reason: str = ""

    @field_validator("identity", "applied")
    @classmethod
    def _json_safe(cls, v: dict[str, Any]) -> dict[str, Any]:
        check_json_safe(v, "archived")
        return v

    def as_resource(self) -> ResourceState:
        """The tracked record it was (fingerprint recomputed at the next refresh)."""
        return ResourceState(kind=self.kind, id=self.id, fingerprint=self.fingerprint, applied=self.applied,
                             booking_credit_ids=self.booking_credit_ids, updated_at=self.archived_at)


class State(Frozen):
    """Everything reconciler remembers for one target: tracked objects keyed by manifest address,
    archived ones (left the manifests) keyed by vcita id, and pending creates keyed by intent id.
    One document: whatever stores it (a file a GitOps repository commits, a database row) holds
    all three, so a fresh runner knows everything reconciler ever created."""

    format_version: Literal[2] = FORMAT_VERSION
    lineage: str = Field(pattern=r"^[0-9a-f]{32}$")  # uuid4 hex, fixed when the state is born
    serial: int = Field(ge=0)  # grows by one on every write
    target: TargetRef | None = None
    resources: dict[str, ResourceState] = Field(default_factory=dict)
    archived: dict[str, ArchivedResource] = Field(default_factory=dict)
    pending: dict[str, PendingCreate] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _addresses_match_kinds(self) -> State:
        for address, rs in self.resources.items():
            kind = kind_of_address(address)
            if kind != rs.kind:
                raise ValueError(f"resources.{address}: kind {rs.kind} does not match the address")
        for rid, ar in self.archived.items():
            if rid != ar.id:
                raise ValueError(f"archived.{rid}: its id is {ar.id}")
        for pid, pc in self.pending.items():
            if pid != pc.id:
                raise ValueError(f"pending.{pid}: its id is {pc.id}")
            if kind_of_address(pc.address) != pc.kind:
                raise ValueError(f"pending.{pid}: kind {pc.kind} does not match {pc.address}")
        return self

    @classmethod
    def new(cls, target: TargetRef | None = None) -> State:
        """A fresh, empty state with a new lineage and serial 0."""
        return cls(lineage=uuid.uuid4().hex, serial=0, target=target, resources={})

    def with_resource(self, address: str, rs: ResourceState) -> State:
        """A copy that tracks ``rs`` at ``address`` (added or replaced)."""
        return self._with_resources({**self.resources, address: rs})

    def without(self, address: str) -> State:
        """A copy that no longer tracks ``address`` (the same content if it was not tracked)."""
        return self._with_resources({a: r for a, r in self.resources.items() if a != address})

    def archive(self, address: str, reason: str, at: str | None = None) -> State:
        """A copy in which the object tracked at ``address`` is archived (kept by id), not erased."""
        rs = self.resources.get(address)
        if rs is None:
            return self
        record = ArchivedResource(kind=rs.kind, id=rs.id, address=address, identity=identity_of(rs.kind, rs.applied),
                                  applied=rs.applied, booking_credit_ids=rs.booking_credit_ids,
                                  fingerprint=rs.fingerprint, archived_at=at or utc_now(), reason=reason)
        return self.replace(resources={a: r for a, r in self.resources.items() if a != address},
                            archived={**self.archived, rs.id: record})

    def archive_replaced(self, address: str, old_id: str, by: str) -> State:
        """A copy in which ``old_id``, tracked at ``address``, is archived as replaced by ``by`` (the
        new client package of a replacement; the old one stays in vcita).  Unchanged when the
        address tracks another id."""
        held = self.resources.get(address)
        return self.archive(address, f"replaced by {by}") if held is not None and held.id == old_id else self

    def move(self, old: str, new: str) -> State:
        """A copy in which the record tracked at ``old`` (and its pending creates) is at ``new``."""
        if old not in self.resources:
            return self
        resources = {(new if a == old else a): r for a, r in self.resources.items()}
        pending = {k: (v.model_copy(update={"address": new}) if v.address == old else v)
                   for k, v in self.pending.items()}
        return self.replace(resources=resources, pending=pending)

    def readopt(self, remote_id: str, address: str) -> State:
        """A copy in which the archived record ``remote_id`` is tracked again at ``address``."""
        record = self.archived.get(remote_id)
        if record is None:
            return self
        return self.replace(resources={**self.resources, address: record.as_resource()},
                            archived={k: v for k, v in self.archived.items() if k != remote_id})

    def pending_for(self, address: str) -> list[PendingCreate]:
        return [pc for pc in self.pending.values() if pc.address == address]

    def replace(self, **parts: Any) -> State:
        """A copy with some of ``resources``, ``archived``, ``pending``, ``target`` replaced,
        validated again (a bad address is refused here, not at the next load)."""
        fields: dict[str, Any] = {"format_version": self.format_version, "lineage": self.lineage, "serial": self.serial,
                  "target": self.target, "resources": self.resources, "archived": self.archived,
                  "pending": self.pending}
        fields.update(parts)
        return State(**fields)

    def for_target(self, target: TargetRef) -> State:
        """This state bound to ``target``: sets it on a state that has none yet; StateError when
        the state belongs to another target."""
        if self.target == target:
            return self
        if self.target is not None:
            raise _target_mismatch(self.target, target, None)
        return self.model_copy(update={"target": target})

    def to_json(self) -> str:
        """The file form: indent 2, UTF-8 text, final newline, every mapping sorted by key.

        Serialised by pydantic's own encoder (7x faster than json.dumps at 10,000 resources,
        which apply pays on every state write); the order is stable because fields come in model
        order and every mapping in it is built in a fixed order."""
        update = {name: dict(sorted(part.items())) for name, part in
                  (("resources", self.resources), ("archived", self.archived), ("pending", self.pending))
                  if list(part) != sorted(part)}
        ordered = self.model_copy(update=update) if update else self
        return ordered.model_dump_json(indent=2) + "\n"

    def _with_resources(self, resources: dict[str, ResourceState]) -> State:
        # Through the constructor, so a bad address is refused here rather than at load time.
        return self.replace(resources=resources)


def _target_mismatch(have: TargetRef, want: TargetRef, path: Path | None) -> StateError:
    where = f"the state {path}" if path else "the state"
    return StateError(
        f"{where} belongs to business {have.business_id} at {have.gateway_url}; "
        f"this run targets business {want.business_id} at {want.gateway_url}",
        hint="Use --state to point at the state file of that target (one state file per target).",
    )


def state_dir_for(paths: Sequence[str | Path]) -> Path:
    """The ``.reconciler/`` folder next to the manifests: ``<dir>/.reconciler`` when the first
    path is a directory, ``<parent>/.reconciler`` when it is a file (an existing file, or a name
    ending in .yaml/.yml); with no paths, the default ``manifests/.reconciler``."""
    first = Path(paths[0]) if paths else Path(DEFAULT_MANIFESTS)
    if first.is_file() or (not first.exists() and first.suffix in (".yaml", ".yml")):
        return first.parent / STATE_DIR
    return first / STATE_DIR


class StateStore:
    """One state file on disk: load, compare-and-write, target check, and its lock."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # The bytes this store last wrote, with their lineage and serial: the next write finds
        # them on disk and need not parse them again (half the cost of a write at 1,000
        # resources, paid on every state write of an apply).
        self._written: tuple[bytes, str, int] | None = None
        # Encodes each write reusing the text of the records that did not change (state_json.py).
        self._encoder = StateEncoder()
        self._legacy_journal = False  # load() merged the open intents of a format-1 journal

    kind = "local"

    @classmethod
    def locate(cls, manifests: Sequence[str | Path] = (), state: str | Path | None = None, *,
               target: Any = None, backend: Any = None) -> Any:
        """The store for a run: the explicit ``--state`` file if given, else ``state.json`` in
        :func:`state_dir_for` of the manifest paths.

        ``backend`` (a :class:`reconciler.state.backends.config.StateConfig`) may choose the postgres
        backend instead, whose row is the one of ``target`` (a TargetRef, or a resolved Target)."""
        if backend is not None and not backend.is_local:
            from reconciler.state.backends import open_backend

            return open_backend(backend, target=target, state_path=state)
        return cls(Path(state) if state is not None else state_dir_for(manifests) / STATE_NAME)

    @property
    def where(self) -> str:
        """What this state is, for messages: the state file's path."""
        return f"the state file {self.path}"

    def exists(self) -> bool:
        return self.path.exists()

    def close(self) -> None:
        """Nothing to close: every call opens and closes its own files."""

    @property
    def dir(self) -> Path:
        """The folder holding the state, its backup, lock and journal."""
        return self.path.parent

    @property
    def backup_path(self) -> Path:
        return self.path.with_name(self.path.name + ".backup")

    @property
    def lock_path(self) -> Path:
        return self.dir / (LOCK_NAME if self.path.name == STATE_NAME else f"{self.path.stem}.lock")

    @property
    def journal_path(self) -> Path:
        return self.dir / (JOURNAL_NAME if self.path.name == STATE_NAME else f"{self.path.stem}.{JOURNAL_NAME}")

    def lock(self, operation: str) -> StateLock:
        """The (not yet taken) lock of this state; use it as a context manager."""
        return StateLock(self.dir, operation=operation, name=self.lock_path.name)

    def load(self) -> State:
        """The state on disk; a fresh empty one (not written) when the file does not exist.

        StateError, naming the file and what is wrong, when it cannot be read or used.  A state
        others may write is warned about (:mod:`reconciler.core.permissions`)."""
        check_state_files(self.dir, [self.path, self.journal_path, self.backup_path])
        data = self._read()
        if data is None and os.path.lexists(self.backup_path):
            # the state is written over its previous version, kept as the backup: a backup without
            # its state is a state that was deleted or moved, most likely by mistake
            log.warning("there is no state file %s, but its backup %s is there: if the state was lost, restore it "
                        "('cp %s %s') before applying; without it, reconciler knows what it created in vcita "
                        "only through the business's payment requests, and forgets its pending creates",
                        self.path, self.backup_path.name, self.backup_path, self.path)
        try:  # the backup is replaced at the first write: refuse a planted link now, before any work
            check_replaceable(self.backup_path)
        except OSError as e:
            raise StateError(f"cannot use the state backup {self.backup_path}: {e.strerror or e}") from None
        return self._with_legacy_journal(State.new() if data is None else self._parse(data))

    def _with_legacy_journal(self, state: State) -> State:
        """Pending creates of a journal written by an earlier reconciler (format 1 kept them only
        there), merged into the state; the journal is retired at this store's next write."""
        if not os.path.lexists(self.journal_path):
            return state
        from reconciler.state.journal import Journal  # the journal module builds on this one

        intents = Journal.for_state(self).open_intents()
        self._legacy_journal = True
        missing = {it.id: PendingCreate(id=it.id, address=it.address, kind=it.kind, request_digest=it.request_digest,
                                        details=it.details, opened_at=it.opened_at)
                   for it in intents if it.id not in state.pending}
        return state.replace(pending={**state.pending, **missing}) if missing else state

    def _retire_legacy_journal(self) -> None:
        # Its open intents are in the state just written (or were resolved since they were merged).
        if self._legacy_journal:
            os.replace(self.journal_path, self.journal_path.with_name(self.journal_path.name + ".migrated"))
            self._legacy_journal = False

    def write(self, state: State, *, expected_serial: int, set_serial: int | None = None) -> State:
        """Write ``state`` with serial ``expected_serial + 1`` and return what was written.
        ``set_serial``, higher, is written instead (``state push|pull`` keep the source's serial).

        Refused (StateError, nothing written) unless the file on disk is the one the caller
        read: the same lineage and serial ``expected_serial`` (or no file, for serial 0).
        The previous file is kept as ``<name>.backup``.  Call it while holding the lock."""
        if expected_serial < 0:
            raise ValueError("expected_serial must be >= 0")
        current = self._read()
        if current is None:
            if expected_serial != 0:
                raise StateError(
                    f"the state file {self.path} has disappeared since it was read (at serial {expected_serial}); "
                    "refusing to write a new one over whatever happened",
                    hint="Find out who moved or deleted it, and restore it (or its .backup) before running again.",
                )
            self._keep_orphaned_backup()
        else:
            if self._written is not None and self._written[0] == current:
                lineage, serial = self._written[1], self._written[2]
            else:
                on_disk = self._parse(current)
                lineage, serial = on_disk.lineage, on_disk.serial
            if lineage != state.lineage:
                raise StateError(
                    f"the state file {self.path} is another state (lineage {lineage}, "
                    f"expected {state.lineage}); refusing to overwrite it",
                    hint="Another state was written there meanwhile; check --state and run again.",
                )
            if serial != expected_serial:
                raise StateError(
                    f"the state file {self.path} changed since it was read (serial {serial} on disk, "
                    f"expected {expected_serial}): another run wrote it; refusing to overwrite",
                    hint="Run again: reconciler reads the state afresh. Take the state lock to avoid this.",
                )
        if set_serial is not None and set_serial <= expected_serial:
            raise ValueError("a write must raise the serial")
        new = state.model_copy(update={"serial": expected_serial + 1 if set_serial is None else set_serial})
        try:
            # The backup is the file as it is now: a hard link to it (no copy, no second fsync of
            # the whole state on every write of an apply), or a copy where links are not possible.
            # Its rename is made durable by the directory sync that ends the state's own write
            # below (same directory, later rename): one sync less per write, the state's own
            # durability unchanged (a crash before that sync leaves the previous state in place).
            if current is not None and not link_replace(self.path, self.backup_path, sync_dir=False):
                atomic_write_bytes(self.backup_path, current, mode=0o600)
            data = self._encoder.encode(new)
            atomic_write_bytes(self.path, data, mode=0o600)
            self._written = (data, new.lineage, new.serial)
            self._retire_legacy_journal()
        except OSError as e:
            self._written = None
            which = f" ({e.filename})" if e.filename and str(e.filename) != str(self.path) else ""
            raise StateError(f"cannot write the state file {self.path}{which}: {e.strerror or e}; "
                             "the state on disk is the one before this write",
                             hint="Free disk space or fix permissions, then run again.") from None
        return new

    def _keep_orphaned_backup(self) -> None:
        """A new state file is about to be written where a backup is left without its state (the
        state was deleted or lost): the backup may be the last record of what reconciler created,
        and the new state's next write would put its own first version in its place.  It is moved
        aside, never overwritten, as ``<name>.backup.orphaned-<UTC time>`` (the commands refuse to
        write in this case before coming here; this keeps it whoever writes)."""
        backup = self.backup_path
        if backup.is_symlink() or not backup.is_file():
            return
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        aside = backup.with_name(f"{backup.name}.orphaned-{stamp}")
        try:
            os.rename(backup, aside)
        except OSError as e:
            raise StateError(f"cannot move the backup {backup}, left without its state, aside before writing a new "
                             f"state: {e.strerror or e}; nothing was written",
                             hint=f"Restore the state from it ('cp {backup} {self.path}') or move it aside yourself."
                             ) from None
        log.warning("the backup %s had no state file beside it: kept as %s", backup, aside)

    def check_target(self, state: State, target: TargetRef) -> None:
        """StateError when ``state`` belongs to another gateway URL or business id than
        ``target``; a state with no target yet fits any."""
        if state.target is not None and state.target != target:
            raise _target_mismatch(state.target, target, self.path)

    def _read(self) -> bytes | None:
        try:
            return read_regular(self.path)
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise StateError(f"the state path {self.path} is a directory, not a file",
                             hint="--state takes a file, e.g. manifests/.reconciler/state.json.") from None
        except OSError as e:
            raise StateError(f"cannot read the state file {self.path}: {e.strerror or e}") from None

    def _damaged(self, what: str, hint: str | None = None) -> StateError:
        backup = f" or from {self.backup_path} (the version before the last write)" if self.backup_path.exists() else ""
        return StateError(
            f"the state file {self.path} cannot be used: {what}",
            hint=hint or (f"Nothing was changed. Restore it from version control{backup}. Do not delete it: "
                          "reconciler would forget which objects it created."),
        )

    def _parse(self, data: bytes) -> State:
        if not data.strip():
            raise self._damaged("it is empty (truncated?)")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise self._damaged(f"it is not UTF-8 text (bad byte at offset {e.start}); is it a binary file?") from None
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise self._damaged(f"it is not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); "
                                "truncated or edited by hand?") from None
        if not isinstance(raw, dict):
            raise self._damaged(f"it holds a JSON {type(raw).__name__}, not an object")
        version = raw.get("format_version")
        if version == 1 and not isinstance(version, bool):
            # Format 1 had no archived or pending records (pending creates lived only in the local
            # journal, merged in by load()); it is read as format 2 and written back as such.
            raw = {**raw, "format_version": FORMAT_VERSION}
            version = FORMAT_VERSION
        if version != FORMAT_VERSION or isinstance(version, bool):
            if "format_version" not in raw:
                raise self._damaged("it has no format_version; it does not look like a reconciler state file")
            if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
                raise self._damaged(f"format_version {version} was written by a newer reconciler "
                                    f"(this one reads {' and '.join(map(str, READABLE_VERSIONS))})",
                                    hint="Upgrade reconciler; nothing was changed.")
            raise self._damaged(f"format_version {version!r} is not supported (this reconciler reads "
                                f"{' and '.join(map(str, READABLE_VERSIONS))})")
        try:
            return State.model_validate(raw)
        except ValidationError as e:
            raise self._damaged(_describe_validation(e)) from None


def _describe_validation(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(top)"
        parts.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
    more = e.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")

"""Group commit of the state: pending creates durable before they are sent, successes after.

The state document is the only memory of what reconciler created (vcita can neither list nor
delete client packages), so everything a fresh runner needs is written into it, never only into
a local file:

- **pending creates** are added to the state, and the state written, *before* their requests
  are sent.  Every create asked for while one write is in progress goes into the next one, which
  starts at once (pending records are never paced: a create waits for its own);
- **results** (a tracked object, and the pending record it settles, in the same write) are
  applied to one new State per batch (validated once) and written atomically by a background
  task in a worker thread.  Writing the state costs time proportional to its size, so results
  alone are paced: after a write that took ``w``, the next one starts no sooner than ``pace x w``
  after it (and at most ``max_wait`` after it), unless a pending create or every operation still
  running waits for it.  Nothing counts as done before its write, so pacing only delays when
  successes are reported, never what is durable; a run killed meanwhile leaves those creates as
  pending records (unknown outcomes), as many as finished in the last ``max_wait`` at most.

A write that fails (disk full, permissions) stops everything: no create is sent after it, and
the results that could not be recorded are kept in :attr:`Committer.unrecorded` for the caller
to report.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.errors import StateError
from reconciler.state.store import (
    PendingCreate,
    ResourceState,
    State,
    StateStore,
    kind_of_address,
    utc_now,
)

Mutation = Callable[[State], State]


@dataclass
class _StateBatch:
    # In arrival order: (address, resource or None to drop it) or a whole-state mutation.
    changes: list[tuple[str, ResourceState | None] | Mutation] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    # The waiters that record an object vcita acknowledged: (waiter, address, id), for unrecorded
    acknowledged: list[tuple[asyncio.Future[None], str, str]] = field(default_factory=list)
    opens: list[tuple[PendingCreate, asyncio.Future[str]]] = field(default_factory=list)
    closes: list[str] = field(default_factory=list)  # pending ids settled
    opened_at: dict[str, list[PendingCreate]] = field(default_factory=dict)  # the opens by address

    def __bool__(self) -> bool:
        return bool(self.changes or self.opens or self.closes)


class Committer:
    """Serialises state writes; ``state`` is always what is on disk."""

    def __init__(self, store: StateStore, state: State, *, pace: float = 8.0, max_wait: float = 0.3) -> None:
        self.store = store
        self.state = state
        self.pace = pace
        self.max_wait = max_wait
        #: how many operations are still running (set by the applier): when every one of them is
        #: waiting for a state write, pacing stops and the write happens at once
        self.running: Callable[[], int] | None = None
        self._urgent = asyncio.Event()
        self._waiting = 0  # operations waiting for a state write
        self.writes = 0
        #: results that vcita acknowledged but no state write could record: (address, id)
        self.unrecorded: list[tuple[str, str]] = []
        self._batch = _StateBatch()
        self._state_wake = asyncio.Event()
        self._closed = False
        self._tasks: list[asyncio.Task[None]] = []
        self._state_error: BaseException | None = None  # a state write failed: nothing more may start
        self._next_write = 0.0  # monotonic time before which no paced state write starts
        # The state's pending records by address, for the state.pending it was built from (a
        # scan of every pending record per create cost more as more creates were in flight).
        self._pending_index: tuple[dict[str, PendingCreate], dict[str, list[PendingCreate]]] = ({}, {})
        self._ids = _IntentIds()
        self._writing: _StateBatch | None = None  # the batch being written, until the state has it

    async def __aenter__(self) -> Committer:
        self._tasks = [asyncio.create_task(self._state_loop())]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closed = True
        self._state_wake.set()
        await asyncio.gather(*self._tasks)

    @property
    def failed(self) -> BaseException | None:
        """The error of the state write that failed, if one did: nothing more may be sent."""
        return self._state_error

    # --- what the applier asks for ------------------------------------------------------------

    async def open_intent(self, address: str, kind: str, request_digest: str, details: dict[str, Any]) -> str:
        """Durably record, in the state, that a create of ``address`` is about to be sent; return
        the pending record's id.  StateError when a create of ``address`` is already pending."""
        if self._state_error is not None:
            raise self._state_error
        # Pending there: in the state, in the write under way, or queued for the next one.
        writing = self._writing.opened_at.get(address, ()) if self._writing is not None else ()
        for pc in [*self._pending_at(address), *writing, *self._batch.opened_at.get(address, ())]:
            if pc.id not in self._batch.closes:
                raise StateError(
                    f"a create of {address} is already pending (since {pc.opened_at}); its outcome is unknown",
                    hint=f"Check vcita, then run 'reconciler import {address} ID' if it exists, or "
                         f"'reconciler state forget-intent {address}' if it does not.")
        pending = PendingCreate(id=self._ids.next(), address=address, kind=kind,  # type: ignore[arg-type]
                                request_digest=request_digest, details=details, opened_at=utc_now())
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._batch.opens.append((pending, fut))
        self._batch.opened_at.setdefault(address, []).append(pending)
        self._urgent.set()
        self._state_wake.set()
        return await fut

    def _pending_at(self, address: str) -> list[PendingCreate]:
        """``self.state.pending_for(address)``, from an index rebuilt when the state's pending
        records are another dict (after a write that changed them)."""
        pending = self.state.pending
        if self._pending_index[0] is not pending:
            index: dict[str, list[PendingCreate]] = {}
            for pc in pending.values():
                index.setdefault(pc.address, []).append(pc)
            self._pending_index = (pending, index)
        return self._pending_index[1].get(address, [])

    def close_intent(self, intent_id: str, outcome: str = "", remote_id: str | None = None) -> None:
        """Drop a pending record at the next state write (not awaited: a create proven not executed,
        or one whose object another write records).  ``outcome``/``remote_id`` are informative."""
        self._batch.closes.append(intent_id)
        self._state_wake.set()

    async def settle_intent(self, intent_id: str) -> None:
        """Drop a pending record and return once the state without it is on disk: for a create the
        state records already, or one that never reached vcita, so that a create which follows at
        the same address may be recorded as pending in its turn."""
        self._batch.closes.append(intent_id)
        await self._enqueue(lambda state: state)

    async def put(self, address: str, rs: ResourceState | None, *, settles: str | None = None) -> None:
        """Track ``rs`` at ``address`` (None: stop tracking it) and drop the pending record
        ``settles`` in the same write; return once that is on disk."""
        if settles is not None:
            self._batch.closes.append(settles)
        await self._enqueue((address, rs), remote_id=rs.id if rs is not None else None, address=address)

    async def record(self, mutation: Mutation, *, settles: str | None = None, remote_id: str | None = None,
                     address: str = "") -> None:
        """Apply ``mutation`` to the state (and drop the pending record ``settles`` in the same
        write) and return once the result is on disk.  ``remote_id``: the object vcita acknowledged
        that the mutation records at ``address`` (listed in :attr:`unrecorded` if no write can)."""
        if settles is not None:
            self._batch.closes.append(settles)
        await self._enqueue(mutation, remote_id=remote_id, address=address)

    async def _enqueue(self, change: tuple[str, ResourceState | None] | Mutation, *,
                       remote_id: str | None = None, address: str = "") -> None:
        if self._state_error is not None:
            if remote_id:
                self.unrecorded.append((address, remote_id))
            raise self._state_error
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.changes.append(change)
        self._batch.waiters.append(fut)
        if remote_id:
            self._batch.acknowledged.append((fut, address, remote_id))
        self._state_wake.set()
        self._waiting += 1
        self.nudge()
        await fut

    def nudge(self) -> None:
        """Write at once, without pacing, if every running operation waits for the state."""
        if self.running is not None and self._waiting and self._waiting >= self.running():
            self._urgent.set()

    # --- the writer ----------------------------------------------------------------------------

    async def _state_loop(self) -> None:
        while True:
            await self._state_wake.wait()
            self._state_wake.clear()
            if self._batch.changes and not self._batch.opens and not self._closed:
                delay = self._next_write - time.monotonic()
                if delay > 0 and not self._urgent.is_set():  # pacing: let more records join this write
                    try:
                        await asyncio.wait_for(self._urgent.wait(), delay)
                    except TimeoutError:
                        pass
            self._urgent.clear()
            batch, self._batch = self._batch, _StateBatch()
            if batch:
                await self._write_state(batch)
            if self._closed and not self._batch:
                return

    async def _write_state(self, batch: _StateBatch) -> None:
        if self._state_error is None:
            try:
                started = time.monotonic()
                self._writing = batch
                try:
                    self.state = await asyncio.to_thread(self._apply_and_write, batch)
                finally:
                    self._writing = None
                took = time.monotonic() - started
                if batch.changes:
                    self._next_write = time.monotonic() + min(self.max_wait, self.pace * took)
                self.writes += 1
                self._waiting -= len(batch.waiters)
                for fut in batch.waiters:
                    if not fut.done():
                        fut.set_result(None)
                for pending, opened in batch.opens:
                    if not opened.done():
                        opened.set_result(pending.id)
                return
            except BaseException as e:  # noqa: BLE001 - every waiter must hear of it
                self._state_error = e
        self._waiting -= sum(1 for fut in batch.waiters if not fut.done())
        # What vcita acknowledged and this write could not record (a waiter cancelled meanwhile
        # reports nothing, as before)
        self.unrecorded.extend((address, rid) for fut, address, rid in batch.acknowledged if not fut.done())
        for fut in batch.waiters:
            if not fut.done():
                fut.set_exception(self._state_error)
        for _, opened in batch.opens:
            if not opened.done():
                opened.set_exception(self._state_error)

    def _apply_and_write(self, batch: _StateBatch) -> State:
        """The new state after the batch (built once, validated once), written to disk."""
        new = self.state
        resources: dict[str, ResourceState] | None = None
        for change in batch.changes:
            if isinstance(change, tuple):
                if resources is None:
                    resources = dict(new.resources)
                address, rs = change
                if rs is None:
                    resources.pop(address, None)
                else:
                    _check_kind(address, rs.kind, f"resources.{address}")
                    resources[address] = rs
                continue
            if resources is not None:
                new, resources = new.model_copy(update={"resources": resources}), None
            new = change(new)  # a whole-state mutation builds (and validates) its State itself
        pending = new.pending
        if batch.opens or batch.closes:
            for pc, _ in batch.opens:
                _check_kind(pc.address, pc.kind, f"pending.{pc.id}")
            pending = {**pending, **{pc.id: pc for pc, _ in batch.opens}}
            for intent_id in batch.closes:
                pending.pop(intent_id, None)
        if resources is not None or pending is not new.pending:
            # Only the records of this batch are new, and each was checked above: validating the
            # whole State again cost a pass over every record on every write.
            new = new.model_copy(update={"resources": new.resources if resources is None else resources,
                                         "pending": pending})
        if new.archived:  # an id is tracked or archived, never both (an adopted package leaves the archive)
            tracked = {rs.id for rs in new.resources.values()}
            if not tracked.isdisjoint(new.archived):
                new = new.replace(archived={k: v for k, v in new.archived.items() if k not in tracked})
        return self.store.write(new, expected_serial=self.state.serial)


class _IntentIds:
    """Ids of pending records: 8 random bytes in hex, as ``secrets.token_hex(8)`` gives them, from
    the same source (``os.urandom``), drawn 4 KiB at a time rather than in one system call per
    create."""

    _SIZE = 8

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def next(self) -> str:
        if self._at >= len(self._pool):
            self._pool, self._at = os.urandom(self._SIZE * 512), 0
        at, self._at = self._at, self._at + self._SIZE
        return self._pool[at:at + self._SIZE].hex()


def _check_kind(address: str, kind: str, where: str) -> None:
    """What ``State``'s own validation checks of a record, for one record (StateError otherwise)."""
    try:
        ok = kind_of_address(address) == kind
    except ValueError as e:
        raise StateError(f"{where}: {e}") from None
    if not ok:
        raise StateError(f"{where}: kind {kind} does not match the address")

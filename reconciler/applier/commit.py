"""Group commit of the journal and the state: durable before success, batched for speed.

Every create first waits until its intent is in the journal on disk; every finished operation
waits until the state that records it is on disk.  What piles up while one write is in progress
goes into the next:

- **intents** are appended on the event loop itself, ``open_delay`` after the first one asked
  for: one write and one fsync for every intent asked for meanwhile (a fraction of a
  millisecond; in a worker thread the write would wait longer for the interpreter lock than it
  takes).  A create waits for its own intent before it is sent.
- **state** records are applied to one new State per batch (validated once) and written
  atomically by a background task in a worker thread, then the journal records the intents
  those writes closed.  Writing the state costs time proportional to its size, so state writes
  are paced: after a write that took ``w``, the next one starts no sooner than ``pace x w``
  after it (and at most ``max_wait`` after it), so 1,000 concurrent creates cost a handful of
  state writes rather than hundreds, and writing takes about ``1 / pace`` of the run at most.
  When every operation still running waits for the state, the write happens at once.  Nothing
  counts as done before its write, so pacing only delays when successes are reported, never
  what is durable; a run killed meanwhile leaves those creates as open intents (unknown
  outcomes), as many as finished in the last ``max_wait`` at most.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.journal import Journal
from reconciler.state import ResourceState, State, StateStore

Mutation = Callable[[State], State]


@dataclass
class _StateBatch:
    # In arrival order: (address, resource or None to drop it) or a whole-state mutation.
    changes: list[tuple[str, ResourceState | None] | Mutation] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    closes: list[tuple[str, str, str | None]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changes or self.closes)


class Committer:
    """Serialises journal appends and state writes; ``state`` is always what is on disk."""

    def __init__(self, store: StateStore, journal: Journal, state: State, *, pace: float = 8.0,
                 max_wait: float = 0.3, open_delay: float = 0.002) -> None:
        self.store = store
        self.journal = journal
        self.state = state
        self.pace = pace
        self.max_wait = max_wait
        self.open_delay = open_delay
        #: how many operations are still running (set by the applier): when every one of them is
        #: waiting for a state write, pacing stops and the write happens at once
        self.running: Callable[[], int] | None = None
        self._urgent = asyncio.Event()
        self._waiting = 0  # operations waiting for a state write
        self.writes = 0
        self.journal_writes = 0
        self._opens: list[tuple[dict[str, Any], asyncio.Future[str]]] = []
        self._open_scheduled = False
        self._batch = _StateBatch()
        self._state_wake = asyncio.Event()
        self._closed = False
        self._tasks: list[asyncio.Task[None]] = []
        self._open_error: BaseException | None = None  # the journal refused an intent
        self._state_error: BaseException | None = None  # a state write failed: nothing more may start
        self._next_write = 0.0  # monotonic time before which no state write starts

    async def __aenter__(self) -> Committer:
        self._tasks = [asyncio.create_task(self._state_loop())]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closed = True
        self._state_wake.set()
        await asyncio.gather(*self._tasks)

    # --- what the applier asks for ------------------------------------------------------------

    async def open_intent(self, address: str, kind: str, request_digest: str, details: dict[str, Any]) -> str:
        """Durably record that a create of ``address`` is about to be sent; return its id."""
        error = self._state_error or self._open_error
        if error is not None:
            raise error
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[str] = loop.create_future()
        self._opens.append(({"address": address, "kind": kind, "request_digest": request_digest,
                             "details": details}, fut))
        if not self._open_scheduled:
            self._open_scheduled = True
            loop.call_later(self.open_delay, self._write_opens)
        return await fut

    def close_intent(self, intent_id: str, outcome: str, remote_id: str | None = None) -> None:
        """Record an intent's outcome after the next state write (not awaited: the state is the
        record; the close only says the intent needs no attention)."""
        self._batch.closes.append((intent_id, outcome, remote_id))
        self._state_wake.set()

    async def settle_intent(self, intent_id: str, outcome: str, remote_id: str | None = None) -> None:
        """Record an intent's outcome now and return once it is on disk: for an intent whose
        object the state already records (or that never reached vcita), so that the create which
        follows at the same address may open its own."""
        error = self._state_error or self._open_error
        if error is not None:
            raise error
        await asyncio.to_thread(self.journal.close_many, [(intent_id, outcome, remote_id)])
        self.journal_writes += 1

    async def put(self, address: str, rs: ResourceState | None) -> None:
        """Track ``rs`` at ``address`` (None: stop tracking it); return once that is on disk."""
        await self._enqueue((address, rs))

    async def record(self, mutation: Mutation) -> None:
        """Apply ``mutation`` to the state and return once the result is on disk."""
        await self._enqueue(mutation)

    async def _enqueue(self, change: tuple[str, ResourceState | None] | Mutation) -> None:
        if self._state_error is not None:
            raise self._state_error
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.changes.append(change)
        self._batch.waiters.append(fut)
        self._state_wake.set()
        self._waiting += 1
        self.nudge()
        await fut

    def nudge(self) -> None:
        """Write at once, without pacing, if every running operation waits for the state."""
        if self.running is not None and self._waiting and self._waiting >= self.running():
            self._urgent.set()

    # --- the writers ---------------------------------------------------------------------------

    def _write_opens(self) -> None:
        """Append every intent asked for since the last append: one write and one fsync, on the
        event loop itself (see the module's docstring)."""
        self._open_scheduled = False
        opens, self._opens = self._opens, []
        if not opens:
            return
        error = self._state_error or self._open_error
        if error is None:
            try:
                ids = self.journal.open_many([o for o, _ in opens])
                self.journal_writes += 1
            except BaseException as e:  # noqa: BLE001 - every waiter must hear of it
                error = self._open_error = e
            else:
                for (_, fut), intent_id in zip(opens, ids):
                    if not fut.done():
                        fut.set_result(intent_id)
                return
        for _, fut in opens:
            if not fut.done():
                fut.set_exception(error)

    async def _state_loop(self) -> None:
        while True:
            await self._state_wake.wait()
            self._state_wake.clear()
            if self._batch.changes and not self._closed:
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
                if batch.changes:
                    started = time.monotonic()
                    self.state = await asyncio.to_thread(self._apply_and_write, batch.changes)
                    took = time.monotonic() - started
                    self._next_write = time.monotonic() + min(self.max_wait, self.pace * took)
                    self.writes += 1
                    self._waiting -= len(batch.waiters)
                    for fut in batch.waiters:
                        if not fut.done():
                            fut.set_result(None)
                if batch.closes:
                    await asyncio.to_thread(self.journal.close_many, batch.closes)
                    self.journal_writes += 1
                return
            except BaseException as e:  # noqa: BLE001 - every waiter must hear of it
                self._state_error = e
        self._waiting -= sum(1 for fut in batch.waiters if not fut.done())
        for fut in batch.waiters:
            if not fut.done():
                fut.set_exception(self._state_error)

    def _apply_and_write(self, changes: list[tuple[str, ResourceState | None] | Mutation]) -> State:
        """The new state after ``changes`` (built once, validated once), written to disk."""
        new = self.state
        resources: dict[str, ResourceState] | None = None
        for change in changes:
            if isinstance(change, tuple):
                if resources is None:
                    resources = dict(new.resources)
                address, rs = change
                if rs is None:
                    resources.pop(address, None)
                else:
                    resources[address] = rs
                continue
            if resources is not None:
                new, resources = new._with_resources(resources), None
            new = change(new)
        if resources is not None:
            new = new._with_resources(resources)
        return self.store.write(new, expected_serial=self.state.serial)

"""Group commit of the journal and the state: durable before success, batched for speed.

Every create first waits until its intent is in the journal on disk; every finished operation
waits until the state that records it is on disk.  Writes happen in one background task (in a
worker thread, so requests keep flowing): what piles up while one write is in progress goes into
the next, so 1,000 concurrent creates cost a few dozen fsyncs rather than thousands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.journal import Journal
from reconciler.state import State, StateStore

Mutation = Callable[[State], State]


@dataclass
class _Batch:
    opens: list[tuple[dict[str, Any], asyncio.Future[str]]] = field(default_factory=list)
    closes: list[tuple[str, str, str | None]] = field(default_factory=list)
    mutations: list[tuple[Mutation, asyncio.Future[None]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.opens or self.closes or self.mutations)


class Committer:
    """Serialises journal appends and state writes; ``state`` is always what is on disk."""

    def __init__(self, store: StateStore, journal: Journal, state: State) -> None:
        self.store = store
        self.journal = journal
        self.state = state
        self._batch = _Batch()
        self._wake = asyncio.Event()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self.writes = 0

    async def __aenter__(self) -> Committer:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def open_intent(self, address: str, kind: str, request_digest: str, details: dict[str, Any]) -> str:
        """Durably record that a create of ``address`` is about to be sent; return its id."""
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._batch.opens.append(({"address": address, "kind": kind, "request_digest": request_digest,
                                   "details": details}, fut))
        self._wake.set()
        return await fut

    def close_intent(self, intent_id: str, outcome: str, remote_id: str | None = None) -> None:
        """Record an intent's outcome with the next write (not awaited: the state is the record)."""
        self._batch.closes.append((intent_id, outcome, remote_id))
        self._wake.set()

    async def record(self, mutation: Mutation) -> None:
        """Apply ``mutation`` to the state and return once the result is on disk."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.mutations.append((mutation, fut))
        self._wake.set()
        await fut

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._batch = self._batch, _Batch()
            if batch:
                await self._flush(batch)
            if self._closed and not self._batch:
                return

    async def _flush(self, batch: _Batch) -> None:
        if self._error is not None:
            self._fail(batch, self._error)
            return
        try:
            if batch.opens:
                ids = await asyncio.to_thread(self.journal.open_many, [o for o, _ in batch.opens])
                for (_, fut), intent_id in zip(batch.opens, ids):
                    fut.set_result(intent_id)
            new = self.state
            for mutation, _ in batch.mutations:
                new = mutation(new)
            if batch.mutations:
                self.state = await asyncio.to_thread(self.store.write, new, expected_serial=self.state.serial)
                self.writes += 1
                for _, fut in batch.mutations:
                    fut.set_result(None)
            if batch.closes:
                await asyncio.to_thread(self.journal.close_many, batch.closes)
        except BaseException as e:  # noqa: BLE001 - every waiter must hear of it
            self._error = e
            self._fail(batch, e)

    @staticmethod
    def _fail(batch: _Batch, e: BaseException) -> None:
        for _, fut in batch.opens:
            if not fut.done():
                fut.set_exception(e)
        for _, mfut in batch.mutations:
            if not mfut.done():
                mfut.set_exception(e)

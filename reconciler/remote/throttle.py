"""How fast requests may go: a token-bucket rate limit and an AIMD concurrency limit.

:class:`RateLimiter` spaces request *starts* (``rate`` per second, bursts up to ``burst``) and can
be paused until a time the server named (``Retry-After``), so one 429 slows every request, not just
the one that received it.  :class:`AdaptiveConcurrency` bounds requests *in flight*: it halves its
limit on a 429 (once per congestion signal: answers to requests started before the last decrease
are ignored) and adds one back after every ``increase_every`` successes, up to ``maximum``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


class RateLimiter:
    """Token bucket over request starts; ``rate=None`` means unlimited (pauses still apply)."""

    def __init__(self, rate: float | None, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive or None")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else (rate or 1.0))
        self._tokens = self.burst
        self._clock = clock
        self._stamp = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause_for(self, seconds: float) -> None:
        """Let no request start for ``seconds`` (e.g. the server's Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def acquire(self, *, skip_pause: bool = False) -> None:
        """Wait until one more request may start.

        ``skip_pause``: the caller has already waited out the pause it reported itself.
        """
        if self.rate is None and (skip_pause or self._paused_until <= self._clock()):
            return
        async with self._lock:  # FIFO: waiters are served in arrival order
            while True:
                now = self._clock()
                if now < self._paused_until and not skip_pause:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                if self.rate is None:
                    return
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)


@dataclass
class _Ticket:
    generation: int


class _Slot:
    """``async with`` one slot of an :class:`AdaptiveConcurrency` (a class, not a generator-based
    context manager: it is entered once per request)."""

    __slots__ = ("_owner",)

    def __init__(self, owner: AdaptiveConcurrency) -> None:
        self._owner = owner

    async def __aenter__(self) -> _Ticket:
        await self._owner._acquire()
        return _Ticket(self._owner._generation)

    async def __aexit__(self, *exc: object) -> None:
        self._owner.in_flight -= 1
        self._owner._grant()


class AdaptiveConcurrency:
    """A FIFO semaphore whose size follows AIMD: halve on throttling, +1 per ``increase_every`` successes."""

    def __init__(self, maximum: int, *, minimum: int = 1, increase_every: int = 20) -> None:
        if maximum < 1 or minimum < 1 or minimum > maximum:
            raise ValueError("need 1 <= minimum <= maximum")
        self.maximum = maximum
        self.minimum = minimum
        self.increase_every = max(1, increase_every)
        self.limit = maximum
        self.in_flight = 0
        self.decreases = 0
        self._generation = 0
        self._successes = 0
        # Each waiter is woken only when a slot is handed to it: O(1) per release, even with
        # thousands of queued requests (a Condition's notify_all would wake them all every time).
        self._waiters: deque[asyncio.Future[None]] = deque()

    def slot(self) -> _Slot:
        """Hold one in-flight slot for the duration of an ``async with`` block (the ticket)."""
        return _Slot(self)

    async def _acquire(self) -> None:
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut  # resolved by _grant, which has already counted us in flight
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.in_flight -= 1  # granted and cancelled at once: give the slot back
                self._grant()
            else:
                self._waiters.remove(fut)
            raise

    def _grant(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            fut = self._waiters.popleft()
            if not fut.done():
                self.in_flight += 1
                fut.set_result(None)

    def on_success(self, ticket: _Ticket) -> None:
        """Additive increase: one more slot after ``increase_every`` successes."""
        if self.limit >= self.maximum:
            return
        self._successes += 1
        if self._successes >= self.increase_every:
            self._successes = 0
            self.limit += 1
            self._grant()

    def on_throttled(self, ticket: _Ticket) -> None:
        """Multiplicative decrease, once per generation of requests."""
        if ticket.generation != self._generation:
            return  # started before the last decrease: the same congestion, already counted
        self._generation += 1
        self._successes = 0
        self.decreases += 1
        self.limit = max(self.minimum, self.limit // 2)

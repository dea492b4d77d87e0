"""A sharded HTTP connection pool, so that many concurrent requests stay cheap on the CPU.

httpcore's connection pool does work proportional to the *square* of its connection count each
time a request enters or leaves it (every idle connection counts every other one, and each idle
connection's socket is polled for readability).  At 32 connections that is about 3 ms of CPU per
request, which caps a refresh at a few hundred requests per second whatever the API could do.
:class:`ShardedTransport` spreads requests over several small pools (``shard_size`` connections
each, 4 by default), sending each request to the least busy one; the work per request becomes
constant.  The dispatcher's concurrency limit still bounds the total in flight, so no shard ever
needs more connections than it has.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import httpx


class ShardedTransport(httpx.AsyncBaseTransport):
    """``ceil(connections / shard_size)`` plain HTTP transports, least-busy first."""

    def __init__(self, connections: int, *, shard_size: int = 4) -> None:
        if connections < 1 or shard_size < 1:
            raise ValueError("connections and shard_size must be at least 1")
        size = min(shard_size, connections)
        count = math.ceil(connections / size)
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        ssl_context = httpx.create_ssl_context()  # one CA bundle load (~25 ms), not one per shard
        self.shards = [httpx.AsyncHTTPTransport(limits=limits, verify=ssl_context) for _ in range(count)]
        self.in_flight = [0] * count
        self.sent = [0] * count  # requests per shard, for diagnostics

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self.shards)), key=self.in_flight.__getitem__)
        self.in_flight[index] += 1
        self.sent[index] += 1
        try:
            response = await self.shards[index].handle_async_request(request)
        except BaseException:
            self.in_flight[index] -= 1
            raise
        # The connection stays busy until the body has been read and the response closed.
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code, headers=response.headers,
            stream=_ReleasingStream(response.stream, self, index), extensions=response.extensions,
        )

    def _release(self, index: int) -> None:
        self.in_flight[index] -= 1

    async def aclose(self) -> None:
        for shard in self.shards:
            await shard.aclose()


class _ReleasingStream(httpx.AsyncByteStream):
    """The shard's response body; closing it frees the request's place in the shard."""

    def __init__(self, inner: httpx.AsyncByteStream, owner: ShardedTransport, index: int) -> None:
        self._inner = inner
        self._owner = owner
        self._index = index
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if not self._released:
                self._released = True
                self._owner._release(self._index)

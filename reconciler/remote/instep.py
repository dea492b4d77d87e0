"""Connections kept in step with requests: aiohttp's connection protocol and pool, guarded.

aiohttp queues any complete answer it parses, so one that arrives on an idle kept-alive
connection, or a second answer in the segment of the first, would be read as the answer of the
next request sent on that connection.  :class:`InStepHandler` refuses bytes nobody asked for
(the connection is dropped, never reused; the request it was serving learns it from
``out_of_step``), and is never handed out of the pool while bytes wait in the kernel undelivered.
:class:`InStepConnector` makes connections with it and, with ``quiet``, hands out only
connections idle for at least that long.  Used by ``http.py``, whose docstring says why
(the connection policy of creates).
"""

from __future__ import annotations

import asyncio
import select
import time
from collections import deque
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler


class InStepHandler(ResponseHandler):
    """aiohttp's connection protocol, refusing answers that no request is waiting for.

    ``asked`` is true from the moment a request is about to be written (aiohttp calls
    ``set_response_params`` then) until its final answer (not a ``1xx``) has been parsed to its
    end.  Bytes arriving outside that window, or a second final answer inside it, put the
    connection out of step: it is closed at once (so the pool never hands it out again) and the
    request it was serving, if still reading, learns it from :attr:`out_of_step`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.asked = False
        self.finals = 0
        self.out_of_step = False
        self._poller: Any = None  # made at the first reuse (see is_connected)
        #: set by the pool for the one next is_connected(): it asked the kernel a moment ago, in the
        #: same step of the event loop (nothing could have been delivered in between)
        self.vouched = False

    def set_response_params(self, **kwargs: Any) -> None:
        super().set_response_params(**kwargs)
        if len(self):  # an answer already queued before the request left: never pair them
            self._drop()
        self.asked, self.finals = True, 0

    def data_received(self, data: bytes) -> None:
        if data and not self.asked:
            self._drop()
            return
        super().data_received(data)

    def feed_data(self, data: Any, size: int = 0) -> None:
        message, payload = data
        if not 100 <= message.code < 200:
            self.finals += 1
            if self.finals > 1:
                self._drop()
            payload.on_eof(self._answered)
        super().feed_data(data, size)

    def _answered(self) -> None:
        self.asked = False

    def is_connected(self) -> bool:
        # aiohttp asks this of an idle connection before handing it out of the pool (and closes it
        # when the answer is no): one with bytes waiting that the event loop has not delivered yet
        # (a stray answer, or the server's close) is never used for another request.
        if not super().is_connected() or self.out_of_step:
            return False
        if self.asked:
            return True
        if self.vouched:
            self.vouched = False
            return True
        if self._poller is None:
            self._poller = _poller(self.transport)
        return self._poller is not None and not self._poller.poll(0)

    def _drop(self) -> None:
        self.out_of_step = True
        self.asked = False
        if self.transport is not None:
            self.transport.abort()


class _SelectPoller:  # pragma: no cover - Windows, which has no poll()
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def poll(self, timeout: float) -> list[Any]:
        return select.select([self.fd], [], [self.fd], timeout)[0]


def _poller(transport: Any) -> Any:
    """A poller whose ``poll(0)`` is not empty when the socket under ``transport`` has something to
    read (bytes, a close or an error); None when there is no open socket to ask."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    fd = sock.fileno() if sock is not None else -1
    if fd < 0:  # pragma: no cover - every open TCP transport of asyncio and uvloop has one
        return None
    if not hasattr(select, "poll"):  # pragma: no cover - Windows
        return _SelectPoller(fd)
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return poller


class InStepConnector(aiohttp.TCPConnector):
    """A TCP connector whose connections use :class:`InStepHandler`.

    ``quiet`` (seconds, 0 for none): an idle connection is handed out only once it has been idle
    that long (any bytes a server sent with or shortly after its last answer have arrived by
    then, and were seen); younger ones stay in the pool, and a new connection is opened instead.
    """

    def __init__(self, *, quiet: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not hasattr(self, "_factory") or not isinstance(getattr(self, "_conns", None), dict):  # pragma: no cover
            # a guard against aiohttp changes
            raise RuntimeError("this aiohttp version is not supported: its connector has no protocol factory "
                               "or no pool of idle connections")
        self._factory = self._new_protocol  # type: ignore[assignment]
        self.quiet = quiet
        self.connections_made = 0  # for diagnostics and tests

    def _new_protocol(self) -> InStepHandler:
        self.connections_made += 1
        return InStepHandler(self._loop)

    async def _get(self, key: Any, traces: list[Any]) -> Any:
        idle = self._conns.get(key)
        if not self.quiet or not idle:
            return await super()._get(key, traces)
        # aiohttp keeps a key's idle connections in the order they were released, the oldest
        # first, and hands out the first one still connected and not expired: it is shown only
        # those released at least ``quiet`` ago; the younger ones wait in the pool.
        now = time.monotonic()
        settled = now - self.quiet
        oldest, released = idle[0]
        if released > settled:  # even the oldest is too young: a new connection
            return None
        expiry = self._keepalive_timeout
        if oldest.is_connected() and (expiry is None or now - released <= expiry):
            # the common case, in constant time: aiohttp hands out this very connection, asking it
            # again whether it is connected before any await, so the kernel is not asked twice
            mine = oldest if isinstance(oldest, InStepHandler) else None  # always, from this connector's factory
            if mine is not None:
                mine.vouched = True
            try:
                return await super()._get(key, traces)
            finally:
                if mine is not None:
                    mine.vouched = False
        young: deque[Any] = deque()
        while idle and idle[-1][1] > settled:
            young.appendleft(idle.pop())
        try:
            return await super()._get(key, traces)
        finally:
            rest = self._conns.get(key)
            if rest is None:
                rest = self._conns[key] = deque()
            rest.extend(young)
            if not rest:
                del self._conns[key]


class CarriedResponse(aiohttp.ClientResponse):
    """Remembers the protocol that carried the answer, to ask it whether it stayed in step."""

    carrier: InStepHandler | None = None

    async def start(self, connection: Any) -> CarriedResponse:
        self.carrier = connection.protocol
        return await super().start(connection)  # type: ignore[return-value]

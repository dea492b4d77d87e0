"""A lean HTTP/1.1 transport: asyncio protocols, llhttp (``httptools``) and a keep-alive pool.

Why not httpx's own transport: httpcore spends about 0.5 ms of CPU on each request (anyio cancel
scopes around every read and write, h11's pure-Python parser, a pool that re-examines every
connection on each request), and the client shares a 2-core machine with whatever it talks to.
Applying 1,000 client packages at 20 ms latency and 32 in flight should take 0.63 s; with
httpcore the client's CPU alone was 0.9 s.  This transport does the same job for about a fifth
of that: one ``write`` per request, the response parsed in C as it arrives, and the waiting
request woken once, when the whole response is in.

What it does, and nothing more (it is the client's transport, not a general one):

* HTTP/1.1 over TCP or TLS (``https``: the system's or the given SSL context, SNI, certificate
  checks as ``httpx.create_ssl_context()`` sets them); one request at a time per connection,
  kept alive for reuse while the server allows it and for at most ``keepalive_expiry`` seconds
  idle (servers commonly close idle connections at 5 s).
* Request bodies are sent whole (they are small JSON documents); responses are read whole (up
  to ``MAX_BODY``, 64 MiB) and handed over as ``httpx.Response`` objects, whose content decoding (gzip, deflate) httpx does.
  Bodies framed by ``Content-Length``, by chunks, or by the connection's end are all read;
  interim ``1xx`` answers are skipped.
* ``request.extensions["timeout"]`` (``connect``, ``read``, ``pool``; httpx's format) bounds the
  wait for a pool slot, the connection, and the whole answer after the request is written.
* Failures are httpx's exceptions, so retry policy and "outcome unknown" decisions are made
  exactly as with httpx's transport: nothing could be sent (``ConnectError``, ``ConnectTimeout``,
  ``PoolTimeout``, ``UnsupportedProtocol``) versus sent and not answered (``ReadTimeout``,
  ``RemoteProtocolError``, ``ReadError``).  A connection whose request did not end cleanly
  (timeout, cancellation, malformed answer) is closed, never reused.

Not supported: proxies, HTTP/2, ``HEAD`` (whose answer has no body to frame), upgrades.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from collections import deque
from typing import Any

import httptools
import httpx

DEFAULT_PORTS = {"http": 80, "https": 443}
#: An answer's body is held in memory: a larger one is refused (no API answer comes near it).
MAX_BODY = 64 << 20
_REQUEST_LINE_END = b" HTTP/1.1\r\n"
Origin = tuple[str, str, int]


class CertificateRefused(httpx.ConnectError):
    """The server's TLS certificate failed verification: nothing was sent, and trying again will
    not help (a wrong URL, or an interception proxy whose authority is not trusted)."""


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: the parser's callbacks fill the answer of the request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None  # uvloop's are not subclasses: duck-typed
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.waiter: asyncio.Future[None] | None = None
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.received = 0  # body bytes of the answer so far
        self.headers_done = False
        self.keep_alive = False
        self.complete = False  # the final answer of the request in flight is whole
        self.overrun = False  # bytes came after that answer: the connection is out of step

    # -- one exchange ---------------------------------------------------------------------------

    def begin(self, waiter: asyncio.Future[None]) -> None:
        self.waiter = waiter
        self.status, self.reason, self.headers, self.body, self.received = 0, b"", [], [], 0
        self.headers_done = self.keep_alive = self.complete = self.overrun = False

    def _finish(self, error: BaseException | None = None) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.complete:
            # Nothing asked, or bytes beyond the end of the answer: the connection is out of
            # step with its requests (a second answer would be paired with the wrong request).
            # Dropping it fails the exchange still in flight, if any, as sent and unanswered.
            self.overrun = self.complete
            self.close()
            self._finish(_overrun_error())
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.close()
            error = _overrun_error() if self.overrun else httpx.RemoteProtocolError(f"malformed HTTP response ({exc})")
            self._finish(error)
            return
        if self.complete:
            self._finish()

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is None:
            return
        if self.headers_done and self._ends_with_connection():
            self.keep_alive = False
            self._finish()
        elif self.headers_done or self.status:
            self._finish(httpx.RemoteProtocolError("the server closed the connection in the middle of its answer"))
        elif exc is not None:
            self._finish(httpx.ReadError(f"the connection failed before an answer ({type(exc).__name__})"))
        else:
            self._finish(httpx.RemoteProtocolError("the server closed the connection without answering"))

    def _ends_with_connection(self) -> bool:
        """An answer whose body is framed by the connection's end (neither length nor chunks)."""
        if self.status in (204, 304) or self.status < 200:
            return False
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
                return False
        return True

    # -- llhttp callbacks -----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:  # a second message in the same read: never mix it into the first
            self.overrun = True
            raise httptools.HttpParserError("a second answer followed the first")

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        if self.waiter is None:  # given up on (too large): the rest of the chunk is dropped
            return
        self.received += len(body)
        if self.received > MAX_BODY:
            self.close()
            self._finish(httpx.RemoteProtocolError(f"the answer is larger than {MAX_BODY >> 20} MiB"))
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.status < 200:  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            self.status, self.reason, self.headers, self.body = 0, b"", [], []
            self.headers_done = False
            return
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True  # the waiter is woken once the whole read is parsed (data_received)


class WireTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 keep-alive connections, at most ``max_connections`` open or in use at once."""

    def __init__(self, *, max_connections: int = 32, keepalive_expiry: float = 4.0,
                 verify: ssl.SSLContext | None = None) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self._ssl = verify
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._open: set[_Connection] = set()
        self.connections_made = 0  # for diagnostics and tests

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"the URL's scheme is not http or https: {url}", request=request)
        method = request.method.encode("ascii")
        if method == b"HEAD":
            raise httpx.UnsupportedProtocol("HEAD requests are not supported by this transport", request=request)
        host = url.host
        origin = (scheme, host, url.port or DEFAULT_PORTS[scheme])
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        try:
            content = request.content
        except httpx.RequestNotRead:
            content = await request.aread()
        head = b"".join([b"%s: %s\r\n" % pair for pair in request.headers.raw])
        lines = len(request.headers.raw)
        if head.count(b"\n") != lines or head.count(b"\r") != lines or b"\0" in head:
            # a line break inside a header would start a header (or a request) of its own
            raise httpx.LocalProtocolError("a request header holds a line break or NUL; nothing was sent",
                                           request=request)
        message = b"".join([method, b" ", url.raw_path, _REQUEST_LINE_END, head, b"\r\n", content])

        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_connections)
        await self._take_slot(timeouts.get("pool"), request)
        connection: _Connection | None = None
        try:
            connection = await self._connection(origin, timeouts.get("connect"), request)
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            connection.begin(waiter)
            assert connection.transport is not None
            connection.transport.write(message)
            read_timeout = timeouts.get("read")
            timer = None if read_timeout is None else loop.call_later(
                read_timeout, _expire, waiter, request)
            try:
                await waiter
            finally:
                if timer is not None:
                    timer.cancel()
            if connection.overrun:  # more bytes arrived before this task resumed
                raise _overrun_error()
            response = httpx.Response(
                connection.status, headers=connection.headers,
                stream=httpx.ByteStream(b"".join(connection.body)),
                extensions={"http_version": b"HTTP/1.1", "reason_phrase": connection.reason},
            )
        except BaseException as exc:
            if connection is not None:
                connection.waiter = None
                connection.close()
                self._open.discard(connection)
            self._slots.release()
            if isinstance(exc, httpx.RequestError):
                try:
                    exc.request  # noqa: B018 - raises when the error was made without one
                except RuntimeError:
                    exc.request = request
            raise
        if connection.keep_alive and not connection.closed:
            connection.idle_since = time.monotonic()
            self._idle.setdefault(origin, deque()).append(connection)
        else:
            connection.close()
            self._open.discard(connection)
        self._slots.release()
        return response

    async def _take_slot(self, timeout: float | None, request: httpx.Request) -> None:
        assert self._slots is not None
        if not self._slots.locked():
            await self._slots.acquire()
            return
        try:
            async with asyncio.timeout(timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no connection became free in time", request=request) from None

    async def _connection(self, origin: Origin, timeout: float | None, request: httpx.Request) -> _Connection:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recently used: the likeliest to be alive
            transport = connection.transport
            if (not connection.closed and transport is not None and not transport.is_closing()
                    and now - connection.idle_since < self.keepalive_expiry):
                return connection
            connection.close()
            self._open.discard(connection)
        # Idle connections to other origins count against the limit: close the oldest one.
        if len(self._open) >= self.max_connections:
            self._close_one_idle()
        scheme, host, port = origin
        tls = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            tls = self._ssl
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    _Connection, host, port, ssl=tls, server_hostname=host if tls else None)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out", request=request) from None
        except ssl.SSLCertVerificationError as exc:  # before OSError, whose subclass it is
            raise CertificateRefused(f"TLS with {host}:{port} failed (its certificate was refused: "
                                     f"{exc.verify_message})", request=request) from None
        except ssl.SSLError as exc:
            raise httpx.ConnectError(f"TLS with {host}:{port} failed ({exc.reason or type(exc).__name__})",
                                     request=request) from None
        except OSError as exc:  # refused, unreachable, name not found
            raise httpx.ConnectError(f"cannot connect to {host}:{port} ({_reason(exc)})", request=request) from None
        self.connections_made += 1
        self._open.add(connection)
        return connection

    def _close_one_idle(self) -> None:
        oldest: tuple[float, deque[_Connection]] | None = None
        for idle in self._idle.values():
            if idle and (oldest is None or idle[0].idle_since < oldest[0]):
                oldest = (idle[0].idle_since, idle)
        if oldest is not None:
            connection = oldest[1].popleft()
            connection.close()
            self._open.discard(connection)

    async def aclose(self) -> None:
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()


def _reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"name not found: {exc.strerror}"
    if exc.errno and exc.errno > 0:  # asyncio's own message repeats the address: the errno says it
        return os.strerror(exc.errno)
    return exc.strerror or type(exc).__name__


def _overrun_error() -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(
        "the server sent more than one answer to one request; the connection was dropped and the "
        "answer cannot be trusted")


def _expire(waiter: asyncio.Future[Any], request: httpx.Request) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.ReadTimeout("no complete answer in time", request=request))

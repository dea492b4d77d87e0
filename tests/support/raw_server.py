"""A raw HTTP/1.1 server on loopback that answers exactly the bytes a test scripts.

Real asyncio TCP: it reads each request head (and its body by Content-Length), records it, and
hands it to the test's handler, which writes whatever bytes it likes (two answers at once, a late
unsolicited one, garbage).  For tests of what the client does with answers no sane server sends.
``raw_server(handler, tls=context)`` serves TLS; ``threaded_raw_server(handler)`` serves from a
thread of its own; ``replying(*chunks)`` is a handler that writes fixed bytes; ``tunnel_proxy()``
is a minimal HTTP proxy that opens ``CONNECT`` tunnels (to one fixed upstream, whatever host is
asked for), recording what it was asked.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

#: (request number, 1-based; the raw request; the connection's writer) -> keep the connection open?
Handler = Callable[[int, bytes, asyncio.StreamWriter], Awaitable[bool]]


class RawServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.url = ""
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                if not await self.handler(len(self.requests), head + body, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def later(self, delay: float, writer: asyncio.StreamWriter, data: bytes) -> None:
        """Write ``data`` on this connection ``delay`` seconds from now (unasked)."""
        async def write() -> None:
            await asyncio.sleep(delay)
            if not writer.is_closing():
                writer.write(data)
        task = asyncio.ensure_future(write())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


@asynccontextmanager
async def raw_server(handler: Handler, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[RawServer]:
    server = RawServer(handler)
    tcp = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=tls)
    server.port = tcp.sockets[0].getsockname()[1]
    server.url = f"{'https' if tls else 'http'}://127.0.0.1:{server.port}"
    try:
        yield server
    finally:
        tcp.close()
        for task in list(server._tasks):
            task.cancel()


def answer(body: bytes = b'{"ok":true}', *, status: bytes = b"200 OK", extra: bytes = b"") -> bytes:
    """One complete, Content-Length-framed, keep-alive answer."""
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


def replying(*chunks: bytes, keep_open: bool = True) -> Handler:
    async def handler(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        return keep_open
    return handler


@contextmanager
def threaded_raw_server(handler: Handler) -> Iterator[RawServer]:
    """:func:`raw_server` on its own event loop, in a thread: it keeps writing while the test's
    loop is blocked (bytes then wait in the kernel, undelivered to the client's protocol)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="raw-server", daemon=True)
    thread.start()
    opened = raw_server(handler)
    try:
        server = asyncio.run_coroutine_threadsafe(opened.__aenter__(), loop).result(timeout=10)
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(opened.__aexit__(None, None, None), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


class TunnelProxy:
    """What the proxy saw: the CONNECT targets and their Proxy-Authorization headers."""

    def __init__(self) -> None:
        self.tunnels: list[tuple[str, str | None]] = []
        self.url = ""


@asynccontextmanager
async def tunnel_proxy(upstream_port: int, *, require_auth: str | None = None) -> AsyncIterator[TunnelProxy]:
    """A CONNECT proxy that pipes every tunnel to 127.0.0.1:``upstream_port``; with
    ``require_auth`` (a ``Proxy-Authorization`` value) others get 407."""
    seen = TunnelProxy()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        lines = head.split("\r\n")
        auth = next((line.split(":", 1)[1].strip() for line in lines
                     if line.lower().startswith("proxy-authorization:")), None)
        method, target = lines[0].split()[:2]
        seen.tunnels.append((f"{method} {target}", auth))
        if method != "CONNECT" or (require_auth is not None and auth != require_auth):
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    tcp = await asyncio.start_server(handle, "127.0.0.1", 0)
    seen.url = f"http://127.0.0.1:{tcp.sockets[0].getsockname()[1]}"
    try:
        yield seen
    finally:
        tcp.close()

"""A raw HTTP/1.1 server on loopback that answers exactly the bytes a test scripts.

Real asyncio TCP: it reads each request head (and its body by Content-Length), records it, and
hands it to the test's handler, which writes whatever bytes it likes (two answers at once, a late
unsolicited one, garbage).  For tests of what the client does with answers no sane server sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

#: (request number, 1-based; the raw request; the connection's writer) -> keep the connection open?
Handler = Callable[[int, bytes, asyncio.StreamWriter], Awaitable[bool]]


class RawServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.url = ""
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
        except (asyncio.IncompleteReadError, ConnectionError):
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
async def raw_server(handler: Handler) -> AsyncIterator[RawServer]:
    server = RawServer(handler)
    tcp = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    server.url = f"http://127.0.0.1:{tcp.sockets[0].getsockname()[1]}"
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

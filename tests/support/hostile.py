"""A misbehaving server on loopback, in front of the served sandbox, with one mode per attack.

``HostileProxy(upstream, mode)`` listens on 127.0.0.1 (its own event loop, in a thread, so a CLI
run in another process or in this one can reach it) and forwards every request to the sandbox,
answering as the sandbox did, except the requests its mode attacks:

=====================  =========================================================================
mode                   what the attacked requests get
=====================  =========================================================================
``gzip-bomb``          200, ``Content-Encoding: gzip``: 1 MiB that decodes to 1 GiB of zeros
``endless-headers``    a status line, then header lines that never end
``endless-value``      a status line, then one header whose value never ends
``escape-codes``       422 whose message holds ESC/BEL/CR/LF and a forged "Apply complete!" line
``echo-auth``          401 whose message echoes the request's ``Authorization`` header
``endless-list``       every catalog page holds one new package (a new id on every page)
``two-answers``        a create's real answer and a 429 in the same segment
``late-429``           a create's real answer, then 20 ms later a 429 in a segment of its own
``stray-408``          a create's real answer (after 120 ms), then 10 ms later, on the idle
                       connection, a ``408 Request Timeout`` nobody asked for
``close-reused``       a create's real answer after 120 ms; but a create that arrives on a
                       connection that carried one before is executed (forwarded), then the
                       connection is closed without an answer
``replayed-answer``    a client-package create is executed (forwarded), but answered with the
                       answer of the create before it (another client's package), as a caching
                       proxy or a confused load balancer would; the first is answered honestly
``nan-answer``         a client-package create is executed (forwarded), but its answer's
                       ``amount`` reads ``NaN`` (not JSON: Python's json module reads it anyway)
``nan-list``           the catalog list's answer with each ``expiration`` as ``Infinity``
=====================  =========================================================================

``replayed-catalog-answer`` is ``replayed-answer`` for catalog-package creates (each answered with
the package created before it: another name's).

Every loop is bounded in count and time (the network rules of this workplace), and the server
stops with the ``with`` block.  ``requests`` lists ``(method, target, body)`` as received;
``armed = False`` makes it an honest proxy (to set a scene through the same URL).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import zlib
from functools import cache
from typing import Any, Self

import httpx

MODES = ("gzip-bomb", "endless-headers", "endless-value", "escape-codes", "echo-auth", "endless-list",
         "two-answers", "late-429", "stray-408", "close-reused", "replayed-answer",
         "replayed-catalog-answer", "nan-answer", "nan-list")
FORGED = "\x1b[2J\x1b[H\x07\r\nApply complete! Resources: 9 added, 0 changed, 0 destroyed.\n"
_ENDLESS_FOR = 30.0  # seconds: an endless answer is cut off after this, whatever happens


@cache
def gzip_bomb(decoded: int = 1 << 30) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1 << 20)
    return b"".join(packer.compress(block) for _ in range(decoded >> 20)) + packer.flush()


def _head(status: str, headers: list[tuple[str, str]], length: int | None) -> bytes:
    lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _json_answer(status: str, body: Any) -> bytes:
    raw = json.dumps(body).encode()
    return _head(status, [("Content-Type", "application/json")], len(raw)) + raw


class HostileProxy:
    def __init__(self, upstream: str, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.upstream = upstream.rstrip("/")
        self.mode = mode
        self.requests: list[tuple[str, str, bytes]] = []
        #: bodies of the creates that arrived on a connection that had carried a create before
        self.reused: list[bytes] = []
        self.armed = True
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hostile-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._http: httpx.AsyncClient | None = None
        self._template: dict[str, Any] | None = None
        self._previous: bytes | None = None  # replayed-answer: the last create answer forwarded
        #: connections being served, closed at exit (a server's close() leaves them open, and a
        #: transport left to the garbage collector warns inside whichever test runs next)
        self._open: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> Self:
        if self.mode == "gzip-bomb":
            gzip_bomb()  # made before the server starts, not while a client waits
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        self._http = httpx.AsyncClient(timeout=30)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _stop(self) -> None:
        assert self._server is not None and self._http is not None
        self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        await asyncio.sleep(0)  # the handlers see their connections end and return
        await self._http.aclose()

    def attacks(self, method: str, target: str) -> bool:
        if not self.armed:
            return False
        if self.mode in ("two-answers", "late-429", "stray-408", "close-reused", "replayed-answer", "nan-answer"):
            return method == "POST" and "/client_packages" in target
        if self.mode == "replayed-catalog-answer":
            return method == "POST" and target.split("?", 1)[0].endswith("/platform/v1/payment/packages")
        if self.mode in ("endless-list", "nan-list"):
            return method == "GET" and "/payment/packages?" in target
        return method == "GET" and "/_sandbox" not in target

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        creates = 0  # creates this connection carried
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split()[:2]
                headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
                length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
                body = await reader.readexactly(length)
                self.requests.append((method, target, body))
                if self.attacks(method, target) and self.mode in ("stray-408", "close-reused"):
                    creates += 1
                    if creates > 1:
                        self.reused.append(body)
                    await asyncio.sleep(0.12)  # the create takes a while: a connection can go quiet
                    if self.mode == "close-reused" and creates > 1:
                        await self._forward(method, target, {k.lower(): v for k, v in headers}, body)
                        break  # executed, and the connection closed without an answer
                if not await self._answer(method, target, {k.lower(): v for k, v in headers}, body, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self._open.discard(writer)
            writer.close()

    async def _forward(self, method: str, target: str, headers: dict[str, str], body: bytes) -> httpx.Response:
        assert self._http is not None
        keep = {k: v for k, v in headers.items() if k in ("authorization", "content-type", "x-on-behalf-of")}
        return await self._http.request(method, self.upstream + target, headers=keep, content=body)

    async def _answer(self, method: str, target: str, headers: dict[str, str], body: bytes,
                      writer: asyncio.StreamWriter) -> bool:
        attacked = self.attacks(method, target)
        mode = self.mode
        if attacked and mode == "gzip-bomb":
            bomb = gzip_bomb()
            writer.write(_head("200 OK", [("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
                               len(bomb)))
            writer.write(bomb)
            await writer.drain()
            return True
        if attacked and mode in ("endless-headers", "endless-value"):
            writer.write(b"HTTP/1.1 200 OK\r\n" + (b"X-Big: " if mode == "endless-value" else b""))
            until = time.monotonic() + _ENDLESS_FOR
            for i in range(10_000_000):
                writer.write(b"X-Pad-%d: %s\r\n" % (i, b"v" * 50) if mode == "endless-headers" else b"a" * 65536)
                await writer.drain()
                if time.monotonic() > until:
                    break
            return False
        if attacked and mode == "escape-codes":
            writer.write(_json_answer("422 Unprocessable Entity",
                                      {"success": False, "errors": [{"field": "", "message": FORGED}]}))
            return True
        if attacked and mode == "echo-auth":
            echoed = f"Unauthorized: we received 'Authorization: {headers.get('authorization', '')}'"
            writer.write(_json_answer("401 Unauthorized", {"status": "Error", "error": echoed}))
            return True
        upstream = await self._forward(method, target, headers, body)
        answer = _head(f"{upstream.status_code} {upstream.reason_phrase}",
                       [("Content-Type", upstream.headers.get("content-type", "application/json"))],
                       len(upstream.content)) + upstream.content
        if attacked and mode == "endless-list":
            page = int(httpx.URL(target).params.get("page", "1"))
            if self._template is None:
                listed = upstream.json()["data"]["packages"]
                self._template = listed[0]
            package = {**self._template, "id": f"endless{page:010d}", "name": f"Endless {page}"}
            writer.write(_json_answer("200 OK", {"status": "OK", "data": {"packages": [package]}}))
            return True
        if attacked and mode in ("nan-answer", "nan-list"):
            field, value = (rb'"amount":\s*[-0-9.eE+]+', b'"amount":NaN') if mode == "nan-answer" else (
                rb'"expiration":\s*[-0-9.eE+]+', b'"expiration":Infinity')
            content = re.sub(field, value, upstream.content)
            answer = _head(f"{upstream.status_code} {upstream.reason_phrase}",
                           [("Content-Type", "application/json")], len(content)) + content
        if attacked and mode in ("replayed-answer", "replayed-catalog-answer"):
            answer, self._previous = (self._previous or answer), answer
        if attacked and mode == "two-answers":  # one write: one segment on loopback
            answer += _json_answer("429 Too Many Requests", {"success": False, "errors": [{"message": "slow"}]})
        writer.write(answer)
        await writer.drain()
        if attacked and mode == "late-429":  # the same 429, a moment later, in a segment of its own
            await asyncio.sleep(0.02)
            writer.write(_json_answer("429 Too Many Requests", {"success": False, "errors": [{"message": "slow"}]}))
            await writer.drain()
        if attacked and mode == "stray-408":  # on the idle connection, as a server's idle timeout would
            await asyncio.sleep(0.01)
            writer.write(_json_answer("408 Request Timeout", {"success": False, "errors": [{"message": "idle"}]}))
            await writer.drain()
        return True

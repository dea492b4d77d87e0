"""The lean HTTP/1.1 transport against small raw servers that answer exactly as a test needs.

Each server is a real asyncio TCP server on loopback that reads one request head (and its body by
Content-Length) and answers with the bytes a test scripted: chunked bodies, bodies ended by the
connection's end, interim answers, gzip, a dropped connection, silence.  What the transport must
get right is what the dispatcher relies on: complete answers, keep-alive reuse only when it is
safe, and the httpx exception that tells "never sent" from "sent, answer unknown".
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from remote_support import SleepRecorder

from reconciler.errors import ProtocolError, UnavailableError
from reconciler.remote import Secret, Target, VcitaClient
from reconciler.remote.retry import NOT_SENT
from reconciler.remote.wire import CertificateRefused, WireTransport

pytestmark = pytest.mark.anyio

Handler = Callable[[int, bytes, asyncio.StreamWriter], Awaitable[bool]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Server:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.url = ""

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


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[Server]:
    server = Server(handler)
    tcp = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        tcp.close()


def answer(body: bytes = b'{"ok":true}', *, status: bytes = b"200 OK", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: " + \
        str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body


def replying(*chunks: bytes, keep_open: bool = True) -> Handler:
    async def handler(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        return keep_open
    return handler


async def send(transport: WireTransport, method: str, url: str, *, content: bytes | None = None,
               timeout: float = 5.0) -> httpx.Response:
    request = httpx.Request(method, url, content=content, headers={"Authorization": "Bearer t"},
                            extensions={"timeout": httpx.Timeout(timeout).as_dict()})
    response = await transport.handle_async_request(request)
    await response.aread()
    return response


async def test_sends_the_request_as_given_and_reuses_the_connection() -> None:
    async with serving(replying(answer(b'{"n":1}', status=b"201 Created"))) as server:
        transport = WireTransport(max_connections=4)
        for _ in range(3):
            response = await send(transport, "POST", server.url + "/v1/things?x=1", content=b'{"a":1}')
            assert (response.status_code, response.json(), response.reason_phrase) == (201, {"n": 1}, "Created")
            assert response.headers["content-type"] == "application/json"
        await transport.aclose()
    assert server.connections == 1 and transport.connections_made == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v1/things?x=1 HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:" in first and b"\r\nAuthorization: Bearer t\r\n" in first
    assert b"\r\nContent-Length: 7\r\n" in first and first.endswith(b'\r\n\r\n{"a":1}')


async def test_chunked_gzip_and_interim_answers_are_read_whole() -> None:
    packed = gzip.compress(b'{"items":[1,2,3]}')
    chunked = (b"HTTP/1.1 100 Continue\r\n\r\n"
               b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
               + b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (packed[:5], packed[5:]))
               + b"0\r\n\r\n")
    async with serving(replying(chunked[:30], chunked[30:])) as server:
        transport = WireTransport()
        for _ in range(2):
            response = await send(transport, "GET", server.url + "/list")
            assert (response.status_code, response.json()) == (200, {"items": [1, 2, 3]})
        await transport.aclose()
    assert server.connections == 1


async def test_a_body_ended_by_the_connection_is_complete_and_the_connection_not_reused() -> None:
    unframed = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b'{"all":"here"}'
    async with serving(replying(unframed, keep_open=False)) as server:
        transport = WireTransport()
        for _ in range(2):
            assert (await send(transport, "GET", server.url + "/")).json() == {"all": "here"}
        await transport.aclose()
    assert server.connections == 2


async def test_connection_close_answer_is_not_reused() -> None:
    async with serving(replying(answer(extra=b"Connection: close\r\n"), keep_open=False)) as server:
        transport = WireTransport()
        for _ in range(3):
            assert (await send(transport, "GET", server.url + "/")).status_code == 200
        await transport.aclose()
    assert server.connections == 3


async def test_a_dropped_connection_after_the_request_is_an_unknown_outcome_error() -> None:
    async with serving(replying(keep_open=False)) as server:  # reads the request, closes, no answer
        transport = WireTransport()
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await send(transport, "POST", server.url + "/create", content=b"{}")
        assert not isinstance(caught.value, NOT_SENT) and caught.value.request.url.path == "/create"
        await transport.aclose()


async def test_a_half_answer_then_close_is_a_protocol_error() -> None:
    async with serving(replying(answer(b'{"long":"body"}')[:-5], keep_open=False)) as server:
        transport = WireTransport()
        with pytest.raises(httpx.RemoteProtocolError, match="middle of its answer"):
            await send(transport, "GET", server.url + "/")
        await transport.aclose()


async def test_garbage_is_a_protocol_error_and_the_connection_is_dropped() -> None:
    async with serving(replying(b"SMTP ready\r\n\r\n")) as server:
        transport = WireTransport()
        with pytest.raises(httpx.RemoteProtocolError, match="malformed"):
            await send(transport, "GET", server.url + "/")
        assert not transport._open  # noqa: SLF001
        await transport.aclose()


async def test_silence_is_a_read_timeout_and_the_connection_is_not_reused() -> None:
    async def silent(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        if n == 1:
            await asyncio.sleep(1.0)  # too late: the client gave up at 0.2 s
        writer.write(answer(b'{"n":%d}' % n))
        return True

    async with serving(silent) as server:
        transport = WireTransport()
        with pytest.raises(httpx.ReadTimeout):
            await send(transport, "POST", server.url + "/slow", content=b"{}", timeout=0.2)
        # the next request gets a fresh connection, never the late answer of the first one
        assert (await send(transport, "GET", server.url + "/")).json() == {"n": 2}
        await transport.aclose()
    assert server.connections == 2


async def test_nothing_listening_is_a_connect_error_which_means_not_sent() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    transport = WireTransport()
    with pytest.raises(httpx.ConnectError) as caught:
        await send(transport, "POST", f"http://127.0.0.1:{port}/create", content=b"{}")
    assert isinstance(caught.value, NOT_SENT) and "127.0.0.1" in str(caught.value)
    with pytest.raises(httpx.UnsupportedProtocol):
        await send(transport, "GET", "ftp://127.0.0.1/x")
    await transport.aclose()


async def test_a_connection_the_server_closed_while_idle_is_not_used() -> None:
    async def once_then_close(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b'{"n":%d}' % n))  # keep-alive answer, then the server closes anyway
        await writer.drain()
        return False

    async with serving(once_then_close) as server:
        transport = WireTransport()
        assert (await send(transport, "GET", server.url + "/")).json() == {"n": 1}
        for _ in range(500):  # until the close has reached the client, the connection idle
            if all(c.closed for c in transport._open):  # noqa: SLF001
                break
            await asyncio.sleep(0.01)
        assert (await send(transport, "POST", server.url + "/", content=b"{}")).json() == {"n": 2}
        await transport.aclose()
    assert server.connections == 2


async def test_idle_connections_expire_and_the_pool_limit_holds() -> None:
    async def slow(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.05)
        writer.write(answer())
        return True

    async with serving(slow) as server:
        transport = WireTransport(max_connections=3, keepalive_expiry=0.3)
        await asyncio.gather(*(send(transport, "GET", server.url + "/") for _ in range(12)))
        assert transport.connections_made == 3  # never more than three at once, each reused
        await asyncio.sleep(0.45)
        await send(transport, "GET", server.url + "/")  # the idle ones expired: a fresh one
        assert transport.connections_made == 4
        busy = WireTransport(max_connections=1)
        first = asyncio.ensure_future(send(busy, "GET", server.url + "/"))
        await asyncio.sleep(0.01)
        request = httpx.Request("GET", server.url + "/", extensions={"timeout": {"pool": 0.01, "read": 5.0}})
        with pytest.raises(httpx.PoolTimeout):
            await busy.handle_async_request(request)
        assert (await first).status_code == 200
        await busy.aclose()
        await transport.aclose()


async def test_a_cancelled_request_frees_its_slot_and_drops_its_connection() -> None:
    async def slow(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.3 if n == 1 else 0)
        writer.write(answer(b'{"n":%d}' % n))
        return True

    async with serving(slow) as server:
        transport = WireTransport(max_connections=1)
        task = asyncio.ensure_future(send(transport, "GET", server.url + "/"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await send(transport, "GET", server.url + "/")).json() == {"n": 2}
        await transport.aclose()


def test_works_under_uvloop_too() -> None:
    # uvloop's transports are not asyncio.Transport subclasses; the protocol must not care.
    uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed (it is optional on some platforms)")

    async def exchange() -> tuple[int, dict[str, int], int]:
        async with serving(replying(answer(b'{"n":1}'))) as server:
            transport = WireTransport()
            first = await send(transport, "GET", server.url + "/")
            second = await send(transport, "POST", server.url + "/", content=b"{}")
            await transport.aclose()
            return first.status_code, second.json(), server.connections

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(exchange()) == (200, {"n": 1}, 1)


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[Server, str, ssl.SSLContext, Path]]:
    """A TLS server whose certificate comes from a throwaway authority: the server, its URL, a
    client context trusting that authority, and the authority's certificate as a PEM file."""
    import trustme

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    server = Server(replying(answer(b'{"tls":true}')))
    tcp = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=server_context)
    try:
        yield server, f"https://127.0.0.1:{tcp.sockets[0].getsockname()[1]}", trusting, pem
    finally:
        tcp.close()


async def test_https_speaks_tls_and_checks_the_certificate(tls_server: Any) -> None:
    server, url, trusting, _ = tls_server
    transport = WireTransport(verify=trusting)
    for _ in range(2):
        assert (await send(transport, "POST", url + "/x", content=b"{}")).json() == {"tls": True}
    await transport.aclose()
    assert server.connections == 1 and server.requests[0].startswith(b"POST /x HTTP/1.1\r\n")
    # The usual authorities do not know this one: refused before anything is sent.
    untrusting = WireTransport()
    with pytest.raises(CertificateRefused, match=r"TLS with 127\.0\.0\.1:\d+ failed \(its certificate was refused: ") as caught:
        await send(untrusting, "POST", url + "/x", content=b"{}")
    assert isinstance(caught.value, NOT_SENT) and len(server.requests) == 2
    await untrusting.aclose()


async def test_a_refused_certificate_is_not_retried_and_says_what_to_do(
        tls_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server, url, _, pem = tls_server
    target = Target(name="tls", gateway_url=url + "/apigw", fallback_url=None, business_id="b" * 16,
                    staff_token=Secret("t" * 20))
    sleep = SleepRecorder()
    async with VcitaClient(target, transport=WireTransport(), sleep=sleep) as api:
        with pytest.raises(UnavailableError, match="certificate was refused") as caught:
            await api.create_client_package({"client_id": "c", "package_id": "p"})
    assert sleep.waits == [] and "SSL_CERT_FILE" in (caught.value.hint or "") and server.requests == []
    # ... and the hint is true: with SSL_CERT_FILE naming the authority, the same call goes through.
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    async with VcitaClient(target, transport=WireTransport(), sleep=sleep) as api:
        with pytest.raises(ProtocolError):  # our scripted server is not vcita: but it was reached
            await api.list_services()
    assert len(server.requests) == 1 and server.requests[0].startswith(b"GET /apigw/")


async def test_an_answer_too_large_to_hold_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.remote import wire

    monkeypatch.setattr(wire, "MAX_BODY", 1000)
    big = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"200\r\n" + b"x" * 512 + b"\r\n"
    async with serving(replying(big, big[-519:], big[-519:], b"0\r\n\r\n")) as server:
        transport = WireTransport()
        with pytest.raises(httpx.RemoteProtocolError, match="larger than"):
            await send(transport, "GET", server.url + "/")
        assert not transport._open  # noqa: SLF001 - the connection was dropped, not reused
        await transport.aclose()


@pytest.mark.parametrize("value", ["b\r\nX-Injected: 1", "b\rc", "b\nc", "b\x00c"])
async def test_a_header_that_would_split_the_request_is_never_sent(value: str) -> None:
    async with serving(replying(answer())) as server:
        transport = WireTransport()
        request = httpx.Request("POST", server.url + "/", content=b"{}", headers={"X-Token": value})
        with pytest.raises(httpx.LocalProtocolError, match="nothing was sent") as caught:
            await transport.handle_async_request(request)
        assert isinstance(caught.value, NOT_SENT) and value not in str(caught.value)
        assert (await send(transport, "GET", server.url + "/")).status_code == 200  # its slot was given back
        await transport.aclose()
    assert len(server.requests) == 1

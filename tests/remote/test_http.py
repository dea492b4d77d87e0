"""The client's HTTP stack (aiohttp behind the transport seam) against raw servers on loopback.

Each server is a real asyncio TCP server that reads request heads and answers with the bytes a
test scripted (``tests/support/raw_server.py``): chunked and unframed bodies, interim answers,
compressed bodies and bombs, dropped connections, silence, garbage, answers out of step with
requests.  What the stack must get right is what the dispatcher relies on: complete answers,
keep-alive reuse only when it is safe, bounded memory, and the httpx exception that tells
"never sent" from "sent, answer unknown".
"""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
import zlib
from typing import Any

import httpx
import pytest
from raw_server import answer, replying
from raw_server import raw_server as serving
from remote_support import SleepRecorder, fast_settings

from reconciler.core.errors import OutcomeUnknownError, UnavailableError
from reconciler.remote import Secret, Target, VcitaClient
from reconciler.remote.http import HttpTransport
from reconciler.remote.retry import NOT_SENT, AnswerTooLarge, OutOfStep

pytestmark = pytest.mark.anyio


async def send(transport: HttpTransport, method: str, url: str, *, content: bytes | None = None,
               timeout: float = 5.0,  # noqa: ASYNC109 - the request's timeout extension, as httpx has it
               headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request(method, url, content=content, headers={"Authorization": "Bearer t", **(headers or {})},
                            extensions={"timeout": httpx.Timeout(timeout).as_dict()})
    response = await transport.handle_async_request(request)
    await response.aread()
    return response


def bomb(decoded: int, encoding: str = "gzip") -> bytes:
    """``decoded`` zero bytes, compressed (gzip, deflate or br) in one-MiB steps."""
    if encoding == "br":
        import brotli

        return bytes(brotli.compress(b"\0" * decoded, quality=5))
    packer = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    block = b"\0" * (1 << 20)
    parts = [packer.compress(block) for _ in range(decoded >> 20)]
    return b"".join(parts) + packer.flush()


# -- ordinary answers ---------------------------------------------------------------------------

async def test_sends_the_request_as_given_and_creates_never_share_a_connection_with_reads() -> None:
    async with serving(replying(answer(b'{"n":1}', status=b"201 Created"))) as server:
        transport = HttpTransport(max_connections=4, create_quiet=0.0)  # see test_create_connections.py
        for method in ("POST", "PUT", "GET", "PUT", "POST"):
            response = await send(transport, method, server.url + "/v1/things?x=1", content=b'{"a":1}')
            assert (response.status_code, response.json(), response.reason_phrase) == (201, {"n": 1}, "Created")
            assert response.headers["content-type"] == "application/json"
        await transport.aclose()
    # the PUTs and the GET share one kept-alive connection; the POSTs (creates) one of their own
    assert server.connections == 2 and transport.connections_made == 2
    assert [r.split(b" ")[0] for r in server.requests] == [b"POST", b"PUT", b"GET", b"PUT", b"POST"]
    first = server.requests[0]
    assert first.startswith(b"POST /v1/things?x=1 HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:" in first and b"\r\nAuthorization: Bearer t\r\n" in first
    assert b"\r\nContent-Length: 7\r\n" in first and first.endswith(b'\r\n\r\n{"a":1}')
    assert b"\r\nAccept-Encoding: gzip, deflate" in first


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
async def test_chunked_compressed_and_interim_answers_are_read_whole(encoding: str) -> None:
    packed = _compress(b'{"items":[1,2,3]}', encoding)
    chunked = (b"HTTP/1.1 100 Continue\r\n\r\n"
               b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: " + encoding.encode() + b"\r\n\r\n"
               + b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (packed[:5], packed[5:]))
               + b"0\r\n\r\n")
    async with serving(replying(chunked[:30], chunked[30:])) as server:
        transport = HttpTransport()
        for _ in range(2):
            response = await send(transport, "GET", server.url + "/list")
            assert (response.status_code, response.json()) == (200, {"items": [1, 2, 3]})
            assert "content-encoding" not in response.headers  # decoded here, not again by httpx
        await transport.aclose()
    assert server.connections == 1


def _compress(data: bytes, encoding: str) -> bytes:
    if encoding == "br":
        import brotli

        return bytes(brotli.compress(data))
    if encoding == "gzip":
        return gzip.compress(data)
    return zlib.compress(data)


async def test_a_body_ended_by_the_connection_is_complete_and_the_connection_not_reused() -> None:
    unframed = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b'{"all":"here"}'
    async with serving(replying(unframed, keep_open=False)) as server:
        transport = HttpTransport()
        for _ in range(2):
            assert (await send(transport, "GET", server.url + "/")).json() == {"all": "here"}
        await transport.aclose()
    assert server.connections == 2


async def test_connection_close_answer_is_not_reused() -> None:
    async with serving(replying(answer(extra=b"Connection: close\r\n"), keep_open=False)) as server:
        transport = HttpTransport()
        for _ in range(3):
            assert (await send(transport, "GET", server.url + "/")).status_code == 200
        await transport.aclose()
    assert server.connections == 3


# -- answers missing, broken or late -------------------------------------------------------------

async def test_a_dropped_connection_after_the_request_is_an_unknown_outcome_error() -> None:
    async with serving(replying(keep_open=False)) as server:  # reads the request, closes, no answer
        transport = HttpTransport()
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await send(transport, "POST", server.url + "/create", content=b"{}")
        assert not isinstance(caught.value, NOT_SENT) and caught.value.request.url.path == "/create"
        await transport.aclose()
    assert len(server.requests) == 1  # aiohttp does not repeat a POST on its own


async def test_a_half_answer_then_close_is_a_protocol_error() -> None:
    async with serving(replying(answer(b'{"long":"body"}')[:-5], keep_open=False)) as server:
        transport = HttpTransport()
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await send(transport, "GET", server.url + "/")
        assert not isinstance(caught.value, NOT_SENT)
        await transport.aclose()


async def test_garbage_is_a_protocol_error_shown_escaped_and_the_connection_is_dropped() -> None:
    async def garbage(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"SMTP \x1b[31mready\x07\r\n\r\n" if n == 1 else answer(b'{"n":2}'))
        return True

    async with serving(garbage) as server:
        transport = HttpTransport()
        with pytest.raises(httpx.RemoteProtocolError, match="malformed") as caught:
            await send(transport, "GET", server.url + "/")
        assert "\x1b" not in str(caught.value) and "\x07" not in str(caught.value)
        assert (await send(transport, "GET", server.url + "/")).json() == {"n": 2}
        await transport.aclose()
    assert server.connections == 2


async def test_silence_is_a_read_timeout_and_the_connection_is_not_reused() -> None:
    async def silent(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        if n == 1:
            await asyncio.sleep(1.0)  # too late: the client gave up at 0.2 s
        writer.write(answer(b'{"n":%d}' % n))
        return True

    async with serving(silent) as server:
        transport = HttpTransport()
        with pytest.raises(httpx.ReadTimeout) as caught:
            await send(transport, "POST", server.url + "/slow", content=b"{}", timeout=0.2)
        assert not isinstance(caught.value, NOT_SENT)
        # the next request gets a fresh connection, never the late answer of the first one
        assert (await send(transport, "GET", server.url + "/")).json() == {"n": 2}
        await transport.aclose()
    assert server.connections == 2


async def test_a_trickle_of_bytes_does_not_hold_the_request_past_its_timeout() -> None:
    async def trickle(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):  # one byte every 50 ms: each read is quick, the answer never ends in time
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.05)
        return False

    async with serving(trickle) as server:
        transport = HttpTransport()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(httpx.ReadTimeout):
            await send(transport, "GET", server.url + "/", timeout=0.3)
        assert loop.time() - started < 2.0  # connect + read = 0.6 s, with room for a loaded machine
        await transport.aclose()


async def test_nothing_listening_is_a_connect_error_which_means_not_sent() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    transport = HttpTransport()
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
        transport = HttpTransport()
        assert (await send(transport, "GET", server.url + "/")).json() == {"n": 1}
        await asyncio.sleep(0.2)  # the close reaches the client while the connection is idle
        assert (await send(transport, "POST", server.url + "/", content=b"{}")).json() == {"n": 2}
        await transport.aclose()
    assert server.connections == 2


# -- answers out of step with requests (issue 12) -----------------------------------------------

async def test_two_answers_in_one_segment_refuse_the_answer_and_the_connection() -> None:
    async def doubled(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        if n == 1:  # a 201 and, in the same segment, a 429 nobody asked for
            writer.write(answer(b'{"id":"made"}', status=b"201 Created")
                         + answer(b'{"error":"slow down"}', status=b"429 Too Many Requests"))
        else:
            writer.write(answer(b'{"n":%d}' % n))
        return True

    async with serving(doubled) as server:
        transport = HttpTransport()
        with pytest.raises(OutOfStep) as caught:
            await send(transport, "POST", server.url + "/create", content=b"{}")
        assert isinstance(caught.value, httpx.RemoteProtocolError) and not isinstance(caught.value, NOT_SENT)
        # the 429 is never read as the answer of what comes next
        assert (await send(transport, "GET", server.url + "/")).json() == {"n": 2}
        await transport.aclose()
    assert server.connections == 2


async def test_an_unsolicited_answer_on_an_idle_connection_is_never_paired_with_a_request() -> None:
    async def late(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b'{"n":%d}' % n))
        await writer.drain()
        if n == 1:  # 50 ms later, on the idle kept-alive connection: a forged "created"
            await asyncio.sleep(0.05)
            writer.write(answer(b'{"forged":true}', status=b"201 Created"))
        return True

    async with serving(late) as server:
        transport = HttpTransport()
        assert (await send(transport, "GET", server.url + "/")).json() == {"n": 1}
        await asyncio.sleep(0.2)
        second = await send(transport, "POST", server.url + "/create", content=b"{}")
        assert (second.status_code, second.json()) == (200, {"n": 2})
        await transport.aclose()
    assert server.connections == 2


async def test_a_stray_answer_that_arrives_after_the_next_request_left_never_reaches_a_create() -> None:
    # Nothing in HTTP/1.1 tells a stray answer that arrives once the next request was written from
    # that request's own answer: so a create never shares a connection with an earlier exchange.
    async def stray_later(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        if request.startswith(b"GET "):
            writer.write(answer(b'{"listed":true}'))
            await writer.drain()
            await asyncio.sleep(0.1)  # the create is written meanwhile; then a 429 nobody asked for
            writer.write(answer(b'{"error":"slow down"}', status=b"429 Too Many Requests"))
        else:
            writer.write(answer(b'{"id":"made"}', status=b"201 Created"))
        await writer.drain()
        return True

    async with serving(stray_later) as server:
        transport = HttpTransport()
        assert (await send(transport, "GET", server.url + "/")).json() == {"listed": True}
        created = await send(transport, "POST", server.url + "/create", content=b"{}")
        assert (created.status_code, created.json()) == (201, {"id": "made"})
        await transport.aclose()
    assert server.connections == 2


async def test_a_create_answered_twice_in_one_segment_is_an_unknown_outcome_sent_once() -> None:
    async def doubled(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        body = (b'{"success":true,"data":{"client_package":{"id":"cp1"}}}')
        writer.write(answer(body, status=b"201 Created")
                     + answer(b'{"success":false,"errors":[]}', status=b"429 Too Many Requests"))
        return True

    async with serving(doubled) as server:
        target = Target(name="t", gateway_url=server.url + "/apigw", fallback_url=None, business_id="b" * 16,
                        staff_token=Secret("s" * 24))
        sleep = SleepRecorder()
        async with VcitaClient(target, settings=fast_settings(), sleep=sleep) as api:
            with pytest.raises(OutcomeUnknownError):
                await api.create_client_package({"client_id": "c", "package_id": "p"})
    assert len(server.requests) == 1 and sleep.waits == []


# -- bounds -------------------------------------------------------------------------------------

async def test_an_answer_too_large_to_hold_is_refused() -> None:
    big = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"200\r\n" + b"x" * 512 + b"\r\n"
    async with serving(replying(big, big[-519:], big[-519:], b"0\r\n\r\n")) as server:
        transport = HttpTransport(max_body=1000)
        with pytest.raises(AnswerTooLarge, match="larger than"):
            await send(transport, "GET", server.url + "/")
        announced = answer(b"x" * 2000)
        transport2 = HttpTransport(max_body=1000)
        async with serving(replying(announced)) as server2:
            with pytest.raises(AnswerTooLarge, match="announces 2000 bytes"):
                await send(transport2, "GET", server2.url + "/")
        await transport.aclose()
        await transport2.aclose()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
async def test_a_compression_bomb_is_stopped_at_the_decoded_limit_in_bounded_memory(encoding: str) -> None:
    packed = bomb(256 << 20, encoding)  # 256 MiB of zeros in a few hundred KiB
    head = (b"HTTP/1.1 200 OK\r\nContent-Encoding: " + encoding.encode()
            + b"\r\nContent-Length: " + str(len(packed)).encode() + b"\r\n\r\n")
    async with serving(replying(head, packed)) as server:
        transport = HttpTransport(max_body=4 << 20)
        tracemalloc.start()
        try:
            with pytest.raises(AnswerTooLarge, match="after decoding"):
                await send(transport, "GET", server.url + "/")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        await transport.aclose()
    assert peak < 32 << 20, f"decoding held {peak >> 20} MiB"


async def test_endless_header_lines_and_an_endless_header_value_are_refused_quickly() -> None:
    async def endless(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\n")
        try:
            for i in range(200_000):
                writer.write(b"X-Pad-%d: %s\r\n" % (i, b"v" * 40) if n == 1 else b"a" * 4096)
                if n == 2 and i == 0:
                    writer.write(b"X-Big: ")
                await writer.drain()
        except ConnectionError:
            pass
        return False

    async with serving(endless) as server:
        transport = HttpTransport()
        for _ in range(2):  # endless header lines, then one endless header value
            tracemalloc.start()
            try:
                with pytest.raises(httpx.RemoteProtocolError, match="malformed") as caught:
                    await send(transport, "GET", server.url + "/")
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert not isinstance(caught.value, NOT_SENT) and peak < 16 << 20
        await transport.aclose()


@pytest.mark.parametrize("value", ["b\r\nX-Injected: 1", "b\rc", "b\nc", "b\x00c"])
async def test_a_header_that_would_split_the_request_is_never_sent(value: str) -> None:
    async with serving(replying(answer())) as server:
        transport = HttpTransport()
        request = httpx.Request("POST", server.url + "/", content=b"{}", headers={"X-Token": value})
        with pytest.raises(httpx.LocalProtocolError, match="nothing was sent") as caught:
            await transport.handle_async_request(request)
        assert isinstance(caught.value, NOT_SENT) and value not in str(caught.value)
        assert (await send(transport, "GET", server.url + "/")).status_code == 200
        await transport.aclose()
    assert len(server.requests) == 1


# -- the pool -----------------------------------------------------------------------------------

async def test_idle_connections_expire_and_the_pool_limit_holds() -> None:
    open_now, most = 0, 0

    async def slow(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        await asyncio.sleep(0.05)
        open_now -= 1
        writer.write(answer())
        return True

    async with serving(slow) as server:
        transport = HttpTransport(max_connections=3, keepalive_expiry=0.3)
        await asyncio.gather(*(send(transport, "GET", server.url + "/") for _ in range(12)))
        assert server.connections == 3 and most == 3  # never more than three at once, each reused
        await asyncio.sleep(1.2)  # aiohttp closes expired idle connections on a timer
        await send(transport, "GET", server.url + "/")
        assert server.connections == 4
        busy = HttpTransport(max_connections=1)
        first = asyncio.ensure_future(send(busy, "GET", server.url + "/"))
        await asyncio.sleep(0.01)
        request = httpx.Request("GET", server.url + "/",
                                extensions={"timeout": {"pool": 0.01, "connect": 0.01, "read": 5.0}})
        with pytest.raises(httpx.ConnectTimeout) as caught:  # no free connection: not sent
            await busy.handle_async_request(request)
        assert isinstance(caught.value, NOT_SENT)
        assert (await first).status_code == 200
        await busy.aclose()
        await transport.aclose()


async def test_a_cancelled_request_frees_its_slot_and_drops_its_connection() -> None:
    async def slow(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.3 if n == 1 else 0)
        writer.write(answer(b'{"n":%d}' % n))
        return True

    async with serving(slow) as server:
        transport = HttpTransport(max_connections=1)
        task = asyncio.ensure_future(send(transport, "GET", server.url + "/"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await send(transport, "GET", server.url + "/")).json() == {"n": 2}
        await transport.aclose()


def test_works_under_uvloop_too() -> None:
    uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed (it is optional on some platforms)")

    async def exchange() -> tuple[int, Any, int]:
        async with serving(replying(answer(b'{"n":1}'))) as server:
            transport = HttpTransport()
            first = await send(transport, "GET", server.url + "/")
            second = await send(transport, "PUT", server.url + "/", content=b"{}")
            await transport.aclose()
            return first.status_code, second.json(), server.connections

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(exchange()) == (200, {"n": 1}, 1)


async def test_the_clients_own_path_never_sends_a_header_that_would_split_the_request() -> None:
    # The dispatcher sends through HttpTransport.exchange, not the httpx seam above: the same
    # refusal must hold there (a token file with a line break must not inject a header).
    async with serving(replying(answer())) as server:
        target = Target(name="raw", gateway_url=server.url + "/apigw", fallback_url=None, business_id="b" * 16,
                        staff_token=Secret("t" * 24 + "\r\nX-Injected: 1"))
        async with VcitaClient(target, settings=fast_settings(), sleep=SleepRecorder()) as api:
            assert api.dispatcher._exchange is not None  # the transport's own exchange is the path taken
            with pytest.raises(UnavailableError, match="no answer after") as caught:
                await api.create_client_package({"client_id": "c1", "package_id": "p1"})
    assert "X-Injected" not in str(caught.value) and "t" * 24 not in str(caught.value)
    assert server.requests == []  # nothing left, not even the first attempt

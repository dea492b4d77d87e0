"""A request's body leaves with its head, in the same step of the event loop (``remote/inline.py``).

On Python 3.11 aiohttp writes a body in a task that starts at the loop's next turn; the client's
sessions use :data:`reconciler.remote.inline.REQUEST_CLASS`, which writes it at once, as aiohttp
does on 3.12+.  Checked here: the mechanism (:func:`stepped`: results, failures, suspensions,
cancellations as if the coroutine were awaited directly), that the body has been handed to the
connection by the time aiohttp's ``send`` returns, and bodies large enough to suspend the write.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from typing import Any

import aiohttp
import httpx
import pytest
from raw_server import answer
from raw_server import raw_server as serving

from reconciler.remote import inline
from reconciler.remote.http import HttpTransport
from reconciler.remote.inline import REQUEST_CLASS, stepped

pytestmark = pytest.mark.anyio


# -- the mechanism -------------------------------------------------------------------------------

async def test_a_coroutine_that_never_suspends_is_run_to_its_end_at_once() -> None:
    done: list[str] = []

    async def write() -> int:
        done.append("written")
        return 7

    rest = stepped(write())
    assert done == ["written"]  # before anything awaited the rest
    assert await rest == 7


async def test_a_failure_in_the_first_step_is_raised_where_it_is_awaited() -> None:
    async def write() -> None:
        raise ConnectionResetError("gone")

    rest = stepped(write())
    with pytest.raises(ConnectionResetError, match="gone"):
        await rest


async def test_an_interrupt_in_the_first_step_is_not_held_back() -> None:
    async def write() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stepped(write())


async def test_a_coroutine_that_suspends_is_finished_by_whoever_awaits_the_rest() -> None:
    steps: list[Any] = []
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def write() -> str:
        steps.append("first")
        steps.append(await gate)  # suspends here, in the first step
        await asyncio.sleep(0)
        steps.append("after")
        return "end"

    rest = asyncio.ensure_future(stepped(write()))
    assert steps == ["first"]
    await asyncio.sleep(0.01)
    assert steps == ["first"] and not rest.done()
    gate.set_result("opened")
    assert await rest == "end"
    assert steps == ["first", "opened", "after"]


async def test_a_failed_wait_and_a_cancellation_reach_the_coroutine_inside() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def write() -> None:
        try:
            await gate
        except OSError as e:
            seen.append(f"caught {e}")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            seen.append("cleaned up")

    rest = asyncio.ensure_future(stepped(write()))
    gate.set_exception(OSError("broken pipe"))
    await asyncio.sleep(0.01)
    assert seen == ["caught broken pipe"]
    rest.cancel()
    with pytest.raises(asyncio.CancelledError):
        await rest
    assert seen == ["caught broken pipe", "cancelled", "cleaned up"]


async def test_closing_the_rest_unawaited_closes_the_coroutine_inside() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def write() -> None:
        try:
            await gate
        finally:
            seen.append("closed")

    rest = stepped(write())
    rest.send(None)  # as a task's first step would: reaches the suspension inside
    rest.close()
    assert seen == ["closed"]


# -- aiohttp -------------------------------------------------------------------------------------

async def _body_sent_before_send_returned(request_class: type[aiohttp.ClientRequest]) -> bool:
    """Whether aiohttp had written the request's body when its ``send`` returned (when the answer
    object is made, before the first await for the answer)."""
    events: list[str] = []

    async def chunk_sent(*_: Any) -> None:
        events.append("body written")

    class Noting(aiohttp.ClientResponse):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            events.append("send returned")
            super().__init__(*args, **kwargs)

    trace = aiohttp.TraceConfig()
    trace.on_request_chunk_sent.append(chunk_sent)
    async with serving(lambda n, request, writer: _reply(writer, request)) as server:
        async with aiohttp.ClientSession(request_class=request_class, response_class=Noting,
                                         trace_configs=[trace]) as session:
            async with session.post(server.url + "/", data=b'{"client_id":"c1"}') as response:
                assert await response.read() == hashlib.sha256(b'{"client_id":"c1"}').hexdigest().encode()
    assert sorted(events) == ["body written", "send returned"], events
    return events.index("body written") < events.index("send returned")


async def _reply(writer: asyncio.StreamWriter, request: bytes) -> bool:
    body = request.partition(b"\r\n\r\n")[2]
    writer.write(answer(hashlib.sha256(body).hexdigest().encode()))
    return True


async def test_the_clients_requests_have_their_body_written_before_aiohttp_returns_from_send() -> None:
    assert await _body_sent_before_send_returned(REQUEST_CLASS)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="from Python 3.12 aiohttp itself writes the body at once")
async def test_plain_aiohttp_on_311_writes_the_body_a_turn_later_and_the_client_does_not_use_it() -> None:
    # the control: what the test above would see without inline.py
    assert not await _body_sent_before_send_returned(aiohttp.ClientRequest)
    assert REQUEST_CLASS is inline.InlineBodyRequest


@pytest.mark.parametrize("size", [0, 300, 900 << 10])
async def test_bodies_of_every_size_arrive_whole_through_the_clients_transport(size: int) -> None:
    # 900 KiB is more than the transport buffers (64 KiB): the write suspends, aiohttp's task finishes it
    # (aiohttp warns about bytes bodies over 1 MiB)
    body = bytes(range(256)) * (size // 256)
    async with serving(lambda n, request, writer: _reply(writer, request)) as server:
        transport = HttpTransport(create_quiet=0.0)
        for method in ("POST", "PUT"):
            answered = await transport.exchange(method, server.url + "/v1/x", {"Content-Type": "application/json"},
                                                body, httpx.Timeout(10.0).as_dict())
            assert answered.status_code == 200
            assert answered.content == hashlib.sha256(body).hexdigest().encode()
        await transport.aclose()
    assert len(server.requests) == 2


async def test_a_body_that_waits_for_100_continue_is_sent_after_it_and_arrives_whole() -> None:
    # The write suspends in its first step (it waits for the server's "100 Continue"): the rest
    # is finished by aiohttp's task once the interim answer came.
    steps: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await asyncio.sleep(0.05)
        steps.append("nothing of the body before 100" if not reader._buffer else "body came early")  # type: ignore[attr-defined]
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await reader.readexactly(length)
        writer.write(answer(hashlib.sha256(body).hexdigest().encode()))
        await writer.drain()
        writer.close()

    tcp = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    body = b"x" * 5000
    transport = HttpTransport()
    try:
        answered = await transport.exchange("PUT", f"http://127.0.0.1:{port}/v1/x", {"Expect": "100-continue"},
                                            body, httpx.Timeout(10.0).as_dict())
    finally:
        await transport.aclose()
        tcp.close()
    assert steps == ["nothing of the body before 100"]
    assert (answered.status_code, answered.content) == (200, hashlib.sha256(body).hexdigest().encode())

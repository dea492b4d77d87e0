"""The connection policy of creates, against a misbehaving server on loopback.

A create (POST) bills a client: an answer that is not its own must never make it look refused
(it would be sent again while vcita executed the first).  Creates have a pool of their own and
reuse a kept-alive connection only once it has been quiet for ``create_quiet`` and while it has
been idle for less than ``create_idle_limit`` (``reconciler/remote/http.py``).  Each test scripts
a server (``tests/support/raw_server.py``) that attacks one part of that: answers nobody asked
for on an idle connection (delivered, or still waiting in the kernel), a late 429 meant to meet
the next create, a close at the very moment a create arrives on a reused connection.  Each
asserts how many creates the server received: never one more than the client sent on purpose.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import deque

import pytest
from raw_server import RawServer, answer, raw_server, threaded_raw_server
from remote_support import SleepRecorder, fast_settings

from reconciler.core.errors import OutcomeUnknownError
from reconciler.remote import Secret, Target, VcitaClient
from reconciler.remote.dispatch import GuardedTransport
from reconciler.remote.http import CREATE_IDLE_LIMIT, CREATE_QUIET, HttpTransport
from reconciler.remote.instep import InStepConnector, InStepHandler

pytestmark = pytest.mark.anyio

QUIET, LIMIT = 0.05, 1.0  # a shorter quiet period than the default, for quick tests; the same rules
BODY = {"client_id": "c1", "package_id": "p1"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def created(n: int) -> bytes:
    cp = {"id": f"cp{n:014d}", "client_id": "c1", "package_id": "p1", "name": "Ten lessons", "amount": "540",
          "currency": "USD", "valid_from": "2026-01-01", "valid_until": "2026-12-31", "active": "true",
          "booking_credits": []}
    return answer(json.dumps({"status": "OK", "data": {"client_package": cp}}).encode(), status=b"201 Created")


STRAY = {
    408: answer(b'{"status":"Error","error":"request timeout"}', status=b"408 Request Timeout",
                extra=b"Connection: close\r\n"),
    429: answer(b'{"status":"Error","error":"slow down"}', status=b"429 Too Many Requests",
                extra=b"Retry-After: 0\r\n"),
}


def client(server: RawServer, transport: HttpTransport, sleep: SleepRecorder) -> VcitaClient:
    target = Target(name="raw", gateway_url=server.url + "/apigw", fallback_url=None, business_id="b" * 16,
                    staff_token=Secret("t" * 24))
    return VcitaClient(target, settings=fast_settings(), transport=GuardedTransport(transport), sleep=sleep)


def posts(server: RawServer) -> int:
    return sum(1 for r in server.requests if r.startswith(b"POST "))


def test_the_limits_are_named_and_far_below_server_idle_timeouts() -> None:
    # nginx closes idle keep-alive connections after 75 s, Node.js after 5 s, an AWS ALB after 60 s
    assert 0 < CREATE_QUIET < CREATE_IDLE_LIMIT <= 1.0


async def test_a_create_reuses_only_a_connection_quiet_long_enough_and_idle_for_less_than_the_limit() -> None:
    async def honest(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        listed = answer(b'{"status":"OK","data":{"services":[]}}')
        writer.write(listed if request.startswith(b"GET ") else created(n))
        await writer.drain()
        return True

    async with raw_server(honest) as server:
        transport = HttpTransport(create_quiet=QUIET, create_idle_limit=LIMIT)
        async with client(server, transport, SleepRecorder()) as api:
            await api.create_client_package(BODY)
            await api.create_client_package(BODY)  # at once: the first connection is not quiet yet
            assert server.connections == 2
            await asyncio.sleep(QUIET * 2)
            await api.create_client_package(BODY)  # quiet, and idle for less than the limit: reused
            assert server.connections == 2
            await asyncio.sleep(LIMIT + 0.3)
            await api.create_client_package(BODY)  # idle longer than the limit: never used again
            assert server.connections == 3
            await api.list_services()  # reads never share a connection with creates
            assert server.connections == 4
    assert posts(server) == 4


@pytest.mark.parametrize("status", sorted(STRAY))
async def test_an_unsolicited_answer_on_an_idle_create_connection_is_never_paired_with_the_next_create(
        status: int) -> None:
    async def stray_after_answer(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(created(n))
        await writer.drain()
        if n == 1:  # a moment later, on the idle kept-alive connection, an answer nobody asked for
            server.later(QUIET / 2, writer, STRAY[status])
        return True

    sleep = SleepRecorder()
    async with raw_server(stray_after_answer) as server:
        transport = HttpTransport(create_quiet=QUIET, create_idle_limit=LIMIT)
        async with client(server, transport, sleep) as api:
            first = await api.create_client_package(BODY)
            await asyncio.sleep(QUIET * 3)  # the stray answer has arrived; the connection is quiet "enough"
            second = await api.create_client_package(BODY)
    assert (first.id, second.id) == ("cp00000000000001", "cp00000000000002")
    assert posts(server) == 2 and sleep.waits == []  # each create sent once, nothing repeated
    assert server.connections == 2  # the connection that received the stray was dropped


@pytest.mark.parametrize("status", sorted(STRAY))
async def test_an_answer_still_waiting_in_the_kernel_keeps_the_connection_from_a_create(status: int) -> None:
    # The server runs in a thread of its own; the client's loop is blocked while the stray answer
    # arrives, so the bytes wait in the socket, undelivered, when the next create looks for a
    # connection: the pool must see them there (without that check they would be its answer).
    def stray_after_answer(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(created(n))
        if n == 1:
            writer.write(b"")
            server.later(0.02, writer, STRAY[status])
        return True

    async def handler(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        keep = stray_after_answer(n, request, writer)
        await writer.drain()
        return keep

    sleep = SleepRecorder()
    with threaded_raw_server(handler) as server:
        transport = HttpTransport(create_quiet=QUIET, create_idle_limit=LIMIT)
        async with client(server, transport, sleep) as api:
            first = await api.create_client_package(BODY)
            time.sleep(0.3)  # noqa: ASYNC251 - blocks this loop on purpose: the stray answer arrives, unread
            second = await api.create_client_package(BODY)
    assert (first.id, second.id) == ("cp00000000000001", "cp00000000000002")
    assert posts(server) == 2 and sleep.waits == []
    assert server.connections == 2


async def test_a_late_429_after_a_create_answer_never_reaches_the_next_create() -> None:
    # A server that answers each create in 30 ms, then sends a 429 10 ms later on its connection:
    # a create sent on that connection meanwhile would read the 429 as its own answer (nothing in
    # HTTP/1.1 tells them apart), look refused, and be sent again.  The connection is not quiet
    # yet: the next create opens another.
    async def late_429(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.03)
        writer.write(created(n))
        await writer.drain()
        server.later(0.01, writer, STRAY[429])
        return True

    sleep = SleepRecorder()
    async with raw_server(late_429) as server:
        transport = HttpTransport()  # the defaults
        async with client(server, transport, sleep) as api:
            made = [await api.create_client_package(BODY) for _ in range(3)]
            await asyncio.sleep(0.05)
    assert [cp.id for cp in made] == ["cp00000000000001", "cp00000000000002", "cp00000000000003"]
    assert posts(server) == 3 and sleep.waits == []


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_a_reused_connection_closed_as_the_create_arrives_is_an_unknown_outcome_never_resent(how: str) -> None:
    async def close_on_second(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        if n == 1:
            writer.write(created(n))
            await writer.drain()
            return True
        if how == "reset":  # the create was read (perhaps executed); the connection is torn down
            writer.transport.abort()
        return False  # closed without an answer

    sleep = SleepRecorder()
    async with raw_server(close_on_second) as server:
        transport = HttpTransport(create_quiet=QUIET, create_idle_limit=LIMIT)
        async with client(server, transport, sleep) as api:
            await api.create_client_package(BODY)
            await asyncio.sleep(QUIET * 2)
            with pytest.raises(OutcomeUnknownError) as caught:
                await api.create_client_package(BODY)
    assert server.connections == 1  # the second create went out on the reused connection
    assert posts(server) == 2 and sleep.waits == []  # and was never sent again
    assert "may or may not have been executed" in caught.value.message


async def test_a_settled_connection_that_died_never_lets_a_young_one_carry_a_create() -> None:
    # The pool holds, oldest first, a connection quiet long enough but closed meanwhile, then one
    # released a moment ago: the create must get neither (a new connection), and the young one
    # must stay pooled, in its place, for when it has been quiet long enough.  And when the oldest
    # is alive and settled, it is the one handed out.
    loop = asyncio.get_running_loop()
    connector = InStepConnector(quiet=QUIET, keepalive_timeout=LIMIT)
    pairs = [socket.socketpair() for _ in range(2)]
    try:
        alive = []
        for ours, _theirs in pairs:
            _, proto = await loop.create_connection(lambda: InStepHandler(loop), sock=ours)
            alive.append(proto)
        dead = InStepHandler(loop)  # never connected: what a closed connection looks like to the pool
        from aiohttp.client_reqrep import ConnectionKey

        key = ConnectionKey("127.0.0.1", 1, False, True, None, None, None)
        now = time.monotonic()
        connector._conns[key] = deque([(dead, now - 2 * QUIET), (alive[0], now)])
        assert await connector._get(key, []) is None
        assert [proto for proto, _ in connector._conns[key]] == [alive[0]]

        connector._conns[key].appendleft((alive[1], now - 2 * QUIET))
        got = await connector._get(key, [])
        assert got is not None and got.protocol is alive[1]
        assert [proto for proto, _ in connector._conns[key]] == [alive[0]]
        got.close()
    finally:
        await connector.close()
        for ours, theirs in pairs:
            ours.close()
            theirs.close()

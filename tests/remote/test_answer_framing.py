"""Answers that arrive out of step with requests, and create answers that cannot be read.

Whatever transport the client uses, an answer is one whole HTTP message paired with the request
it answers.  Bytes beyond the end of that message (a second answer in the same segment, or an
unsolicited one on an idle kept-alive connection) mean the connection is out of step: it is
dropped, and the exchange in flight is *sent and unanswered*, which for a create is an unknown
outcome, never a retry (issue 12: a 201 followed by a 429 in one segment used to come back as
429 with the 201's body, and the create was sent again).

A create answered 2xx whose body cannot be read was executed: it is an unknown outcome too,
carrying the id when the body shows one, never a plain failure that a next run would repeat.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from raw_server import answer, raw_server
from remote_support import SleepRecorder, fast_settings

from reconciler.core.errors import OutcomeUnknownError
from reconciler.remote import Secret, Target, VcitaClient

pytestmark = pytest.mark.anyio

CREATED = {
    "id": "cp000000000000a1", "client_id": "c1", "package_id": "p1", "name": "Ten lessons",
    "amount": "540", "currency": "USD", "valid_from": "2026-01-01", "valid_until": "2026-12-31",
    "active": "true", "booking_credits": [],
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def body(status: str, data: dict[str, object]) -> bytes:
    return json.dumps({"status": status, "data": data}).encode()


def target(url: str) -> Target:
    return Target(name="raw", gateway_url=url + "/apigw", fallback_url=None, business_id="b" * 16,
                  staff_token=Secret("t" * 24))


def posts(requests: list[bytes]) -> int:
    return sum(1 for r in requests if r.startswith(b"POST "))


async def test_two_answers_in_one_segment_are_an_unknown_outcome_never_a_retry() -> None:
    created = answer(body("OK", {"client_package": CREATED}), status=b"201 Created")
    throttled = answer(b'{"status":"Error","error":"slow down"}', status=b"429 Too Many Requests",
                       extra=b"Retry-After: 0\r\n")

    async def both_at_once(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(created + throttled)  # one write: one segment on loopback
        await writer.drain()
        return True

    sleep = SleepRecorder()
    async with raw_server(both_at_once) as server:
        async with VcitaClient(target(server.url), settings=fast_settings(), sleep=sleep) as api:
            with pytest.raises(OutcomeUnknownError) as caught:
                await api.create_client_package({"client_id": "c1", "package_id": "p1"})
    assert posts(server.requests) == 1, "the create was sent again"
    assert "more than one answer" in caught.value.message
    assert sleep.waits == []


async def test_the_answers_are_never_mixed_when_the_second_arrives_in_the_same_read_as_a_get() -> None:
    # A read (retryable) may be repeated, but never with one answer's status and another's body.
    first = answer(body("OK", {"services": [{"id": "s1", "name": "Piano"}]}))
    second = answer(b'{"status":"Error","error":"gone"}', status=b"404 Not Found")

    async def both_at_once(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(first + second if n == 1 else first)
        await writer.drain()
        return True

    async with raw_server(both_at_once) as server:
        async with VcitaClient(target(server.url), settings=fast_settings(), sleep=SleepRecorder()) as api:
            services = await api.list_services()
    assert [s.id for s in services] == ["s1"]
    assert server.connections == 2  # the out-of-step connection was dropped, not reused


async def test_an_unsolicited_answer_on_an_idle_connection_is_never_taken_for_the_next_one() -> None:
    listed = answer(body("OK", {"services": []}))
    stray = answer(b'{"status":"Error","error":"slow down"}', status=b"429 Too Many Requests")
    created = answer(body("OK", {"client_package": CREATED}), status=b"201 Created")

    async def stray_later(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        if request.startswith(b"GET "):
            writer.write(listed)
            server.later(0.05, writer, stray)  # unasked, 50 ms later, on the kept-alive connection
        else:
            writer.write(created)
        await writer.drain()
        return True

    async with raw_server(stray_later) as server:
        async with VcitaClient(target(server.url), settings=fast_settings(), sleep=SleepRecorder()) as api:
            assert await api.list_services() == []
            await asyncio.sleep(0.15)  # the stray answer has arrived on the idle connection
            made = await api.create_client_package({"client_id": "c1", "package_id": "p1"})
    assert made.id == CREATED["id"]
    assert posts(server.requests) == 1
    assert server.connections == 2  # the create went out on a fresh connection


@pytest.mark.parametrize("data, expect_id", [
    ({"client_package": {k: v for k, v in CREATED.items() if k != "client_id"}}, True),  # a field missing
    ({"client_package": "created"}, False),  # not an object
    ({}, False),  # no client_package at all
])
async def test_a_2xx_create_whose_body_cannot_be_read_is_an_unknown_outcome(
        data: dict[str, object], expect_id: bool) -> None:
    async def odd(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(body("OK", data), status=b"201 Created"))
        await writer.drain()
        return True

    async with raw_server(odd) as server:
        async with VcitaClient(target(server.url), settings=fast_settings(), sleep=SleepRecorder()) as api:
            with pytest.raises(OutcomeUnknownError) as caught:
                await api.create_client_package({"client_id": "c1", "package_id": "p1"})
    assert posts(server.requests) == 1
    assert caught.value.remote_id == (CREATED["id"] if expect_id else None)
    if expect_id:
        assert CREATED["id"] in caught.value.message


def test_only_a_refusal_or_a_request_never_sent_proves_a_create_was_not_executed() -> None:
    from reconciler.core.errors import (
        ProtocolError,
        RemoteError,
        RemoteValidationError,
        RequestInfo,
        UnavailableError,
        proves_not_executed,
    )

    def info(status: int | None) -> RequestInfo:
        return RequestInfo("POST", "/x", "gateway", status=status)

    assert proves_not_executed(RemoteValidationError("refused", request=info(422)))
    assert proves_not_executed(UnavailableError("never sent", request=info(None)))
    assert not proves_not_executed(ProtocolError("unreadable", request=info(201)))
    assert not proves_not_executed(RemoteError("odd", request=info(200)))
    assert not proves_not_executed(UnavailableError("server error", request=info(503)))
    assert not proves_not_executed(OutcomeUnknownError("lost", request=info(None)))
    assert not proves_not_executed(ValueError("ours"))

"""Walking list pages against servers that never stop, repeat themselves or ignore paging.

The server is an ``httpx.MockTransport`` at the transport seam, answering each page as scripted
(the sandbox pages honestly; these are the servers it cannot imitate).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from remote_support import fast_settings

from reconciler.core.errors import ProtocolError
from reconciler.remote import Secret, Target, VcitaClient
from reconciler.remote import client as client_module

pytestmark = pytest.mark.anyio
TARGET = Target(name="t", gateway_url="https://api.example/apigw", fallback_url=None, business_id="b" * 16,
                staff_token=Secret("t" * 24))


def service(i: int) -> dict[str, Any]:
    return {"id": f"s{i}", "name": f"Service {i}", "duration": 60}


def lister(pages: Callable[[int, int], list[dict[str, Any]]], seen: list[int]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        page, per_page = int(request.url.params["page"]), int(request.url.params["per_page"])
        seen.append(page)
        return httpx.Response(200, content=json.dumps({"status": "OK", "data": {"services": pages(page, per_page)}}))
    return httpx.MockTransport(handler)


async def walk(pages: Callable[[int, int], list[dict[str, Any]]]) -> tuple[Any, list[int]]:
    seen: list[int] = []
    async with VcitaClient(TARGET, transport=lister(pages, seen), settings=fast_settings()) as api:
        try:
            return await api.list_services(), seen
        except ProtocolError as error:
            return error, seen


async def test_a_list_that_never_ends_stops_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "MAX_PAGES", 40)
    error, seen = await walk(lambda page, per: [service(page * 1000 + i) for i in range(per)])  # always full, always new
    assert isinstance(error, ProtocolError) and "did not end after 40 pages" in str(error)
    assert seen == list(range(1, 41))
    monkeypatch.setattr(client_module, "MAX_LIST_ITEMS", 250)
    error, seen = await walk(lambda page, per: [service(page * 1000 + i) for i in range(per)])
    assert isinstance(error, ProtocolError) and "more than 250 objects" in str(error) and len(seen) == 3


async def test_a_full_page_repeated_is_an_error_not_the_end_of_the_list() -> None:
    error, seen = await walk(lambda page, per: [service(i) for i in range(per)])  # ignores 'page'
    assert isinstance(error, ProtocolError) and "page 2 repeats" in str(error) and seen == [1, 2]


async def test_a_server_that_ignores_paging_and_sends_everything_is_read_once() -> None:
    everything, seen = await walk(lambda page, per: [service(i) for i in range(per + 30)])
    assert len(everything) == 130 and seen == [1, 2]
    short, seen = await walk(lambda page, per: [service(i) for i in range(7)])
    assert len(short) == 7 and seen == [1]


async def test_an_honest_long_list_is_read_whole() -> None:
    def pages(page: int, per: int) -> list[dict[str, Any]]:
        start = (page - 1) * per
        return [service(i) for i in range(start, min(start + per, 250))]

    listed, seen = await walk(pages)
    assert [s.id for s in listed] == [f"s{i}" for i in range(250)] and seen == [1, 2, 3]

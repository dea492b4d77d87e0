"""The second memory (remote/discovery.py): client packages found through payment requests, each
confirmed by the link back; and the servers that lie: items that do not link back, that point at
another client's package, a lagging list, price-0 packages with no request, duplicates across
pages, a list that never ends, a route the target's API refuses."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Any

import httpx
import pytest
from remote_support import CLIENTS, Sbx, fast_settings, package_body

from reconciler.core.errors import ProtocolError
from reconciler.remote import Secret, Target, VcitaClient, discovery
from reconciler.remote import client as client_module
from reconciler.remote.discovery import DiscoveryUnavailable, discover, since_intent

pytestmark = pytest.mark.anyio
LIST_ROUTE = "/business/payments/v1/payment_requests"
CP_ROUTE = "/business/payments/v1/client_packages/{uid}"


async def _assign(api: VcitaClient, package_id: str, client: int, **extra: Any) -> str:
    cp = await api.create_client_package({"client_id": CLIENTS[client]["id"], "package_id": package_id, **extra})
    return cp.id


async def test_finds_each_client_package_and_confirms_the_link_back(sbx: Sbx) -> None:
    async with sbx.client() as api:
        pkg = await api.create_catalog_package(package_body())
        made = [await _assign(api, pkg.id, n % 3) for n in range(6)]
        await sbx.operator.clear_stats()
        found = await discover(api)
        assert sorted(cp.id for cp in found.packages) == sorted(made)
        [search] = found.searches
        assert (search.listed, search.pages, search.found, dict(search.ignored)) == (6, 1, 6, {})
        assert await sbx.operator.hits(route=LIST_ROUTE) == 1
        assert await sbx.operator.hits(route=CP_ROUTE) == 6
        mine = await discover(api, {CLIENTS[1]["id"]: date.today()})
        assert sorted(cp.id for cp in mine.packages) == sorted(made[1::3])
        assert "client " + CLIENTS[1]["id"] in mine.searches[0].describe()


async def test_items_that_do_not_link_back_or_name_another_client_are_ignored_and_counted(sbx: Sbx) -> None:
    async with sbx.client() as api:
        pkg = await api.create_catalog_package(package_body())
        good, stranger, other = (await _assign(api, pkg.id, 0), await _assign(api, pkg.id, 0),
                                 await _assign(api, pkg.id, 1))
        # the stranger's client package now points at another payment request: no link back
        await sbx.operator.call("PATCH", f"/_sandbox/objects/client_packages/{stranger}",
                                {"payment_request_id": "zzzzzzzzzzzzzzzz"})
        found = await discover(api, {CLIENTS[0]["id"]: None})
        assert [cp.id for cp in found.packages] == [good]
        assert found.searches[0].ignored == {"not linked back by their client package": 1}
        # an item of client 0 whose payable_uid names client 1's package: never client 0's
        other_doc = (await sbx.operator.call("GET", f"/_sandbox/objects/client_packages/{other}"))["doc"]
        await sbx.operator.call("PATCH", f"/_sandbox/objects/payment_requests/{other_doc['payment_request_id']}",
                                {"client_uid": CLIENTS[0]["id"]})
        found = await discover(api, {CLIENTS[0]["id"]: None})
        # linked both ways, so it exists: kept (it is client 1's, whatever list it was filed in)
        assert sorted(cp.id for cp in found.packages) == sorted([good, other])
        assert {cp.id: cp.client_id for cp in found.packages}[other] == CLIENTS[1]["id"]
        assert found.searches[0].ignored == {"not linked back by their client package": 1}
        # the stranger's request links back to nothing: doubtful for client 0 (it may hide a package)
        good_request = (await sbx.operator.call("GET", f"/_sandbox/objects/client_packages/{good}"))["doc"]
        assert len(found.doubtful[CLIENTS[0]["id"]]) == 1
        assert good_request["payment_request_id"] not in found.doubtful[CLIENTS[0]["id"]]


async def test_price_zero_packages_and_a_lagging_list_are_absent_not_proven_absent(sbx: Sbx) -> None:
    async with sbx.client() as api:
        pkg = await api.create_catalog_package(package_body(price=0))
        listed_one = await _assign(api, pkg.id, 0)
        await sbx.operator.call("PUT", "/_sandbox/settings", {"free_packages_open_no_request": True,
                                                              "payment_request_lag_seconds": 60})
        free = await _assign(api, pkg.id, 0)
        lagging = await _assign(api, pkg.id, 0, price=5)
        found = await discover(api, {CLIENTS[0]["id"]: None})
        assert [cp.id for cp in found.packages] == [listed_one]  # neither the free one nor the lagging one
        assert free != lagging


async def test_nothing_to_find_is_an_empty_discovery_not_an_error(sbx: Sbx) -> None:
    async with sbx.client() as api:
        found = await discover(api, {CLIENTS[0]["id"]: None})
        assert found.packages == () and found.searches[0].listed == 0
        assert await discover(api, {}) == discovery.Discovery()


async def test_a_list_where_nothing_links_back_makes_discovery_unavailable(sbx: Sbx) -> None:
    async with sbx.client() as api:
        pkg = await api.create_catalog_package(package_body())
        cp = await _assign(api, pkg.id, 0)
        await sbx.operator.call("PATCH", f"/_sandbox/objects/client_packages/{cp}", {"payment_request_id": None})
        with pytest.raises(DiscoveryUnavailable, match="none links back"):
            await discover(api)


async def test_a_refused_list_route_makes_discovery_unavailable(sbx: Sbx) -> None:
    await sbx.operator.fault(path=LIST_ROUTE, status=404, door="*")
    async with sbx.client() as api:
        with pytest.raises(DiscoveryUnavailable, match="cannot be read as the spec describes"):
            await discover(api)


async def test_many_clients_are_searched_business_wide(sbx: Sbx, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discovery, "PER_CLIENT_MAX", 1)
    async with sbx.client() as api:
        pkg = await api.create_catalog_package(package_body())
        made = [await _assign(api, pkg.id, n) for n in range(3)]
        await sbx.operator.clear_stats()
        found = await discover(api, {CLIENTS[0]["id"]: None, CLIENTS[1]["id"]: date(2020, 1, 1)})
        assert sorted(cp.id for cp in found.packages) == sorted(made[:2])
        assert [s.client_id for s in found.searches] == [None]
        assert await sbx.operator.hits(route=LIST_ROUTE) == 1


def test_since_intent_keeps_a_clock_skew_margin() -> None:
    # a day before: a vcita clock hours behind still finds the package, across midnight too
    assert since_intent("2026-12-01T00:10:00Z") == date(2026, 11, 30)
    assert since_intent("2026-12-01T23:59:00Z") == date(2026, 11, 30)
    assert since_intent("not a time") is None


# --- servers the sandbox cannot imitate (MockTransport at the transport seam) ----------------------

TARGET = Target(name="t", gateway_url="https://api.example/apigw", fallback_url=None, business_id="b" * 16,
                staff_token=Secret("t" * 24))


def _cp(uid: str, request: str, client: str = "c" * 16) -> dict[str, Any]:
    return {"id": uid, "client_id": client, "package_id": "p" * 16, "payment_request_id": request,
            "amount": 10, "currency": "USD", "valid_from": "2026-01-01", "valid_until": "2026-02-01"}


def _server(pages: Any, seen: list[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path.endswith("/payment_requests"):
            rows = pages(int(request.url.params["page"]), int(request.url.params["per_page"]))
            return httpx.Response(200, content=json.dumps({"success": True, "data": {"payment_requests": rows}}))
        uid = request.url.path.rsplit("/", 1)[1]
        return httpx.Response(200, content=json.dumps({"success": True, "data": {"client_package": _cp(uid, "r" + uid)}}))
    return httpx.MockTransport(handler)


def _pr(n: int) -> dict[str, Any]:
    return {"uid": f"rk{n}", "payable_type": "ClientBookingPackage", "payable_uid": f"k{n}", "amount": "10.0"}


async def test_duplicates_across_pages_are_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    # 100 per page; page 2 repeats 50 items of page 1 and adds 30 new ones; page 3 is empty
    pages = {1: [_pr(n) for n in range(100)], 2: [_pr(n) for n in range(50, 130)], 3: []}
    async with VcitaClient(TARGET, transport=_server(lambda p, per: pages.get(p, []), seen),
                           settings=fast_settings()) as api:
        found = await discover(api)
    assert len(found.packages) == 130 and found.searches[0].listed == 130
    assert sum(1 for p in seen if p.endswith("/payment_requests")) == 3
    assert sum(1 for p in seen if "/client_packages/" in p) == 130


async def test_a_page_the_server_caps_below_per_page_does_not_end_the_walk() -> None:
    seen: list[str] = []
    everything = [_pr(n) for n in range(60)]  # a server whose own maximum is 25 a page
    async with VcitaClient(TARGET, transport=_server(lambda p, per: everything[(p - 1) * 25:p * 25], seen),
                           settings=fast_settings()) as api:
        found = await discover(api)
    assert len(found.packages) == 60  # pages of 25, 25, 10: the 10 ends it


async def test_the_confirmations_start_while_the_walk_goes_on() -> None:
    # page 2 is answered only once a package named on page 1 has been read (or after 5 s): a walk
    # that reads nothing before it has every page would wait those 5 s, and be seen waiting
    first_read = asyncio.Event()
    served: list[tuple[int, bool]] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/payment_requests"):
            page = int(request.url.params["page"])
            if page == 2:
                try:
                    await asyncio.wait_for(first_read.wait(), 5)
                except TimeoutError:
                    pass
            served.append((page, first_read.is_set()))
            rows = {1: [_pr(n) for n in range(100)], 2: [_pr(n) for n in range(100, 110)]}.get(page, [])
            return httpx.Response(200, content=json.dumps({"success": True, "data": {"payment_requests": rows}}))
        uid = request.url.path.rsplit("/", 1)[1]
        first_read.set()
        return httpx.Response(200, content=json.dumps({"success": True, "data": {"client_package": _cp(uid, "r" + uid)}}))

    async with VcitaClient(TARGET, transport=httpx.MockTransport(handler), settings=fast_settings()) as api:
        found = await discover(api)
    assert len(found.packages) == 110 and found.searches[0].pages == 2
    assert served == [(1, False), (2, True)]  # page 2 went out after page 1's packages were being read


async def test_a_payment_request_list_that_never_ends_stops_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "MAX_PAGES", 30)
    seen: list[str] = []
    async with VcitaClient(TARGET, transport=_server(lambda p, per: [_pr(p * 1000 + i) for i in range(per)], seen),
                           settings=fast_settings()) as api:
        with pytest.raises(DiscoveryUnavailable, match="did not end after 30 pages") as caught:
            await discover(api)
    assert isinstance(caught.value.__cause__, ProtocolError)
    # The confirmations overlap the walk, so some items were read before it failed (each one listed),
    # and they stopped with it: nothing is sent once the walk has failed, and nothing is returned.
    reads = sum(1 for p in seen if "/client_packages/" in p)
    assert reads <= 30 * 100
    await asyncio.sleep(0.2)
    assert sum(1 for p in seen if "/client_packages/" in p) == reads


async def test_server_text_in_ids_never_reaches_a_message() -> None:
    seen: list[str] = []
    rows = [{"uid": "r1", "payable_type": "ClientBookingPackage", "payable_uid": "\x1b[31mevil/../x"}, _pr(2)]
    async with VcitaClient(TARGET, transport=_server(lambda p, per: rows if p == 1 else [], seen),
                           settings=fast_settings()) as api:
        found = await discover(api)
    assert [cp.id for cp in found.packages] == ["k2"]
    assert found.searches[0].ignored == {"without a readable payable_uid": 1}
    assert "\x1b" not in found.searches[0].describe()


async def test_requests_created_during_the_walk_shift_no_item_out_of_it() -> None:
    # a server that ignores sort=created_at:asc and answers newest first: 7 requests opened between
    # page 1 and page 2 push every item 7 places down; page 2 repeats 7 of page 1 (read once) and
    # nothing that existed when the walk began is missed
    seen: list[str] = []
    items = [_pr(n) for n in range(250)]
    pages: list[int] = []

    def page(p: int, per: int) -> list[dict[str, Any]]:
        pages.append(p)
        if p == 2:
            items[:0] = [_pr(1000 + n) for n in range(7)]
        return items[(p - 1) * per:p * per]

    async with VcitaClient(TARGET, transport=_server(page, seen), settings=fast_settings()) as api:
        found = await discover(api)
    ids = {cp.id for cp in found.packages}
    assert {f"k{n}" for n in range(250)} <= ids
    assert pages[:2] == [1, 2] and sum(1 for p in seen if "/client_packages/" in p) == len(ids)


async def test_requests_created_during_the_walk_in_created_order_land_after_it() -> None:
    # sort=created_at:asc honoured (as the sandbox does): requests opened mid-walk go to the end;
    # the pages read do not move, and the walk reads the new ones too when it reaches them
    seen: list[str] = []
    items = [_pr(n) for n in range(250)]

    def page(p: int, per: int) -> list[dict[str, Any]]:
        if p == 2:
            items.extend(_pr(1000 + n) for n in range(7))
        return items[(p - 1) * per:p * per]

    async with VcitaClient(TARGET, transport=_server(page, seen), settings=fast_settings()) as api:
        found = await discover(api)
    assert {cp.id for cp in found.packages} == {f"k{n}" for n in range(250)} | {f"k{1000 + n}" for n in range(7)}

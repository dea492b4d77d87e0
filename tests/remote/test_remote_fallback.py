"""Door decisions: the verified flags, the gateway refusals that send a request to the fallback
(and are remembered), a gateway that was fixed, and the legacy path rewrite."""

from __future__ import annotations

import httpx
import pytest
from remote_support import CLIENTS, Sbx, fast_settings, package_body

from reconciler.core.errors import AuthError, DoorRefusedError, OutcomeUnknownError
from reconciler.remote import DEFAULT_ROUTES, Door, rewrite_legacy

pytestmark = pytest.mark.anyio

ALL_GATEWAY = DEFAULT_ROUTES.with_doors(Door.GATEWAY)
CP = "/business/payments/v1/client_packages/{uid}"
PACKAGES = "/platform/v1/payment/packages"
LEGACY = "/business/payments/platform/v1/payment/client_packages"


async def make_client_package(sbx: Sbx) -> str:
    async with sbx.client() as api:
        package = await api.create_catalog_package(package_body())
        return (await api.create_client_package({"client_id": CLIENTS[0]["id"], "package_id": package.id})).id


async def test_gateway_401_on_business_payments_falls_back_once_and_is_remembered(sbx: Sbx) -> None:
    uid = await make_client_package(sbx)
    await sbx.operator.clear_stats()
    async with sbx.client(routes=ALL_GATEWAY) as api:
        first = await api.get_client_package(uid)
        served = api.last_served
        assert served is not None and (served.door, served.fell_back, served.attempts) == ("fallback", True, 2)
        assert first.id == uid
        await api.get_client_package(uid)
        assert (api.last_served.door, api.last_served.fell_back) == ("fallback", False)
        await api.update_client_package(uid, credits=[(first.booking_credits[0].id, 11)])  # a route of its own
        assert api.dispatcher.rerouted == {"get_client_package", "update_client_package"}
    assert await sbx.operator.hits(door="gateway", method="GET", route=CP) == 1
    assert await sbx.operator.hits(door="fallback", method="GET", route=CP) == 2
    assert await sbx.operator.hits(door="gateway", method="PUT", route=CP) == 1


async def test_gateway_422_unauthorized_falls_back(sbx: Sbx) -> None:
    async with sbx.client(routes=ALL_GATEWAY) as api:
        assert await api.list_catalog_packages() == []
        assert (api.last_served.door, api.last_served.fell_back) == ("fallback", True)
    assert await sbx.operator.hits(door="gateway", route=PACKAGES, method="GET") == 1


async def test_a_fixed_gateway_means_no_fallback(sbx: Sbx) -> None:
    uid = await make_client_package(sbx)
    await sbx.operator.gateway([])  # the gateway was fixed
    await sbx.operator.clear_stats()
    async with sbx.client(routes=ALL_GATEWAY) as api:
        await api.get_client_package(uid)
        await api.list_catalog_packages()
        assert {(s.door, s.fell_back) for s in api.history} == {("gateway", False)}
        assert not api.dispatcher.rerouted
    assert await sbx.operator.hits(door="fallback") == 0


async def test_gateway_502_falls_back_for_an_idempotent_request(sbx: Sbx) -> None:
    async with sbx.client() as api:
        package = await api.create_catalog_package(package_body())
    await sbx.operator.gateway([{"method": "GET", "path": PACKAGES + "/*", "status": 502, "body": "Bad Gateway"}])
    async with sbx.client() as api:
        assert (await api.get_catalog_package(package.id)).id == package.id
        assert (api.last_served.door, api.last_served.fell_back) == ("fallback", True)


async def test_gateway_502_on_a_post_is_not_proof_and_is_not_repeated(sbx: Sbx) -> None:
    async with sbx.client() as api:
        package = await api.create_catalog_package(package_body())
    await sbx.operator.gateway([{"method": "POST", "path": "/platform/v1/payment/client_packages",
                                 "status": 502, "body": "Bad Gateway"}])
    await sbx.operator.clear_stats()
    async with sbx.client() as api:
        with pytest.raises(OutcomeUnknownError) as unknown:
            await api.create_client_package({"client_id": CLIENTS[0]["id"], "package_id": package.id})
    assert unknown.value.request is not None and unknown.value.request.door == "gateway"
    assert await sbx.operator.hits() == 1  # neither retried nor sent to the fallback


async def test_gateway_404_bad_gateway_falls_back_even_for_a_post(sbx: Sbx) -> None:
    await sbx.operator.gateway([{"method": "POST", "path": PACKAGES, "status": 404,
                                 "body": "<html><h1>502 Bad Gateway</h1></html>"}])
    async with sbx.client() as api:
        created = await api.create_catalog_package(package_body())
        assert (api.last_served.door, api.last_served.fell_back) == ("fallback", True)
        assert [p.id for p in await api.list_catalog_packages()] == [created.id]  # exactly once


async def test_without_a_fallback_door_the_refusal_names_the_fallback_setting(sbx: Sbx) -> None:
    uid = await make_client_package(sbx)
    async with sbx.client(target=sbx.target_with(fallback_url=None)) as api:
        with pytest.raises(DoorRefusedError) as err:
            await api.get_client_package(uid)
        with pytest.raises(DoorRefusedError) as listing:
            await api.list_catalog_packages()  # refused on the gateway with both tokens
    assert err.value.request is not None and err.value.request.door == "gateway"
    for e in (err.value, listing.value):
        assert "VCITA_FALLBACK_URL" in (e.hint or "") and "fallback_url" in (e.hint or "")
        assert "no fallback URL" in e.message and "staff token" not in (e.hint or "")
    assert "with the staff token: 422" in listing.value.message  # the directory token was tried too


async def test_the_fallback_refusing_too_is_reported_not_looped(sbx: Sbx) -> None:
    uid = await make_client_package(sbx)
    await sbx.operator.fault(method="GET", path="/business/payments/v1/client_packages/*", door="fallback",
                             status=401, body={"success": False, "errors": [{"code": "unauthorized",
                                                                              "message": "Unauthorized"}]})
    async with sbx.client(routes=ALL_GATEWAY) as api:
        with pytest.raises(AuthError) as err:
            await api.get_client_package(uid)
    assert err.value.request is not None and err.value.request.door == "fallback"
    assert await sbx.operator.hits(method="GET", route=CP) == 2


async def test_legacy_path_is_rewritten(sbx: Sbx) -> None:
    async with sbx.client() as api:
        package = await api.create_catalog_package(package_body())
        # the documented legacy path does not exist on either door (seed 000) ...
        base = sbx.target.gateway_url.rsplit("/", 1)[0]
        async with httpx.AsyncClient(transport=sbx.transport, base_url=base) as raw:
            for door in ("/apigw", "/api2"):
                r = await raw.post(door + LEGACY, json={}, headers={"Authorization": f"Bearer {sbx.target.staff_token.reveal()}"})
                assert r.status_code == 404
        # ... and the client's table sends it to the path that serves it
        route = api.routes.match("POST", LEGACY)
        assert route is not None and route.name == "create_client_package"
        reply = await api.dispatcher.send(route, rewrite_legacy(LEGACY),
                                          body={"client_id": CLIENTS[0]["id"], "package_id": package.id})
        assert reply.served.status == 201 and reply.served.path == "/platform/v1/payment/client_packages"


async def test_fallback_preference_can_be_overridden_per_route(sbx: Sbx) -> None:
    routes = DEFAULT_ROUTES.with_doors({"list_clients": Door.FALLBACK})
    async with sbx.client(routes=routes, settings=fast_settings()) as api:
        await api.list_clients()
        assert api.last_served.door == "fallback"


async def test_a_directory_token_route_sends_x_on_behalf_of(sbx: Sbx) -> None:
    from dataclasses import replace

    from reconciler.remote import RouteTable
    from reconciler.remote.routes import TokenKind

    routes = RouteTable([replace(r, token=TokenKind.DIRECTORY, alt=TokenKind.STAFF if r.name == "list_clients" else None)
                         if r.name in ("list_clients", "list_services") else r for r in DEFAULT_ROUTES])
    async with sbx.client(routes=routes) as api:
        assert len(await api.list_clients()) == len(CLIENTS)  # directory + X-On-Behalf-Of accepted
        with pytest.raises(AuthError):
            await api.list_services()  # ... and refused where the recipes saw it refused
    async with sbx.client(routes=routes, target=sbx.target_with(directory_token=None)) as api:
        assert len(await api.list_clients()) == len(CLIENTS)  # no directory token: the other, staff
        assert api.last_served.token == "staff"

"""Every route of the typed client against the sandbox, in-process and served on loopback."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from remote_support import BUSINESS, CLIENTS, SERVICES, Sbx, fast_settings, package_body

from reconciler.cli.embedded import embedded_transport
from reconciler.core.errors import (
    AuthError,
    ConfigError,
    FeatureDisabledError,
    NotFoundError,
    RemoteValidationError,
)
from reconciler.model.remote import RemoteCatalogPackage, RemoteClientPackage
from reconciler.remote import Secret, Target, VcitaClient, resolve_target
from reconciler.sandbox import DEMO

pytestmark = pytest.mark.anyio


async def test_catalog_package_routes(sbx: Sbx) -> None:
    async with sbx.client() as api:
        created = await api.create_catalog_package(package_body())
        assert isinstance(created, RemoteCatalogPackage)
        assert api.last_served is not None and (api.last_served.door, api.last_served.status) == ("gateway", 201)
        assert (created.price, created.expiration_unit, created.discount_amount, created.discount_unit) == (
            Decimal("223.5"), "M", Decimal(15), "F")
        assert created.items is not None and created.items[0].total_bookings == 10
        assert created.items[0].services == (SERVICES[0],) and created.active is True

        got = await api.get_catalog_package(created.id)
        assert got == created and api.last_served.door == "gateway"

        updated = await api.update_catalog_package(created.id, {"name": "Piano 12", "price": Decimal(250),
            "items": [{"total_bookings": 12, "services": [{"id": SERVICES[0]}, {"id": SERVICES[1]}]}]})
        assert (updated.name, updated.price) == ("Piano 12", Decimal(250))
        assert updated.items is not None and updated.items[0].services == (SERVICES[0], SERVICES[1])

        listed = await api.list_catalog_packages()
        assert api.last_served.door == "fallback"  # the gateway refuses the list (API-NOTES §3)
        assert [p.id for p in listed] == [created.id] and listed[0].items is not None
        assert (await api.list_catalog_packages(include_items=False))[0].items is None

        await api.update_catalog_package(created.id, {"active": False})
        assert [p.active for p in await api.list_catalog_packages()] == [False]
        assert await api.list_catalog_packages(active_only=True) == []
        assert all(not s.fell_back for s in api.history)
    assert await sbx.operator.hits(door="gateway", method="GET", route="/platform/v1/payment/packages") == 0


async def test_client_package_routes(sbx: Sbx) -> None:
    async with sbx.client() as api:
        package = await api.create_catalog_package(package_body())
        cp = await api.create_client_package({"client_id": CLIENTS[0]["id"], "package_id": package.id,
                                              "price": Decimal("199.99")})
        assert isinstance(cp, RemoteClientPackage) and api.last_served.door == "gateway"
        assert (cp.client_id, cp.package_id, cp.price, cp.active) == (CLIENTS[0]["id"], package.id, Decimal("199.99"), True)
        assert cp.valid_from is not None and cp.valid_until is not None and cp.valid_until > cp.valid_from
        credit = cp.booking_credits[0]
        assert (credit.total_bookings, credit.bookings_usage, credit.services) == (10, 0, (SERVICES[0],))
        assert cp.payment_request_id and cp.matter_uid

        got = await api.get_client_package(cp.id)
        assert api.last_served.door == "fallback" and got.id == cp.id and got.booking_credits == cp.booking_credits

        until = date.today() + timedelta(days=400)
        updated = await api.update_client_package(cp.id, valid_until=until, credits=[(credit.id, 14)])
        assert api.last_served.door == "fallback"
        assert updated.valid_until == until and updated.booking_credits[0].total_bookings == 14

        many = await api.get_client_packages([cp.id, "zzzzzzzzzzzzzzzz", cp.id])
        assert list(many) == [cp.id, "zzzzzzzzzzzzzzzz"] and many["zzzzzzzzzzzzzzzz"] is None
        with pytest.raises(ValueError):
            await api.update_client_package(cp.id)


async def test_matter_uid_is_sent_under_the_name_the_controller_reads(sbx: Sbx) -> None:
    async with sbx.client() as api:
        package = await api.create_catalog_package(package_body())
        cp = await api.create_client_package({"client_id": CLIENTS[1]["id"], "package_id": package.id,
                                              "conversation_id": "matter0000000001"})
        assert cp.matter_uid == "matter0000000001"


async def test_clients_and_services(sbx: Sbx) -> None:
    async with sbx.client() as api:
        services = await api.list_services()
        assert [s.id for s in services] == SERVICES and services[0].name
        clients = await api.list_clients()
        assert [c.id for c in clients] == [c["id"] for c in CLIENTS]
        found = await api.find_client_by_email(CLIENTS[2]["email"].upper())
        assert found is not None and found.id == CLIENTS[2]["id"]
        assert await api.find_client_by_email("nobody@example.com") is None
        assert {s.door for s in api.history} == {"gateway"}


async def test_pagination_walks_until_a_short_page(sbx: Sbx) -> None:
    await sbx.operator.bulk_packages(130)
    await sbx.operator.clear_stats()
    async with sbx.client() as api:
        clients = await api.list_clients()
    assert len(clients) == len(CLIENTS)
    assert await sbx.operator.hits(route="/platform/v1/clients") == 1  # a short first page ends it


async def test_catalog_pagination_walks_until_an_empty_page(sbx: Sbx) -> None:
    ids = await sbx.operator.bulk_packages(230)
    await sbx.operator.clear_stats()
    async with sbx.client() as api:
        listed = await api.list_catalog_packages()
    assert [p.id for p in listed] == ids
    # 100 + 100 + 30, then an empty page: a short page does not prove the end (API-NOTES §10)
    assert await sbx.operator.hits(route="/platform/v1/payment/packages") == 4


async def test_errors_are_mapped(sbx: Sbx) -> None:
    async with sbx.client() as api:
        with pytest.raises(NotFoundError) as nf:
            await api.get_client_package("zzzzzzzzzzzzzzzz")
        assert nf.value.status == 404 and nf.value.request is not None and nf.value.request.door == "fallback"
        with pytest.raises(NotFoundError) as nf422:
            await api.get_catalog_package("zzzzzzzzzzzzzzzz")
        assert nf422.value.status == 422
        with pytest.raises(RemoteValidationError) as bad:
            await api.create_catalog_package(package_body(expiration_unit="Q"))
        assert "Expiration unit" in str(bad.value) and bad.value.field_errors
        with pytest.raises(RemoteValidationError, match="Client not found"):
            package = await api.create_catalog_package(package_body())
            await api.create_client_package({"client_id": "zzzzzzzzzzzzzzzz", "package_id": package.id})
        cp = await api.create_client_package({"client_id": CLIENTS[0]["id"], "package_id": package.id})
        credit = cp.booking_credits[0]
        await sbx.operator.call("PUT", f"/_sandbox/client_packages/{cp.id}/usage",
                                {"booking_credit_id": credit.id, "bookings_usage": 5})
        with pytest.raises(RemoteValidationError) as low:
            await api.update_client_package(cp.id, credits=[(credit.id, 3)])
        assert low.value.status == 422 and low.value.field_errors[0]["field"] == "total_bookings"
        with pytest.raises(RemoteValidationError) as past:
            await api.update_client_package(cp.id, valid_until=date(2001, 1, 1))
        assert past.value.field_errors[0]["field"] == "valid_until"

        await sbx.operator.call("PUT", f"/_sandbox/businesses/{BUSINESS}/features", {"booking_packages": False})
        with pytest.raises(FeatureDisabledError) as off:
            await api.list_catalog_packages()
        assert off.value.status == 403 and "booking_packages" in (off.value.hint or "")

    async with sbx.client(target=sbx.target_with(staff_token=Secret("not-a-token"))) as api:
        with pytest.raises(AuthError) as auth:
            await api.list_clients()
        assert auth.value.status == 401 and "VCITA_STAFF_TOKEN" in (auth.value.hint or "")
        with pytest.raises(AuthError):  # the error itself, not an ExceptionGroup of the workers
            await api.get_client_packages([cp.id, "zzzzzzzzzzzzzzzz"] * 20)


async def test_embedded_client_without_transport_runs_the_sandbox_in_process(tmp_path: Path) -> None:
    target = resolve_target(flags={}, env={}, cwd=tmp_path)
    async with VcitaClient(target, embedded=embedded_transport) as api:
        assert api.settings.rate is None and api.settings.concurrency == 32
        assert len(await api.list_services()) == len(SERVICES)
        package = await api.create_catalog_package(package_body())
    assert (tmp_path / ".reconciler" / "sandbox.db").is_file()
    async with VcitaClient(target, embedded=embedded_transport) as api:  # persisted across clients
        assert (await api.get_catalog_package(package.id)).id == package.id


async def test_an_embedded_client_given_no_sandbox_refuses_before_sending(tmp_path: Path) -> None:
    # remote/ does not import the sandbox: the CLI wires it in (reconciler.cli.embedded).
    target = resolve_target(flags={}, env={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="no embedded sandbox"):
        async with VcitaClient(target):
            pass
    assert not (tmp_path / ".reconciler").exists()


def test_the_embedded_target_is_the_sandbox_demo_business(tmp_path: Path) -> None:
    # remote/target.py names the demo business's identity itself (it must not import the sandbox).
    target = resolve_target(flags={}, env={}, cwd=tmp_path)
    assert target.business_id == DEMO["business"]["id"]
    assert target.staff_token is not None and target.staff_token.reveal() == DEMO["tokens"]["staff"]
    assert target.directory_token is not None and target.directory_token.reveal() == DEMO["tokens"]["directory"]


async def test_http_transport_keeps_connections_alive_within_its_limit(sandbox_server: Any) -> None:
    from reconciler.remote.http import HttpTransport

    async with httpx.AsyncClient(base_url=sandbox_server.operator_url) as operator:
        (await operator.post("/reset")).raise_for_status()
    transport = HttpTransport(max_connections=10)
    target = Target(name="served", gateway_url=sandbox_server.gateway_url,
                    fallback_url=sandbox_server.fallback_url,
                    business_id=BUSINESS, staff_token=Secret(DEMO["tokens"]["staff"]))
    async with VcitaClient(target, transport=transport, settings=fast_settings(concurrency=10)) as api:
        package = await api.create_catalog_package(package_body())
        uids = [(await api.create_client_package({"client_id": c["id"], "package_id": package.id})).id
                for c in CLIENTS]
        assert len(await api.get_client_packages(uids * 3)) == len(CLIENTS)
        got = await asyncio.gather(*(api.get_client_package(u) for u in uids * 30))
        assert [g.id for g in got] == uids * 30
        requests = len(api.history)
    # two doors, at most 10 connections open at once: reused, not one per request
    assert requests > 100 and transport.connections_made <= 20

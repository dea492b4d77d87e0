"""Answers that are not what the API documents (HTML, unreadable bodies, impossible values), and
the one thing the sandbox cannot produce: a Retry-After given as an HTTP date (MockTransport seam)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from remote_support import (
    BUSINESS,
    CLIENTS,
    Sbx,
    SleepRecorder,
    fast_settings,
    package_body,
)

from reconciler.core.errors import OutcomeUnknownError, ProtocolError, UnavailableError
from reconciler.remote import Secret, Target, VcitaClient

pytestmark = pytest.mark.anyio


async def test_html_instead_of_json_is_a_protocol_error(sbx: Sbx) -> None:
    await sbx.operator.fault(method="GET", path="/platform/v1/services", status=200,
                             body="<html><body>Welcome to nginx!</body></html>")
    async with sbx.client() as api:
        with pytest.raises(ProtocolError, match="not a vcita success envelope") as err:
            await api.list_services()
    assert "check the target URLs" in (err.value.hint or "")


async def test_html_error_page_on_a_get_is_retried_then_unavailable(sbx: Sbx) -> None:
    await sbx.operator.fault(method="GET", path="/platform/v1/clients", status=504,
                             body="<html><h1>504 Gateway Time-out</h1></html>")
    async with sbx.client() as api:
        with pytest.raises(UnavailableError, match="504 Gateway Time-out"):
            await api.list_clients()
        assert [s.attempts for s in api.history] == [3]


async def test_created_but_unreadable_answer_is_outcome_unknown(sbx: Sbx) -> None:
    async with sbx.client() as api:
        package = await api.create_catalog_package(package_body())
    await sbx.operator.fault(method="POST", path="/platform/v1/payment/client_packages", status=201, body="OK")
    async with sbx.client() as api:
        with pytest.raises(OutcomeUnknownError, match="unreadable body"):
            await api.create_client_package({"client_id": CLIENTS[0]["id"], "package_id": package.id})


async def test_impossible_values_are_a_protocol_error_naming_the_request(sbx: Sbx) -> None:
    async with sbx.client() as api:
        package = await api.create_catalog_package(package_body())
        await sbx.operator.call("PATCH", f"/_sandbox/objects/packages/{package.id}", {"expiration_unit": "q"})
        with pytest.raises(ProtocolError) as err:
            await api.get_catalog_package(package.id)
    assert f"GET /platform/v1/payment/packages/{package.id} via gateway -> 200" in str(err.value)
    assert "expiration_unit" in str(err.value)


async def test_retry_after_as_an_http_date() -> None:
    """The sandbox sends Retry-After in seconds only; the HTTP-date form comes from a MockTransport."""
    calls: list[httpx.Request] = []
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": when}, json={"status": "Error", "error": "Rate limit"})
        return httpx.Response(200, json={"status": "OK", "data": {"services": [{"id": "s1", "name": "Piano"}]}})

    target = Target(name="mock", gateway_url="https://api.example.com/apigw", fallback_url=None,
                    business_id=BUSINESS, staff_token=Secret("t"))
    sleep = SleepRecorder()
    async with VcitaClient(target, settings=fast_settings(), transport=httpx.MockTransport(handler),
                           sleep=sleep) as api:
        assert [s.id for s in await api.list_services()] == ["s1"]
    assert len(sleep.waits) == 1 and 27 <= sleep.waits[0] <= 30
    assert calls[0].headers["authorization"] == "Bearer t"
    assert calls[0].url.params["business_id"] == BUSINESS


async def test_catalog_list_walks_past_a_short_page_until_an_empty_one() -> None:
    """A server that pages by 2 whatever per_page says must not hide packages (API-NOTES §10)."""
    import httpx

    from reconciler.remote.client import VcitaClient
    from reconciler.remote.dispatch import ClientSettings
    from reconciler.remote.target import Secret, Target

    packages = [{"id": f"pkg{i:013d}", "name": f"P{i}", "price": "1", "currency": "USD", "expiration": 1,
                 "expiration_unit": "m", "items": [], "products": []} for i in range(5)]
    pages_asked = []

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        pages_asked.append(page)
        rows = packages[(page - 1) * 2: page * 2]
        return httpx.Response(200, json={"status": "OK", "data": {"packages": rows}})

    target = Target(name="t", gateway_url="https://gw.example/apigw", fallback_url="https://fb.example/api2",
                    business_id="biz", staff_token=Secret("x" * 20))
    async with VcitaClient(target, settings=ClientSettings(rate=None), transport=httpx.MockTransport(handler)) as api:
        got = await api.list_catalog_packages()
    assert [p.id for p in got] == [p["id"] for p in packages]
    assert pages_asked == [1, 2, 3, 4]

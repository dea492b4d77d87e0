"""Retry rules with the sandbox's injected faults: 5xx, 429 with Retry-After and AIMD back-off,
transport failures and timeouts, POST safety and the unknown outcome of a lost answer."""

from __future__ import annotations

import hashlib
import socket

import pytest
from remote_support import CLIENTS, Sbx, SleepRecorder, fast_settings, package_body

from reconciler.core.errors import OutcomeUnknownError, RateLimitedError, UnavailableError
from reconciler.remote import encode_body

pytestmark = pytest.mark.anyio

CP_GLOB = "/business/payments/v1/client_packages/*"
CREATE_CP = "/platform/v1/payment/client_packages"


async def setup_package(sbx: Sbx) -> str:
    async with sbx.client() as api:
        return (await api.create_catalog_package(package_body())).id


async def test_get_retries_5xx_then_succeeds(sbx: Sbx) -> None:
    package_id = await setup_package(sbx)
    uid = (await sbx.operator.bulk_client_packages(package_id, 1))[0]
    await sbx.operator.fault(method="GET", path=CP_GLOB, status=503, times=2)
    sleep = SleepRecorder()
    async with sbx.client(sleep=sleep) as api:
        await api.get_client_package(uid)
        assert api.last_served.attempts == 3 and len(sleep.waits) == 2
        assert 0 < sleep.waits[0] <= 0.001 and sleep.waits[1] <= 0.002  # capped exponential backoff


async def test_get_gives_up_after_max_attempts(sbx: Sbx) -> None:
    package_id = await setup_package(sbx)
    uid = (await sbx.operator.bulk_client_packages(package_id, 1))[0]
    await sbx.operator.fault(method="GET", path=CP_GLOB, status=500)
    await sbx.operator.clear_stats()
    async with sbx.client(settings=fast_settings(max_attempts=4)) as api:
        with pytest.raises(UnavailableError) as err:
            await api.get_client_package(uid)
    assert err.value.status == 500 and "Retry later" in (err.value.hint or "")
    assert await sbx.operator.hits() == 4


async def test_put_retries_5xx(sbx: Sbx) -> None:
    package_id = await setup_package(sbx)
    uid = (await sbx.operator.bulk_client_packages(package_id, 1))[0]
    await sbx.operator.fault(method="PUT", path=CP_GLOB, status=502, door="fallback", times=1)
    async with sbx.client() as api:
        credit = (await api.get_client_package(uid)).booking_credits[0]
        updated = await api.update_client_package(uid, credits=[(credit.id, 9)])
        assert updated.booking_credits[0].total_bookings == 9 and api.last_served.attempts == 2


async def test_429_honours_retry_after_and_halves_concurrency(sbx: Sbx) -> None:
    await sbx.operator.fault(method="GET", path="/platform/v1/clients", status=429, retry_after=2, times=1)
    sleep = SleepRecorder()
    async with sbx.client(sleep=sleep, settings=fast_settings(concurrency=8)) as api:
        await api.list_clients()
        assert sleep.waits == [2.0] and api.last_served.attempts == 2
        assert api.dispatcher.concurrency.limit == 4 and api.dispatcher.concurrency.decreases == 1


async def test_429_on_every_attempt_is_rate_limited(sbx: Sbx) -> None:
    await sbx.operator.fault(method="GET", path="/platform/v1/services", status=429, retry_after=0)
    async with sbx.client() as api:
        with pytest.raises(RateLimitedError) as err:
            await api.list_services()
    assert err.value.status == 429 and "--concurrency" in (err.value.hint or "")


async def test_429_back_off_under_load_then_recovery(sbx: Sbx) -> None:
    package_id = await setup_package(sbx)
    uids = await sbx.operator.bulk_client_packages(package_id, 80)
    await sbx.operator.fault(method="GET", path=CP_GLOB, status=429, rate=0.25, times=12)
    settings = fast_settings(concurrency=16, max_attempts=8, increase_every=4)
    async with sbx.client(settings=settings) as api:
        limiter = api.dispatcher.concurrency
        got = await api.get_client_packages(uids)
        assert all(v is not None for v in got.values()) and len(got) == 80
        assert limiter.decreases >= 1
        low = limiter.limit
        await api.get_client_packages(uids[:40])  # no more 429s: additive increase
        assert limiter.limit > low or limiter.limit == limiter.maximum


async def test_post_is_retried_on_429_and_created_once(sbx: Sbx) -> None:
    package_id = await setup_package(sbx)
    await sbx.operator.fault(method="POST", path=CREATE_CP, status=429, retry_after=0, times=2)
    async with sbx.client() as api:
        cp = await api.create_client_package({"client_id": CLIENTS[0]["id"], "package_id": package_id})
        assert api.last_served.attempts == 3
    assert [c["id"] for c in await sbx.operator.client_packages()] == [cp.id]


async def test_post_5xx_is_outcome_unknown_and_not_repeated(sbx: Sbx) -> None:
    package_id = await setup_package(sbx)
    await sbx.operator.fault(method="POST", path=CREATE_CP, status=503, times=1)
    await sbx.operator.clear_stats()
    body = {"client_id": CLIENTS[0]["id"], "package_id": package_id}
    async with sbx.client() as api:
        with pytest.raises(OutcomeUnknownError) as err:
            await api.create_client_package(body)
    info = err.value.request
    assert info is not None and (info.method, info.path, info.door, info.status) == ("POST", CREATE_CP, "gateway", 503)
    assert await sbx.operator.hits() == 1


async def test_lost_answer_after_commit_is_outcome_unknown(sbx: Sbx) -> None:
    """The sandbox commits the create, then drops the connection (served) or raises (in-process)."""
    package_id = await setup_package(sbx)
    await sbx.operator.fault(method="POST", path=CREATE_CP, drop_after_commit=True, times=1)
    await sbx.operator.clear_stats()
    body = {"client_id": CLIENTS[0]["id"], "package_id": package_id}
    async with sbx.client() as api:
        with pytest.raises(OutcomeUnknownError) as err:
            await api.create_client_package(body)
    info = err.value.request
    assert info is not None and (info.method, info.path, info.door) == ("POST", CREATE_CP, "gateway")
    assert info.body_digest == "sha256:" + hashlib.sha256(encode_body(body)).hexdigest()[:16]
    assert "may or may not" in str(err.value) and "Check the object in vcita" in (err.value.hint or "")
    assert await sbx.operator.hits() == 1  # never repeated
    assert len(await sbx.operator.client_packages()) == 1  # ... and it did happen


async def test_lost_answer_on_a_get_is_simply_retried(sbx: Sbx) -> None:
    package_id = await setup_package(sbx)
    uid = (await sbx.operator.bulk_client_packages(package_id, 1))[0]
    await sbx.operator.fault(method="GET", path=CP_GLOB, drop_after_commit=True, times=1)
    async with sbx.client() as api:
        assert (await api.get_client_package(uid)).id == uid and api.last_served.attempts == 2


async def test_timeouts(sbx: Sbx) -> None:
    package_id = await setup_package(sbx)
    uid = (await sbx.operator.bulk_client_packages(package_id, 1))[0]
    await sbx.operator.fault(method="GET", path=CP_GLOB, latency_ms=300, times=1)
    async with sbx.client(settings=fast_settings(timeout=0.1)) as api:
        assert (await api.get_client_package(uid)).id == uid and api.last_served.attempts == 2
    await sbx.operator.fault(method="POST", path=CREATE_CP, latency_ms=300, times=1)
    async with sbx.client(settings=fast_settings(timeout=0.1)) as api:
        with pytest.raises(OutcomeUnknownError, match="ReadTimeout"):
            await api.create_client_package({"client_id": CLIENTS[0]["id"], "package_id": package_id})



def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connection_refused_is_retried_even_for_a_post(sbx: Sbx) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    target = sbx.target_with(gateway_url=dead + "/apigw", fallback_url=dead + "/api2", embedded=False)
    sleep = SleepRecorder()
    async with sbx.client(target=target, transport=None, sleep=sleep) as api:
        with pytest.raises(UnavailableError, match=r"no answer after 3 attempts \(ConnectError: cannot connect "
                                                   r"to 127\.0\.0\.1:\d+ \(Connection refused\)\)"):
            await api.create_catalog_package(package_body())
        assert len(sleep.waits) == 2  # refused: nothing was sent, so the POST was safe to repeat
        with pytest.raises(UnavailableError):
            await api.list_clients()

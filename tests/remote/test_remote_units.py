"""Pure parts of the remote layer: route table, envelopes, error mapping, normalisation, retry
policy, Retry-After, the rate limiter and the AIMD concurrency limit."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.errors import (
    AuthError,
    FeatureDisabledError,
    NotFoundError,
    ProtocolError,
    RemoteValidationError,
    RequestInfo,
    UnavailableError,
)
from reconciler.remote import (
    DEFAULT_ROUTES,
    Door,
    RetryPolicy,
    encode_body,
    normalize,
    parse_retry_after,
    rewrite_legacy,
)
from reconciler.remote.envelope import error_for, unwrap
from reconciler.remote.routes import gateway_refusal
from reconciler.remote.throttle import AdaptiveConcurrency, RateLimiter

INFO = RequestInfo("GET", "/platform/v1/payment/packages/x", "gateway")


def test_route_table_flags() -> None:
    doors = {r.name: r.door for r in DEFAULT_ROUTES}
    assert doors.pop("list_catalog_packages") is Door.FALLBACK
    assert doors.pop("get_client_package") is Door.FALLBACK
    assert doors.pop("update_client_package") is Door.FALLBACK
    assert doors.pop("reorder_packages") is Door.FALLBACK  # the verified recipe's door
    assert doors.pop("list_payment_requests") is Door.FALLBACK
    assert doors.pop("get_payment_request") is Door.FALLBACK
    assert set(doors.values()) == {Door.GATEWAY}
    assert {r.name for r in DEFAULT_ROUTES if not r.idempotent} == {"create_catalog_package", "create_client_package"}
    assert DEFAULT_ROUTES["get_client_package"].path(uid="abc") == "/business/payments/v1/client_packages/abc"
    with pytest.raises(ValueError):
        DEFAULT_ROUTES["get_client_package"].path()
    assert DEFAULT_ROUTES["get_catalog_package"].path(package_id="a/b") == "/platform/v1/payment/packages/a%2Fb"


def test_legacy_rewrite() -> None:
    legacy = "/business/payments/platform/v1/payment/client_packages"
    assert rewrite_legacy(legacy) == "/platform/v1/payment/client_packages"
    assert rewrite_legacy(legacy + "/update_usage") == "/platform/v1/payment/client_packages/update_usage"
    assert rewrite_legacy("/platform/v1/clients") == "/platform/v1/clients"
    route = DEFAULT_ROUTES.match("POST", legacy)
    assert route is not None and route.name == "create_client_package"
    assert DEFAULT_ROUTES.match("DELETE", "/platform/v1/clients") is None


def test_gateway_refusals() -> None:
    get_cp, post_cp = DEFAULT_ROUTES["get_client_package"], DEFAULT_ROUTES["create_client_package"]
    bp = "/business/payments/v1/client_packages/x"
    assert gateway_refusal(get_cp, bp, 401, {}, b"") is not None
    assert gateway_refusal(get_cp, "/platform/v1/payment/packages", 401, {}, b"") is None
    unauthorized = {"status": "Error", "error": "Unauthorized"}
    assert gateway_refusal(post_cp, "/p", 422, unauthorized, b"") is not None
    assert gateway_refusal(post_cp, "/p", 422, {"status": "Error", "error": "Name can't be blank"}, b"") is None
    assert gateway_refusal(post_cp, "/p", 404, None, b"<h1>502 Bad Gateway</h1>") is not None
    assert gateway_refusal(post_cp, "/p", 404, {"status": "Error", "error": "not found"}, b"") is None
    assert gateway_refusal(get_cp, bp, 502, None, b"") is not None
    assert gateway_refusal(post_cp, "/p", 502, None, b"") is None  # a POST's 502 proves nothing


def test_unwrap_both_families() -> None:
    assert unwrap({"status": "OK", "data": {"a": 1}}, INFO) == {"a": 1}
    assert unwrap({"success": True, "data": {"b": 2}}, INFO) == {"b": 2}
    for bad in (None, [], {"status": "Error", "error": "x"}, {"success": False, "errors": []}, {"data": []}):
        with pytest.raises(ProtocolError):
            unwrap(bad, INFO)


@pytest.mark.parametrize("status,body,expected", [
    (401, {"success": False, "errors": [{"code": "unauthorized", "message": "401 Unauthorized"}]}, AuthError),
    (401, {"message": "401 Unauthorized", "status": "Failure"}, AuthError),
    (422, {"status": "Error", "error": "Unauthorized"}, AuthError),
    (403, {"message": "403 Forbidden", "status": "module_permission_missing"}, FeatureDisabledError),
    (403, {"error": "nope"}, AuthError),
    (404, {"success": False, "errors": [{"code": "not_found", "message": "Not found"}]}, NotFoundError),
    (422, {"status": "Error", "error": "Package not found"}, NotFoundError),
    (422, {"success": False, "errors": [{"field": "booking_credits", "message": "Booking credit x not found"}]},
     RemoteValidationError),
    (422, {"success": False, "errors": [{"code": "invalid", "field": "total_bookings", "message": "too low"}]},
     RemoteValidationError),
    (404, None, ProtocolError),
    (404, {"status": "Error", "error": "Bad Gateway"}, UnavailableError),
    (503, None, UnavailableError),
    (302, None, ProtocolError),
])
def test_error_mapping(status: int, body: object, expected: type) -> None:
    err = error_for(status, body, "<html>x</html>" if body is None else "", INFO, fallback_configured=True)
    assert type(err) is expected
    assert err.status == status and err.request is INFO
    assert str(err).startswith("GET /platform/v1/payment/packages/x via gateway")


def test_validation_error_carries_field_messages() -> None:
    body = {"success": False, "errors": [{"code": "invalid", "field": "valid_until", "message": "must be in the future"}]}
    err = error_for(422, body, "", INFO, fallback_configured=True)
    assert isinstance(err, RemoteValidationError)
    assert err.field_errors == [{"field": "valid_until", "message": "must be in the future", "code": "invalid"}]
    assert "valid_until: must be in the future" in str(err)


def test_auth_error_without_fallback_says_to_configure_it() -> None:
    info = RequestInfo("GET", "/business/payments/v1/client_packages/x", "gateway")
    err = error_for(401, {"success": False, "errors": [{"message": "Unauthorized"}]}, "", info, fallback_configured=False)
    assert "VCITA_FALLBACK_URL" in (err.hint or "")


RAW_PACKAGE = {
    "id": "pkg0000000000001", "name": "Piano 10", "currency": "usd", "price": "223.5", "total_price": "223.5",
    "expiration": 3, "expiration_unit": "m", "discount_amount": "15.0", "discount_unit": "f",
    "online_payment_enabled": "false", "active": "true", "order": "2", "deleted_at": None, "image_path": "",
    "items": [{"total_bookings": "10", "services": [{"id": "svc1", "name": "Piano"}, {"id": "svc2", "name": "X"}]}],
    "products": [{"id": "prod1", "name": "Book", "quantity": "2"}], "unknown_new_field": 1,
}

RAW_CLIENT_PACKAGE = {
    "active": "true", "amount": 100, "bookings_usage": "0", "client_id": "c1", "conversation_id": "m1",
    "currency": "USD", "id": "cp1", "name": "Music", "package_id": "p1", "payment_request_id": "pr1",
    "payment_request_state": "pending", "valid_from": "2020-06-01", "valid_until": "2020-07-01",
    "booking_credits": [{"id": "bc1", "total_bookings": "10", "bookings_usage": "3",
                         "credit_items": [{"item_id": "svc1", "item_type": "SERVICE", "bookings_usage": 0},
                                          {"item_id": "prod", "item_type": "PRODUCT"}]}],
}


def test_normalise_catalog_package() -> None:
    p = normalize.catalog_package(RAW_PACKAGE)
    assert (p.price, p.currency, p.expiration_unit, p.discount_amount, p.discount_unit) == (
        Decimal("223.5"), "USD", "M", Decimal("15.0"), "F")
    assert p.online_payment_enabled is False and p.active is True and p.order == 2 and p.image_path is None
    assert p.items is not None and p.items[0].total_bookings == 10 and p.items[0].services == ("svc1", "svc2")
    assert p.products[0].quantity == 2
    assert normalize.catalog_package({**RAW_PACKAGE, "items": None}).items is None


def test_normalise_client_package() -> None:
    cp = normalize.client_package(RAW_CLIENT_PACKAGE)
    assert cp.price == Decimal(100) and cp.matter_uid == "m1" and cp.active is True
    assert (cp.valid_from, cp.valid_until) == (date(2020, 6, 1), date(2020, 7, 1))
    bc = cp.booking_credits[0]
    assert (bc.total_bookings, bc.bookings_usage, bc.services) == (10, 3, ("svc1",))
    legacy = normalize.client_package({**RAW_CLIENT_PACKAGE, "payment_request_id": None, "payment_status_uid": "ps1"})
    assert legacy.payment_request_id == "ps1"


@pytest.mark.parametrize("bad", [{"expiration": "three"}, {"expiration_unit": "q"}, {"price": "abc"}, {"active": "maybe"}])
def test_unreadable_values_are_refused_naming_the_field(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        normalize.catalog_package({**RAW_PACKAGE, **bad})


@given(st.integers(min_value=0, max_value=10**6), st.booleans())
def test_numbers_and_booleans_as_strings_normalise_like_the_real_values(n: int, flag: bool) -> None:
    assert normalize.to_int(str(n)) == normalize.to_int(n) == normalize.to_int(f"{n}.0") == n
    assert normalize.to_bool(str(flag).lower()) is normalize.to_bool(flag) is flag


@given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False))
def test_decimals_are_sent_as_exact_json_numbers(price: Decimal) -> None:
    sent = encode_body({"price": price}).decode()
    assert Decimal(sent.split(":", 1)[1].rstrip("}")) == price


def test_encode_body_dates_and_tuples() -> None:
    assert encode_body({"d": date(2026, 3, 15), "t": ("a",), "n": Decimal(25)}) == b'{"d":"2026-03-15","n":25,"t":["a"]}'
    with pytest.raises(TypeError):
        encode_body({"x": object()})


def test_retry_policy_rules() -> None:
    import httpx

    p = RetryPolicy(max_attempts=4, base_delay=1, max_delay=5, jitter=0.5, rng=random.Random(1))
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 5), (9, 5)]:
        d = p.backoff(attempt)
        assert ceiling / 2 <= d <= ceiling
    assert p.wait_for(1, 120.0) == 60.0 and p.wait_for(1, 3.0) == 3.0
    assert p.can_retry_status(429, idempotent=False) and p.can_retry_status(503, idempotent=True)
    assert not p.can_retry_status(503, idempotent=False) and not p.can_retry_status(422, idempotent=True)
    req = httpx.Request("POST", "http://x")
    assert p.can_retry_exception(httpx.ConnectError("refused", request=req), idempotent=False)
    assert not p.can_retry_exception(httpx.ReadTimeout("slow", request=req), idempotent=False)
    assert p.can_retry_exception(httpx.ReadTimeout("slow", request=req), idempotent=True)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_parse_retry_after() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("3", now=now) == 3.0
    assert parse_retry_after("0.25", now=now) == 0.25
    assert parse_retry_after(format_datetime(now + timedelta(seconds=7), usegmt=True), now=now) == 7.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=7), usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None and parse_retry_after(None) is None


@pytest.mark.anyio
async def test_rate_limiter_spaces_request_starts() -> None:
    limiter = RateLimiter(rate=200.0, burst=1)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for _ in range(11):
        await limiter.acquire()
    assert loop.time() - t0 >= 0.045  # 10 intervals of 5 ms
    limiter.pause_for(0.03)
    t1 = loop.time()
    await limiter.acquire()
    assert loop.time() - t1 >= 0.025
    with pytest.raises(ValueError):
        RateLimiter(rate=0)


@pytest.mark.anyio
async def test_unlimited_rate_limiter_does_not_wait() -> None:
    limiter = RateLimiter(rate=None)
    others: list[str] = []
    # Scheduled now, it runs only when this task suspends: an acquire that waited (a sleep, the
    # lock) would let it run before the loop ends.
    other = asyncio.ensure_future(asyncio.sleep(0, result="ran"))
    other.add_done_callback(lambda f: others.append(f.result()))
    for _ in range(1000):
        await limiter.acquire()
    assert others == []
    await other
    assert others == ["ran"]
    # Unlimited still honours a pause (a server's Retry-After), unless the caller waited it out.
    loop = asyncio.get_running_loop()
    limiter.pause_for(0.03)
    t0 = loop.time()
    await limiter.acquire(skip_pause=True)
    assert loop.time() - t0 < 0.025
    await limiter.acquire()
    assert loop.time() - t0 >= 0.025


@pytest.mark.anyio
async def test_aimd_halves_once_per_congestion_and_recovers() -> None:
    lim = AdaptiveConcurrency(16, increase_every=3)
    async with lim.slot() as a, lim.slot() as b:
        lim.on_throttled(a)
        lim.on_throttled(b)  # same generation: already counted
    assert lim.limit == 8 and lim.decreases == 1
    async with lim.slot() as c:
        lim.on_throttled(c)
    assert lim.limit == 4
    for _ in range(6):
        async with lim.slot() as t:
            lim.on_success(t)
    assert lim.limit == 6
    for _ in range(10):
        async with lim.slot() as t:
            lim.on_throttled(t)
    assert lim.limit == 1 == lim.minimum


@pytest.mark.anyio
async def test_aimd_bounds_in_flight_requests() -> None:
    lim = AdaptiveConcurrency(3)
    peak = 0

    async def work() -> None:
        nonlocal peak
        async with lim.slot():
            peak = max(peak, lim.in_flight)
            await asyncio.sleep(0.001)

    await asyncio.gather(*(work() for _ in range(50)))
    assert peak == 3 and lim.in_flight == 0

    # a cancelled waiter gives its place back
    async with lim.slot(), lim.slot(), lim.slot():
        waiter = asyncio.ensure_future(work())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    assert lim.in_flight == 0 and not lim._waiters

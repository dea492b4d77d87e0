"""No secrets in output: a canary token drives successes, retries, fallbacks and every kind of
failure, and must never appear in logs (every logger, DEBUG), exceptions, reprs or tracebacks."""

from __future__ import annotations

import logging
import traceback
from datetime import date
from typing import Any

import pytest
from remote_support import Sbx, fast_settings

from reconciler.core.errors import ReconcilerError
from reconciler.remote import DEFAULT_ROUTES, Door, Secret

pytestmark = pytest.mark.anyio

CANARY_BUSINESS = "cnry7xq2m9v4k1p8"
CANARY = f"sbx_staff_{CANARY_BUSINESS}"  # the sandbox's token for a business with this id
BAD_CANARY = "canary-bad-token-7f3a9c"


def renderings(exc: BaseException) -> list[str]:
    out = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    if isinstance(exc, ReconcilerError):
        out += [exc.message, str(exc.hint), repr(getattr(exc, "request", None)), repr(vars(exc))]
    return out


async def test_canary_token_never_appears(sbx: Sbx, caplog: pytest.LogCaptureFixture) -> None:
    made = await sbx.operator.call("POST", "/_sandbox/businesses",
                                   {"id": CANARY_BUSINESS, "name": "Canary", "services": 2, "clients": 2})
    assert made["staff_token"] == CANARY
    target = sbx.target_with(business_id=CANARY_BUSINESS, staff_token=Secret(CANARY), directory_token=None)
    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx, httpcore, the sandbox's
    seen: list[str] = [repr(target), str(target), target.describe()]
    errors: list[BaseException] = []

    async def expect_error(coro: Any) -> None:
        try:
            await coro
        except ReconcilerError as exc:
            errors.append(exc)
        else:
            raise AssertionError("expected an error")

    settings = fast_settings()
    async with sbx.client(target=target, settings=settings,
                          routes=DEFAULT_ROUTES.with_doors(Door.GATEWAY)) as api:
        service = (await api.list_services())[0]
        client = (await api.list_clients())[0]
        package = await api.create_catalog_package({
            "name": "Canary pack", "price": 10, "currency": "USD", "expiration": 1, "expiration_unit": "M",
            "items": [{"total_bookings": 2, "services": [{"id": service.id}]}], "products": []})
        cp = await api.create_client_package({"client_id": client.id, "package_id": package.id})
        await api.get_client_package(cp.id)  # gateway 401 -> fallback
        await api.list_catalog_packages()  # gateway 422 -> fallback
        await expect_error(api.update_client_package(cp.id, valid_until=date(2001, 1, 1)))  # 422
        await expect_error(api.get_client_package("zzzzzzzzzzzzzzzz"))  # 404
        await sbx.operator.fault(method="GET", path="/platform/v1/clients", status=503)
        await expect_error(api.list_clients())  # retried, unavailable
        await sbx.operator.fault(method="POST", path="/platform/v1/payment/client_packages", drop_after_commit=True)
        await expect_error(api.create_client_package({"client_id": client.id, "package_id": package.id}))
        seen += [repr(api), repr(api.history), repr(api.settings)]
        assert any(s.fell_back for s in api.history)

    async with sbx.client(target=sbx.target_with(staff_token=Secret(BAD_CANARY))) as api:
        await expect_error(api.list_services())  # 401

    kinds = {type(e).__name__ for e in errors}
    assert kinds == {"RemoteValidationError", "NotFoundError", "UnavailableError", "OutcomeUnknownError",
                     "AuthError"}
    for exc in errors:
        seen += renderings(exc)
    seen += [caplog.text] + [repr(r.__dict__) for r in caplog.records]
    ours = [r for r in caplog.records if r.name == "reconciler.remote" and r.levelno == logging.DEBUG]
    assert ours and all(" via " in r.getMessage() for r in ours)  # method, path, door, status, elapsed
    for text in seen:
        assert CANARY not in text and BAD_CANARY not in text

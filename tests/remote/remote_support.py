"""Helpers of the remote client's tests: fast settings, a sleep recorder, the sandbox operator."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from reconciler.remote import ClientSettings, RetryPolicy, Target, VcitaClient
from reconciler.sandbox import DEMO

BUSINESS = DEMO["business"]["id"]
SERVICES = [s["id"] for s in DEMO["services"]]
CLIENTS = DEMO["clients"]


def fast_settings(**overrides: Any) -> ClientSettings:
    """Test settings: real retries with tiny delays."""
    retry = RetryPolicy(max_attempts=overrides.pop("max_attempts", 3), base_delay=0.001,
                        max_delay=0.005, rng=random.Random(0))
    return ClientSettings(**{"concurrency": 8, "rate": None, "timeout": 5.0, "retry": retry, **overrides})


class SleepRecorder:
    """An injected sleep that records each requested wait and yields without waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


class Operator:
    """The sandbox's operator API (``/_sandbox``) over HTTP."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, path, json=body)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json()

    async def fault(self, **spec: Any) -> int:
        return int((await self.call("POST", "/_sandbox/faults", spec))["id"])

    async def gateway(self, routes: list[dict[str, Any]]) -> None:
        await self.call("PUT", "/_sandbox/gateway", {"routes": routes})

    async def hits(self, door: str | None = None, method: str | None = None, route: str | None = None) -> int:
        rows = (await self.call("GET", "/_sandbox/stats"))["requests"]
        return sum(r["count"] for r in rows if (door is None or r["door"] == door)
                   and (method is None or r["method"] == method) and (route is None or r["route"] == route))

    async def clear_stats(self) -> None:
        await self.call("DELETE", "/_sandbox/stats")

    async def client_packages(self, business_id: str = BUSINESS) -> list[dict[str, Any]]:
        return (await self.call("GET", f"/_sandbox/client_packages?business_id={business_id}"))["client_packages"]

    async def bulk_client_packages(self, package_id: str, count: int) -> list[str]:
        body = {"business_id": BUSINESS, "package_id": package_id, "count": count}
        return list((await self.call("POST", "/_sandbox/bulk/client_packages", body))["ids"])

    async def bulk_packages(self, count: int) -> list[str]:
        return list((await self.call("POST", "/_sandbox/bulk/packages", {"business_id": BUSINESS, "count": count}))["ids"])


@dataclass
class Sbx:
    """One way of reaching a sandbox: how to build a client for it, and its operator."""

    kind: str
    target: Target
    operator: Operator
    transport: httpx.AsyncBaseTransport | None = None

    def client(self, *, target: Target | None = None, **kwargs: Any) -> VcitaClient:
        settings = kwargs.pop("settings", None) or fast_settings()
        kwargs.setdefault("transport", self.transport)
        return VcitaClient(target or self.target, settings=settings, **kwargs)

    def target_with(self, **changes: Any) -> Target:
        return dataclasses.replace(self.target, **changes)


def package_body(**overrides: Any) -> dict[str, Any]:
    """A valid catalog-package create body in API field names."""
    body: dict[str, Any] = {
        "name": "Piano 10", "price": Decimal("223.50"), "currency": "USD", "expiration": 3,
        "expiration_unit": "M", "items": [{"total_bookings": 10, "services": [{"id": SERVICES[0]}]}],
        "products": [], "discount_amount": Decimal(15), "discount_unit": "F",
        "online_payment_enabled": False, "description": "Ten piano lessons",
    }
    body.update(overrides)
    return body

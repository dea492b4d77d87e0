"""Helpers for the sandbox tests: `api` wraps a freshly reset served sandbox with one HTTP client.

`api.call(door, method, path, token=..., **httpx_kwargs)` sends an API request through a door
(`"gateway"` or `"fallback"`); `api.op(method, path, json=...)` calls the operator API and fails
the test on an error status; `api.make_package(...)` and `api.make_client_package(...)` create
objects through the fallback door the way the recipes do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sandbox_demo import CLIENTS, SERVICES, STAFF

from reconciler.sandbox import ServedSandbox


class SandboxApi:
    def __init__(self, served: ServedSandbox, http: httpx.Client) -> None:
        self.served = served
        self.http = http
        self.doors = {"gateway": served.gateway_url, "fallback": served.fallback_url}

    def call(self, door: str, method: str, path: str, *, token: str | None = STAFF,
             headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers.setdefault("Authorization", f"Bearer {token}")
        return self.http.request(method, self.doors[door] + path, headers=all_headers, **kwargs)

    def op(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, self.served.operator_url + path, **kwargs)
        assert response.status_code < 400, (response.status_code, response.text)
        return response.json()

    def make_package(self, token: str = STAFF, **fields: Any) -> dict[str, Any]:
        body = {"name": "10 Piano Lessons", "price": 250, "currency": "USD", "expiration": 3,
                "expiration_unit": "M", "products": [],
                "items": [{"total_bookings": 10, "services": [{"id": SERVICES[0]}]}]}
        body.update(fields)
        response = self.call("fallback", "POST", "/platform/v1/payment/packages", token=token,
                             json=body)
        assert response.status_code == 201, response.text
        return response.json()["data"]["package"]

    def make_client_package(self, package_id: str, client_id: str = CLIENTS[0],
                            token: str = STAFF, **fields: Any) -> dict[str, Any]:
        body = {"client_id": client_id, "package_id": package_id, **fields}
        response = self.call("fallback", "POST", "/platform/v1/payment/client_packages",
                             token=token, json=body)
        assert response.status_code == 201, response.text
        return response.json()["data"]["client_package"]

    def new_business(self, **spec: Any) -> dict[str, Any]:
        spec.setdefault("name", "Other Studio")
        spec.setdefault("services", 2)
        spec.setdefault("clients", 3)
        return self.op("POST", "/businesses", json=spec)


@pytest.fixture
def api(sandbox: ServedSandbox) -> Iterator[SandboxApi]:
    with httpx.Client(timeout=10) as http:
        yield SandboxApi(sandbox, http)

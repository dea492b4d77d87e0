"""NaN and the infinities in a request body: refused as the real API refuses them, never stored,
never echoed.

``NaN``, ``Infinity`` and ``-Infinity`` are not JSON (RFC 8259); a Rails JSON parser refuses the
body (400, as any body that is not JSON).  A number too large for a float (``1e400``) is valid
JSON but no value: 422.  Before, the sandbox read them (Python's json module does), validated
the numeric fields it knows, and stored and echoed the others: a 201 whose body was not JSON
(``"conversation_id":NaN``), served again by every later GET and list.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler.sandbox import DEMO

CLIENTS = [c["id"] for c in DEMO["clients"]]
SandboxApi = Any


def _strict(content: bytes) -> Any:
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in an answer: not JSON")
    return json.loads(content, parse_constant=refuse)


SLOT = "<value>"


def _bodies(package: dict[str, Any], cp: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(method, path, JSON text with a SLOT, family) for every route that reads a body."""
    credit, pid = cp["booking_credits"][0]["id"], package["id"]
    return [
        ("POST", "/platform/v1/payment/packages",
         '{"name": "x", "price": 10, "currency": "USD", "expiration": 1, "expiration_unit": "M", "products": [], '
         '"items": [], "description": <value>}', "platform"),
        ("PUT", f"/platform/v1/payment/packages/{pid}", '{"package": {"description": <value>}}', "platform"),
        ("PUT", "/business/payments/v1/packages/reorder", f'{{"packages": [{{"id": "{pid}", "order": <value>}}]}}',
         "payments"),
        ("POST", "/platform/v1/payment/client_packages",
         f'{{"client_id": "{CLIENTS[1]}", "package_id": "{pid}", "matter_uid": <value>}}', "platform"),
        ("PUT", f"/business/payments/v1/client_packages/{cp['id']}",
         f'{{"client_package": {{"booking_credits": [{{"id": "{credit}", "total_bookings": <value>}}]}}}}', "payments"),
        ("POST", "/platform/v1/payment/client_packages/update_usage",
         f'{{"client_id": "{CLIENTS[0]}", "payment_status_id": <value>}}', "platform"),
    ]


@pytest.fixture
def scene(api: SandboxApi) -> tuple[dict[str, Any], dict[str, Any]]:
    package = api.make_package()
    return package, api.make_client_package(package["id"])


def _objects(api: SandboxApi) -> list[str]:
    conn = api.served.app.state.sandbox.store.conn()
    return [row[0] for row in conn.execute("SELECT doc FROM objects ORDER BY id")]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "[1, NaN]", '{"n": Infinity}'])
def test_a_body_holding_nan_or_an_infinity_is_refused_as_not_json(api: SandboxApi, scene: Any, literal: str) -> None:
    before = _objects(api)
    for method, path, text, family in _bodies(*scene):
        r = api.call("fallback", method, path, content=text.replace(SLOT, literal), headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (method, path, r.status_code, r.text)
        body = _strict(r.content)  # the error itself is JSON, in the route's envelope
        assert (body.get("status") == "Error") if family == "platform" else (body.get("success") is False), body
        assert b"NaN" not in r.content and b"Infinity" not in r.content
    assert _objects(api) == before  # nothing stored, nothing changed


@pytest.mark.parametrize("literal", ["1e400", "-1E999", "[2, 1e309]"])
def test_a_number_too_large_for_a_float_is_a_422(api: SandboxApi, scene: Any, literal: str) -> None:
    before = _objects(api)
    for method, path, text, _ in _bodies(*scene):
        r = api.call("fallback", method, path, content=text.replace(SLOT, literal), headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and "out of range" in r.text, (method, path, r.status_code, r.text)
        _strict(r.content)
    assert _objects(api) == before


def test_every_answer_and_stored_document_stays_json(api: SandboxApi, scene: Any) -> None:
    # the fields that took NaN before (no validation of their own) take ordinary values as before
    package, _ = scene
    made = api.call("fallback", "POST", "/platform/v1/payment/client_packages",
                    json={"client_id": CLIENTS[2], "package_id": package["id"], "matter_uid": "m-7", "price": 1e300})
    assert made.status_code in (201, 422), made.text
    _strict(made.content)
    listed = api.call("gateway", "GET", "/business/payments/v1/payment_requests?per_page=100")
    _strict(listed.content)
    for doc in _objects(api):
        _strict(doc.encode())

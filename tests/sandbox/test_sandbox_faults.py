"""Injected faults (latency, status at a rate, 429 + Retry-After, drop after commit), the gateway
failure table, and request statistics."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from reconciler.sandbox import DEMO, ResponseDropped

BUSINESS = DEMO["business"]["id"]
CLIENTS = [c["id"] for c in DEMO["clients"]]
STAFF = DEMO["tokens"]["staff"]
CP = "/business/payments/v1/client_packages/"


def count_client_packages(api) -> int:
    return len(api.op("GET", "/client_packages", params={"business_id": BUSINESS})
               ["client_packages"])


def test_latency_fault_delays_only_matching_requests(api):
    api.op("POST", "/faults", json={"method": "GET", "path": "/platform/v1/clients",
                                    "door": "fallback", "latency_ms": 200})
    start = time.perf_counter()
    assert api.call("fallback", "GET", "/platform/v1/clients").status_code == 200
    assert time.perf_counter() - start >= 0.2
    start = time.perf_counter()
    assert api.call("gateway", "GET", "/platform/v1/clients").status_code == 200
    assert api.call("fallback", "GET", "/platform/v1/services",
                    params={"business_id": BUSINESS}).status_code == 200
    assert time.perf_counter() - start < 0.2


def test_latency_is_a_round_trip_and_a_client_giving_up_does_not_undo_a_write(api):
    # Half the latency before executing, half before answering; a request that arrived is
    # executed even when its client gave up meanwhile (what makes a create's outcome unknown).
    package = api.make_package()
    api.op("POST", "/faults", json={"method": "POST", "path": "/platform/v1/payment/client_*",
                                    "latency_ms": 1200})
    create = {"client_id": CLIENTS[0], "package_id": package["id"]}
    with pytest.raises(httpx.ReadTimeout):
        api.call("fallback", "POST", "/platform/v1/payment/client_packages", json=create, timeout=0.2)
    assert count_client_packages(api) == 0  # still on its way in (0.6 s)
    time.sleep(0.8)
    assert count_client_packages(api) == 1  # executed; its answer is on its way back
    start = time.perf_counter()
    assert api.call("fallback", "POST", "/platform/v1/payment/client_packages", json=create).status_code == 201
    assert time.perf_counter() - start >= 1.2 and count_client_packages(api) == 2


def test_status_fault_at_a_rate_answers_before_executing(api):
    package = api.make_package()
    api.op("POST", "/faults", json={"method": "POST", "path": "/platform/v1/payment/client_*",
                                    "status": 503, "rate": 0.5})
    statuses = []
    for _ in range(120):
        response = api.call("fallback", "POST", "/platform/v1/payment/client_packages",
                            json={"client_id": CLIENTS[0], "package_id": package["id"]})
        statuses.append(response.status_code)
        if response.status_code == 503:
            assert response.json() == {"status": "Error", "error": "Service Unavailable"}
    failed = statuses.count(503)
    assert 25 <= failed <= 95 and statuses.count(201) == 120 - failed
    assert count_client_packages(api) == 120 - failed


def test_status_fault_rate_zero_never_fires_and_times_limits_firing(api):
    api.op("POST", "/faults", json={"path": "/platform/v1/clients", "status": 500, "rate": 0})
    assert all(api.call("fallback", "GET", "/platform/v1/clients").status_code == 200
               for _ in range(20))
    api.op("DELETE", "/faults")
    api.op("POST", "/faults", json={"path": "/business/payments/v1/*", "status": 500,
                                    "times": 2})
    statuses = [api.call("fallback", "GET", CP + "zzzzzzzzzzzzzzzz").status_code
                for _ in range(4)]
    assert statuses == [500, 500, 404, 404]
    assert api.op("GET", "/faults")["faults"] == []


def test_429_with_retry_after(api):
    api.op("POST", "/faults", json={"method": "*", "path": "/platform/v1/clients",
                                    "status": 429, "retry_after": 3, "times": 1})
    limited = api.call("gateway", "GET", "/platform/v1/clients")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "3"
    assert limited.json()["status"] == "Error"
    assert api.call("gateway", "GET", "/platform/v1/clients").status_code == 200


def test_drop_after_commit_served_is_a_transport_error_and_the_write_is_kept(api):
    package = api.make_package()
    api.op("POST", "/faults", json={"method": "POST", "door": "fallback",
                                    "path": "/platform/v1/payment/client_packages",
                                    "drop_after_commit": True, "times": 1})
    with pytest.raises(httpx.RemoteProtocolError):
        api.call("fallback", "POST", "/platform/v1/payment/client_packages",
                 json={"client_id": CLIENTS[0], "package_id": package["id"]})
    assert count_client_packages(api) == 1
    # the next one is answered normally (times: 1)
    api.make_client_package(package["id"])
    assert count_client_packages(api) == 2


def test_drop_after_commit_on_an_update(api):
    package = api.make_package()
    cp = api.make_client_package(package["id"])
    api.op("POST", "/faults", json={"method": "PUT", "path": CP + "*",
                                    "drop_after_commit": True})
    with pytest.raises(httpx.TransportError):
        api.call("fallback", "PUT", CP + cp["id"],
                 json={"client_package": {"valid_until": "2099-02-02"}})
    api.op("DELETE", "/faults")
    shown = api.call("fallback", "GET", CP + cp["id"]).json()["data"]["client_package"]
    assert shown["valid_until"] == "2099-02-02"


def test_drop_after_commit_in_process_raises_response_dropped(sandbox_app_factory):
    app = sandbox_app_factory()

    async def scenario() -> int:
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {STAFF}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox",
                                     headers=headers) as client:
            package = (await client.post("/api2/platform/v1/payment/packages", json={
                "name": "P", "price": 1, "currency": "USD", "expiration": 1,
                "expiration_unit": "M", "products": [],
                "items": [{"total_bookings": 1,
                           "services": [{"id": DEMO["services"][0]["id"]}]}]})).json()
            fault = await client.post("/_sandbox/faults", json={
                "path": "/platform/v1/payment/client_packages", "drop_after_commit": True})
            assert fault.status_code == 201
            with pytest.raises(ResponseDropped):
                await client.post("/api2/platform/v1/payment/client_packages", json={
                    "client_id": CLIENTS[0], "package_id": package["data"]["package"]["id"]})
            listed = await client.get("/_sandbox/client_packages",
                                      params={"business_id": BUSINESS})
            return len(listed.json()["client_packages"])

    assert asyncio.run(scenario()) == 1


def test_bad_faults_are_refused(api):
    for spec in ({"status": 999}, {"rate": 2, "status": 500}, {"door": "side", "status": 500},
                 {"path": "/x"}, {"status": 500, "colour": "red"}):
        response = api.http.post(api.served.operator_url + "/faults", json=spec)
        assert response.status_code == 400, spec
    created = api.op("POST", "/faults", json={"status": 502})
    assert api.op("GET", "/faults")["faults"][0]["id"] == created["id"]
    assert api.op("DELETE", f"/faults/{created['id']}")["faults"] == []


def test_default_gateway_table_refuses_without_executing(api):
    package = api.make_package()
    cp = api.make_client_package(package["id"])
    assert api.op("GET", "/gateway")["routes"][0]["path"] == "/business/payments/v1/*"
    listed = api.call("gateway", "GET", "/platform/v1/payment/packages")
    assert (listed.status_code, listed.json()) == (422, {"status": "Error", "error": "Unauthorized"})
    changed = api.call("gateway", "PUT", CP + cp["id"],
                       json={"client_package": {"valid_until": "2099-03-03"}})
    assert changed.status_code == 401
    assert changed.json() == {"success": False,
                              "errors": [{"code": "unauthorized", "message": "Unauthorized"}]}
    shown = api.call("fallback", "GET", CP + cp["id"]).json()["data"]["client_package"]
    assert shown["valid_until"] == cp["valid_until"]
    # the rest of the gateway works, including the routes whose fallback flag was removed
    assert api.call("gateway", "GET", f"/platform/v1/payment/packages/{package['id']}"
                    ).status_code == 200
    assert api.call("gateway", "POST", "/platform/v1/payment/client_packages", json={
        "client_id": CLIENTS[1], "package_id": package["id"]}).status_code == 201


def test_gateway_table_can_be_fixed_or_broken_differently(api):
    package = api.make_package()
    api.op("PUT", "/gateway", json={"routes": []})
    assert api.call("gateway", "GET", "/platform/v1/payment/packages").status_code == 200
    cp = api.make_client_package(package["id"])
    assert api.call("gateway", "GET", CP + cp["id"]).status_code == 200
    api.op("PUT", "/gateway", json={"routes": [
        {"method": "*", "path": "/platform/v1/payment/*", "status": 502, "body": "Bad Gateway"},
        {"method": "GET", "path": "/business/*", "status": 404,
         "body": {"message": "Not Found: bad gateway"}}]})
    bad = api.call("gateway", "POST", "/platform/v1/payment/client_packages",
                   json={"client_id": CLIENTS[0], "package_id": package["id"]})
    assert bad.status_code == 502 and bad.text == "Bad Gateway"
    assert bad.headers["content-type"].startswith("text/plain")
    missing = api.call("gateway", "GET", CP + cp["id"])
    assert missing.status_code == 404 and "bad gateway" in missing.text.lower()
    assert count_client_packages(api) == 1
    assert api.call("fallback", "GET", CP + cp["id"]).status_code == 200
    assert api.call("fallback", "POST", "/platform/v1/payment/client_packages", json={
        "client_id": CLIENTS[0], "package_id": package["id"]}).status_code == 201


def test_gateway_failures_option_of_create_app(sandbox_app_factory):
    app = sandbox_app_factory(gateway_failures=[])

    async def scenario() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            response = await client.get("/apigw/platform/v1/payment/packages",
                                        headers={"Authorization": f"Bearer {STAFF}"})
            return response.status_code

    assert asyncio.run(scenario()) == 200


def test_stats_count_requests_by_door_method_and_route(api):
    api.op("DELETE", "/stats")
    api.call("gateway", "GET", "/platform/v1/clients")
    api.call("fallback", "GET", CP + "aaaaaaaaaaaaaaaa")
    api.call("fallback", "GET", CP + "bbbbbbbbbbbbbbbb")
    api.call("gateway", "GET", CP + "bbbbbbbbbbbbbbbb")
    api.call("fallback", "GET", "/no/such/path")
    stats = api.op("GET", "/stats")
    rows = {(r["door"], r["method"], r["route"]): r["count"] for r in stats["requests"]}
    assert rows == {("gateway", "GET", "/platform/v1/clients"): 1,
                    ("fallback", "GET", "/business/payments/v1/client_packages/{uid}"): 2,
                    ("gateway", "GET", "/business/payments/v1/client_packages/{uid}"): 1,
                    ("fallback", "GET", "unmatched"): 1}
    assert stats["total"] == 5
    assert api.op("DELETE", "/stats")["total"] == 0

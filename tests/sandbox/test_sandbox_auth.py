"""Token rules (API-NOTES §4, §5) and isolation between businesses."""

from __future__ import annotations

import pytest

from reconciler.sandbox import DEMO

STAFF = DEMO["tokens"]["staff"]
DIRECTORY = DEMO["tokens"]["directory"]
BUSINESS = DEMO["business"]["id"]
CLIENT = DEMO["clients"][0]["id"]

DOORKEEPER = {"success": False, "errors": [{"code": "unauthorized", "message": "401 Unauthorized"}]}
CONTEXT = {"success": False, "errors": [{"code": "unauthorized", "message": "Unauthorized"}]}
XOBO = {"X-On-Behalf-Of": BUSINESS}


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer not-a-token"},
    {"Authorization": f"Token token=\"{STAFF}\""},
    {"Authorization": STAFF},
])
def test_missing_or_invalid_token_is_doorkeeper_401(api, headers):
    for path in ("/platform/v1/clients", "/business/payments/v1/client_packages/abc"):
        response = api.call("fallback", "GET", path, token=None, headers=headers)
        assert response.status_code == 401
        assert response.json() == DOORKEEPER


def test_jwt_shaped_unknown_token_gets_the_jwt_body(api):
    response = api.call("fallback", "GET", "/platform/v1/clients", token="eyJhbGc.eyJzdWI.c2ln")
    assert response.status_code == 401
    assert response.json() == {"message": "401 Unauthorized", "status": "Failure"}


def test_directory_token_lists_packages_and_clients_with_xobo(api):
    api.make_package()
    packages = api.call("fallback", "GET", "/platform/v1/payment/packages", token=DIRECTORY,
                        headers=XOBO)
    assert packages.status_code == 200
    assert len(packages.json()["data"]["packages"]) == 1
    clients = api.call("fallback", "GET", "/platform/v1/clients", token=DIRECTORY, headers=XOBO)
    assert clients.status_code == 200
    assert clients.json()["data"]["clients"][0]["id"] == CLIENT


def test_directory_token_without_xobo_is_context_401(api):
    response = api.call("fallback", "GET", "/platform/v1/clients", token=DIRECTORY)
    assert response.status_code == 401
    assert response.json() == CONTEXT


def test_directory_token_for_a_business_it_does_not_own(api):
    other = api.new_business(directory=True)
    for business in (other["business_id"], "zzzzzzzzzzzzzzzz"):
        response = api.call("fallback", "GET", "/platform/v1/clients", token=DIRECTORY,
                            headers={"X-On-Behalf-Of": business})
        assert response.status_code == 401
        assert response.json() == {"error": "Unauthorized"}


def test_directory_token_refused_where_the_recipes_saw_it_refused(api):
    package = api.make_package()
    client_package = api.make_client_package(package["id"])
    uid = client_package["id"]
    cases = [
        ("GET", f"/platform/v1/payment/packages/{package['id']}", None, 401, CONTEXT),
        ("GET", f"/business/payments/v1/client_packages/{uid}", None, 401, CONTEXT),
        ("PUT", f"/business/payments/v1/client_packages/{uid}",
         {"client_package": {"valid_until": "2099-01-01"}}, 401, CONTEXT),
        ("POST", "/platform/v1/payment/client_packages",
         {"client_id": CLIENT, "package_id": package["id"]}, 422,
         {"status": "Error", "error": "Unauthorized"}),
    ]
    for method, path, body, status, expected in cases:
        for headers in (XOBO, {}):
            response = api.call("fallback", method, path, token=DIRECTORY, headers=headers,
                                json=body)
            assert (response.status_code, response.json()) == (status, expected), (method, path)
    assert len(api.op("GET", "/client_packages", params={"business_id": BUSINESS})
               ["client_packages"]) == 1


def test_directory_token_may_create_and_update_catalog_packages_with_xobo(api):
    response = api.call("fallback", "POST", "/platform/v1/payment/packages", token=DIRECTORY,
                        headers=XOBO, json={"name": "Dir", "price": 1, "currency": "USD",
                                            "expiration": 1, "expiration_unit": "M",
                                            "products": [], "items": []})
    assert response.status_code == 201, response.text
    created = response.json()["data"]["package"]
    assert created["business_uid"] == BUSINESS
    update = api.call("fallback", "PUT", f"/platform/v1/payment/packages/{created['id']}",
                      token=DIRECTORY, headers=XOBO, json={"package": {"name": "Dir 2"}})
    assert update.status_code == 200
    assert update.json()["data"]["package"]["name"] == "Dir 2"


def test_services_are_staff_only_and_scoped_to_the_token_business(api):
    ok = api.call("fallback", "GET", "/platform/v1/services", params={"business_id": BUSINESS})
    assert ok.status_code == 200
    assert [s["id"] for s in ok.json()["data"]["services"]] == [s["id"] for s in DEMO["services"]]
    directory = api.call("fallback", "GET", "/platform/v1/services", token=DIRECTORY,
                         headers=XOBO, params={"business_id": BUSINESS})
    assert directory.status_code == 401
    other = api.new_business()
    foreign = api.call("fallback", "GET", "/platform/v1/services",
                       params={"business_id": other["business_id"]})
    assert foreign.status_code == 401
    assert "services" not in foreign.text
    missing = api.call("fallback", "GET", "/platform/v1/services")
    assert missing.status_code == 422


def test_staff_of_one_business_never_sees_another(api):
    package = api.make_package()
    client_package = api.make_client_package(package["id"])
    other = api.new_business(services=1, clients=1)
    token = other["staff_token"]
    mine = api.call("fallback", "GET", "/platform/v1/payment/packages", token=token)
    assert mine.json()["data"]["packages"] == []
    clients = api.call("fallback", "GET", "/platform/v1/clients", token=token).json()
    assert [c["id"] for c in clients["data"]["clients"]] == [other["clients"][0]["id"]]
    by_id = api.call("fallback", "GET", f"/platform/v1/payment/packages/{package['id']}",
                     token=token)
    assert by_id.status_code == 422
    put = api.call("fallback", "PUT", f"/platform/v1/payment/packages/{package['id']}",
                   token=token, json={"package": {"name": "stolen"}})
    assert put.status_code == 422
    uid = client_package["id"]
    got = api.call("fallback", "GET", f"/business/payments/v1/client_packages/{uid}", token=token)
    assert got.status_code == 404
    assert got.json()["success"] is False
    changed = api.call("fallback", "PUT", f"/business/payments/v1/client_packages/{uid}",
                       token=token, json={"client_package": {"valid_until": "2099-01-01"}})
    assert changed.status_code == 404
    # a client package of A's package for B's client, or of B's package for A's client: 422
    for client_id, package_id in ((other["clients"][0]["id"], package["id"]), (CLIENT, None)):
        own = api.make_package(token=token, items=[
            {"total_bookings": 1, "services": [{"id": other["services"][0]["id"]}]}])
        body = {"client_id": client_id, "package_id": package_id or own["id"]}
        response = api.call("fallback", "POST", "/platform/v1/payment/client_packages",
                            token=token, json=body)
        assert response.status_code == 422
        assert response.json()["status"] == "Error"
    untouched = api.call("fallback", "GET", f"/platform/v1/payment/packages/{package['id']}")
    assert untouched.json()["data"]["package"]["name"] == package["name"]
    # and A's package cannot use B's services
    response = api.call("fallback", "POST", "/platform/v1/payment/packages", json={
        "name": "x", "price": 1, "currency": "USD", "expiration": 1, "expiration_unit": "M",
        "products": [], "items": [{"total_bookings": 1,
                                   "services": [{"id": other["services"][0]["id"]}]}]})
    assert response.status_code == 422


def test_staff_token_ignores_x_on_behalf_of(api):
    other = api.new_business(clients=1)
    response = api.call("fallback", "GET", "/platform/v1/clients",
                        headers={"X-On-Behalf-Of": other["business_id"]})
    assert response.status_code == 200
    ids = {c["id"] for c in response.json()["data"]["clients"]}
    assert other["clients"][0]["id"] not in ids and CLIENT in ids

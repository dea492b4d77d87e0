"""Business rules of the covered operations: validation (422), feature gate (403), defaults,
deactivation, pagination, and the response quirks."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from reconciler.sandbox import DEMO

BUSINESS = DEMO["business"]["id"]
SERVICES = [s["id"] for s in DEMO["services"]]
CLIENTS = [c["id"] for c in DEMO["clients"]]
UID = re.compile(r"^[a-z0-9]{16}$")
CP = "/business/payments/v1/client_packages/"


def put_cp(api, uid, changes):
    return api.call("fallback", "PUT", CP + uid, json={"client_package": changes})


@pytest.fixture
def client_package(api):
    package = api.make_package(items=[
        {"total_bookings": 4, "services": [{"id": SERVICES[0]}, {"id": SERVICES[1]}]},
        {"total_bookings": 2, "services": [{"id": SERVICES[2]}]}])
    return api.make_client_package(package["id"], valid_from="2026-01-01",
                                   valid_until="2099-01-01")


def test_client_package_update_changes_only_valid_until_and_totals(api, client_package):
    credit = client_package["booking_credits"][0]["id"]
    response = put_cp(api, client_package["id"], {
        "valid_until": "2099-06-30", "valid_from": "2000-01-01", "amount": 1, "name": "x",
        "booking_credits": [{"id": credit, "total_bookings": 9}]})
    assert response.status_code == 200, response.text
    shown = response.json()["data"]["client_package"]
    assert response.json()["success"] is True
    assert shown["valid_until"] == "2099-06-30"
    assert shown["valid_from"] == "2026-01-01"
    assert shown["amount"] == client_package["amount"] and shown["name"] == client_package["name"]
    assert [c["total_bookings"] for c in shown["booking_credits"]] == ["9", "2"]
    assert shown["total_bookings"] == "11"
    again = api.call("fallback", "GET", CP + client_package["id"]).json()["data"]["client_package"]
    assert again == shown


def test_total_bookings_below_usage_is_422_and_changes_nothing(api, client_package):
    credit = client_package["booking_credits"][0]["id"]
    api.op("PUT", f"/client_packages/{client_package['id']}/usage",
           json={"booking_credit_id": credit, "bookings_usage": 3})
    response = put_cp(api, client_package["id"], {
        "valid_until": "2099-12-31", "booking_credits": [{"id": credit, "total_bookings": 2}]})
    assert response.status_code == 422
    body = response.json()
    assert body["success"] is False
    assert set(body["errors"][0]) >= {"code", "message"}
    assert body["errors"][0]["field"] == "total_bookings"
    shown = api.call("fallback", "GET", CP + client_package["id"]).json()["data"]["client_package"]
    assert shown["valid_until"] == "2099-01-01"
    assert shown["booking_credits"][0]["total_bookings"] == "4"
    assert shown["booking_credits"][0]["bookings_usage"] == "3"
    exhausted = put_cp(api, client_package["id"],
                       {"booking_credits": [{"id": credit, "total_bookings": 3}]})
    assert exhausted.status_code == 200


@pytest.mark.parametrize("valid_until", ["2000-01-01", "2025-12-31", "not-a-date", "2026/02/01"])
def test_valid_until_in_the_past_or_before_valid_from_or_junk_is_422(api, client_package,
                                                                     valid_until):
    api.op("PUT", "/clock", json={"today": "2025-06-01"})
    response = put_cp(api, client_package["id"], {"valid_until": valid_until})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "valid_until"


def test_valid_until_today_is_accepted(api, client_package):
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert put_cp(api, client_package["id"], {"valid_until": today}).status_code == 200


@pytest.mark.parametrize("changes", [
    {"booking_credits": [{"id": "nosuchcredit0000", "total_bookings": 5}]},
    {"booking_credits": [{"total_bookings": 5}]},
    {"booking_credits": [{"id": "x", "total_bookings": "many"}]},
    {"booking_credits": "nope"},
])
def test_bad_booking_credits_are_422(api, client_package, changes):
    assert put_cp(api, client_package["id"], changes).status_code == 422


def test_update_body_needs_the_client_package_wrapper(api, client_package):
    response = api.call("fallback", "PUT", CP + client_package["id"],
                        json={"valid_until": "2099-01-01"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "client_package"


def test_older_kb_object_arrays_are_accepted(api, client_package):
    credit = client_package["booking_credits"][1]["id"]
    response = put_cp(api, client_package["id"],
                      {"booking_credits": {"0": {"id": credit, "total_bookings": 7}}})
    assert response.status_code == 200
    assert response.json()["data"]["client_package"]["booking_credits"][1]["total_bookings"] == "7"


def test_unknown_client_package_is_404(api):
    for method, body in (("GET", None), ("PUT", {"client_package": {}})):
        response = api.call("fallback", method, CP + "zzzzzzzzzzzzzzzz", json=body)
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "not_found"


def test_client_package_create_defaults_and_shape(api):
    package = api.make_package(price="223.5", expiration=1, expiration_unit="m", items=[
        {"total_bookings": 5, "services": [{"id": SERVICES[0]}, {"id": SERVICES[3]}]},
        {"total_bookings": 5, "services": [{"id": SERVICES[1]}]}])
    api.op("PUT", "/clock", json={"today": "2026-01-31"})
    response = api.call("fallback", "POST", "/platform/v1/payment/client_packages",
                        json={"client_id": CLIENTS[0], "package_id": package["id"]})
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "OK"
    cp = body["data"]["client_package"]
    assert cp["valid_from"] == "2026-01-31" and cp["valid_until"] == "2026-02-28"
    assert cp["active"] == "true" and cp["amount"] == 223.5
    assert cp["payment_request_state"] == "overdue"
    assert UID.match(cp["payment_request_id"]) and cp["payment_status_uid"] == cp["payment_request_id"]
    assert cp["total_bookings"] == "10" and cp["bookings_usage"] == "0"
    assert cp["staff_id"] == DEMO["staff"]["id"] and cp["business_id"] == BUSINESS
    assert UID.match(cp["conversation_id"])
    first = cp["booking_credits"][0]
    assert first["total_bookings"] == "5" and first["bookings_usage"] == "0"
    assert first["credit_items"] == [
        {"item_id": SERVICES[0], "item_type": "SERVICE", "bookings_usage": 0},
        {"item_id": SERVICES[3], "item_type": "SERVICE", "bookings_usage": 0}]
    assert all(UID.match(c["id"]) for c in cp["booking_credits"])


@pytest.mark.parametrize("unit,expected", [("D", "2026-03-11"), ("W", "2026-04-12"),
                                           ("Y", "2036-03-01")])
def test_valid_until_defaults_from_the_package_expiration(api, unit, expected):
    package = api.make_package(expiration=10 if unit != "W" else 6, expiration_unit=unit)
    cp = api.make_client_package(package["id"], valid_from="2026-03-01")
    assert cp["valid_until"] == expected


@pytest.mark.parametrize("body,why", [
    ({"package_id": "P"}, "client_id missing"),
    ({"client_id": CLIENTS[0]}, "package_id missing"),
    ({"client_id": "zzzzzzzzzzzzzzzz", "package_id": "P"}, "unknown client"),
    ({"client_id": CLIENTS[0], "package_id": "zzzzzzzzzzzzzzzz"}, "unknown package"),
    ({"client_id": CLIENTS[0], "package_id": "P", "valid_from": "2026-05-01",
      "valid_until": "2026-04-01"}, "until before from"),
    ({"client_id": CLIENTS[0], "package_id": "P", "valid_from": "May 1st"}, "bad date"),
    ({"client_id": CLIENTS[0], "package_id": "P", "price": "free"}, "bad price"),
])
def test_client_package_create_422(api, body, why):
    package = api.make_package()
    body = {k: (package["id"] if v == "P" else v) for k, v in body.items()}
    response = api.call("fallback", "POST", "/platform/v1/payment/client_packages", json=body)
    assert response.status_code == 422, why
    assert response.json()["status"] == "Error" and response.json()["error"]


def test_inactive_package_cannot_be_sold_but_is_still_readable(api):
    package = api.make_package()
    cp = api.make_client_package(package["id"])
    response = api.call("fallback", "PUT", f"/platform/v1/payment/packages/{package['id']}",
                        json={"package": {"active": False}})
    assert response.status_code == 200
    shown = response.json()["data"]["package"]
    assert shown["active"] is False and shown["deleted_at"] is None
    refused = api.call("fallback", "POST", "/platform/v1/payment/client_packages",
                       json={"client_id": CLIENTS[1], "package_id": package["id"]})
    assert refused.status_code == 422
    by_id = api.call("fallback", "GET", f"/platform/v1/payment/packages/{package['id']}")
    assert by_id.status_code == 200 and by_id.json()["data"]["package"]["active"] is False
    listed = api.call("fallback", "GET", "/platform/v1/payment/packages").json()
    assert [p["id"] for p in listed["data"]["packages"]] == [package["id"]]
    active = api.call("fallback", "GET", "/platform/v1/payment/packages",
                      params={"active_only": "true"}).json()
    assert active["data"]["packages"] == []
    still = api.call("fallback", "GET", CP + cp["id"])
    assert still.status_code == 200


def test_package_update_replaces_items_and_does_not_touch_client_packages(api):
    package = api.make_package()
    cp = api.make_client_package(package["id"])
    response = api.call("fallback", "PUT", f"/platform/v1/payment/packages/{package['id']}",
                        json={"package": {"price": 125, "expiration_unit": "M",
                                          "discount_amount": 15, "discount_unit": "F",
                                          "items": [{"total_bookings": 3,
                                                     "services": [{"id": SERVICES[4]}]}]}})
    assert response.status_code == 200
    shown = response.json()["data"]["package"]
    assert shown["price"] == "125.0" and shown["discount_amount"] == "15.0"
    assert shown["discount_unit"] == "f" and shown["expiration_unit"] == "m"
    assert shown["items"] == [{"total_bookings": "3", "services": [
        {"id": SERVICES[4], "name": DEMO["services"][4]["name"]}]}]
    assert shown["total_bookings"] == 3
    kept = api.call("fallback", "GET", CP + cp["id"]).json()["data"]["client_package"]
    assert kept["booking_credits"][0]["total_bookings"] == "10"
    assert kept["amount"] == 250


@pytest.mark.parametrize("change", [
    {"name": ""}, {"price": None}, {"currency": "US"}, {"expiration_unit": "Q"},
    {"items": [{"total_bookings": 1, "services": [{"id": "zzzzzzzzzzzzzzzz"}]}]},
    {"items": [{"total_bookings": 0, "services": [{"id": SERVICES[0]}]}]},
    {"products": None}, {"discount_unit": "X"},
    {"products": [{"id": DEMO["products"][0]["id"], "quantity": 6}]},
])
def test_package_create_422(api, change):
    body = {"name": "P", "price": "25.0", "currency": "USD", "expiration": 12,
            "expiration_unit": "m", "products": [],
            "items": [{"total_bookings": 3, "services": [{"id": SERVICES[0]}]}], **change}
    response = api.call("fallback", "POST", "/platform/v1/payment/packages", json=body)
    assert response.status_code == 422, change
    assert response.json()["status"] == "Error"


def test_package_create_requires_products_and_the_put_wrapper(api):
    body = {"name": "P", "price": 1, "currency": "USD", "expiration": 1, "expiration_unit": "M",
            "items": []}
    assert api.call("fallback", "POST", "/platform/v1/payment/packages",
                    json=body).status_code == 422
    package = api.make_package()
    response = api.call("fallback", "PUT", f"/platform/v1/payment/packages/{package['id']}",
                        json={"name": "flat"})
    assert response.status_code == 422


def test_package_products_have_names_and_extra_service_fields_are_tolerated(api):
    product = DEMO["products"][0]
    package = api.make_package(products=[{"id": product["id"], "quantity": 2}], items=[
        {"total_bookings": 2, "services": [{"id": SERVICES[0], "name": "x", "price": 1}]}])
    assert package["products"] == [{"id": product["id"], "name": product["name"], "quantity": 2}]
    cp = api.make_client_package(package["id"])
    assert cp["products"] == package["products"]


def test_feature_gate_is_403_before_validation_for_every_token(api):
    package = api.make_package()
    api.op("PUT", f"/businesses/{BUSINESS}/features", json={"booking_packages": False})
    gate = {"message": "403 Forbidden", "status": "module_permission_missing"}
    calls = [("GET", "/platform/v1/payment/packages", None),
             ("POST", "/platform/v1/payment/packages", {"junk": True}),
             ("GET", f"/platform/v1/payment/packages/{package['id']}", None),
             ("PUT", f"/platform/v1/payment/packages/{package['id']}", {"nope": 1}),
             ("POST", "/platform/v1/payment/client_packages", {}),
             ("POST", "/platform/v1/payment/client_packages/update_usage", {})]
    for method, path, body in calls:
        for token, headers in ((DEMO["tokens"]["staff"], {}),
                               (DEMO["tokens"]["directory"], {"X-On-Behalf-Of": BUSINESS})):
            response = api.call("fallback", method, path, token=token, headers=headers, json=body)
            assert (response.status_code, response.json()) == (403, gate), (method, path)
    assert api.call("fallback", "GET", "/platform/v1/clients").status_code == 200


def test_package_list_pagination(api):
    ids = api.op("POST", "/bulk/packages", json={"business_id": BUSINESS, "count": 130})["ids"]
    def page(**q):
        response = api.call("fallback", "GET", "/platform/v1/payment/packages", params=q)
        return [p["id"] for p in response.json()["data"]["packages"]]

    assert page() == ids[:100]
    assert page(page=2) == ids[100:]
    assert page(per_page=1000) == ids[:100]
    assert page(per_page=7, page=3) == ids[14:21]
    assert page(page=9) == []
    assert page(per_page="junk") == ids[:100]
    with_items = api.call("fallback", "GET", "/platform/v1/payment/packages",
                          params={"include_items": "true", "per_page": 1}).json()
    assert with_items["data"]["packages"][0]["items"][0]["services"][0]["name"]
    assert "items" not in api.call("fallback", "GET", "/platform/v1/payment/packages",
                                   params={"per_page": 1}).json()["data"]["packages"][0]


def test_clients_pagination_and_search(api):
    other = api.new_business(clients=130, services=0)
    token = other["staff_token"]
    def get(**q):
        response = api.call("fallback", "GET", "/platform/v1/clients", token=token, params=q)
        return response.json()["data"]["clients"]

    all_ids = [c["id"] for c in other["clients"]]
    assert [c["id"] for c in get()] == all_ids[:25]
    assert [c["id"] for c in get(per_page=500)] == all_ids[:100]
    assert [c["id"] for c in get(per_page=100, page=2)] == all_ids[100:]
    found = get(search_term=other["clients"][41]["email"].upper(), search_by="email")
    assert [c["id"] for c in found] == [all_ids[41]]
    assert get(search_term="nobody@example.com", search_by="email") == []
    demo = api.call("fallback", "GET", "/platform/v1/clients",
                    params={"business_id": BUSINESS, "per_page": "1"}).json()
    assert [c["id"] for c in demo["data"]["clients"]] == [CLIENTS[0]]


def test_legacy_path_and_undocumented_routes_are_404(api):
    for door in ("gateway", "fallback"):
        legacy = api.call(door, "POST", "/business/payments/platform/v1/payment/client_packages",
                          json={"client_id": CLIENTS[0], "package_id": "x"})
        assert legacy.status_code == 404
        assert "bad gateway" not in legacy.text.lower()
    package = api.make_package()
    assert api.call("fallback", "DELETE",
                    f"/platform/v1/payment/packages/{package['id']}").status_code == 404
    assert api.call("fallback", "POST", "/platform/v1/services", json={}).status_code == 404


def test_staff_list_of_a_clients_packages_is_not_implemented(api):
    response = api.call("fallback", "GET",
                        f"/platform/v1/clients/{CLIENTS[0]}/payment/client_packages")
    assert (response.status_code, response.json()) == (422, {"status": "Error",
                                                             "error": "Unauthorized"})


def test_conversation_id_on_create_is_the_observed_500(api):
    package = api.make_package()
    response = api.call("fallback", "POST", "/platform/v1/payment/client_packages", json={
        "client_id": CLIENTS[0], "package_id": package["id"], "conversation_id": "abc"})
    assert response.status_code == 500
    matter = api.make_client_package(package["id"], matter_uid="war7ow99zh14qlty")
    assert matter["conversation_id"] == "war7ow99zh14qlty"


def test_update_usage_redeems_the_soonest_expiring_package(api):
    package = api.make_package()
    late = api.make_client_package(package["id"], valid_from="2026-01-01", valid_until="2099-01-01")
    soon = api.make_client_package(package["id"], valid_from="2026-01-01", valid_until="2098-01-01")
    status = api.op("POST", "/payment_statuses", json={
        "business_id": BUSINESS, "client_id": CLIENTS[0], "service_id": SERVICES[0]})["id"]
    path = "/platform/v1/payment/client_packages/update_usage"
    response = api.call("fallback", "POST", path, json={"payment_status_uid": status})
    assert response.status_code == 200
    assert response.json() == {"status": "OK", "data": {"package_name": package["name"]}}
    def got(cp):
        return api.call("fallback", "GET", CP + cp["id"]).json()["data"]["client_package"]

    assert got(soon)["bookings_usage"] == "1" and got(late)["bookings_usage"] == "0"
    assert got(soon)["booking_credits"][0]["credit_items"][0]["bookings_usage"] == 1
    again = api.call("fallback", "POST", path, json={"payment_status_uid": status})
    assert again.status_code == 422
    unknown = api.call("fallback", "POST", path, json={"payment_status_uid": "zzzzzzzzzzzzzzzz"})
    assert unknown.status_code == 500
    other_service = api.op("POST", "/payment_statuses", json={
        "business_id": BUSINESS, "client_id": CLIENTS[0], "service_id": SERVICES[4]})["id"]
    none = api.call("fallback", "POST", path, json={"payment_status_uid": other_service})
    assert (none.status_code, none.json()["error"]) == (422, "There is no package to use")


def test_active_is_computed_from_dates_and_credits(api):
    package = api.make_package(items=[{"total_bookings": 1, "services": [{"id": SERVICES[0]}]}])
    past = api.make_client_package(package["id"], valid_from="2024-03-01", valid_until="2024-04-01")
    assert past["active"] == "false"
    now = api.make_client_package(package["id"])
    assert now["active"] == "true"
    api.op("PUT", f"/client_packages/{now['id']}/usage",
           json={"booking_credit_id": now["booking_credits"][0]["id"], "bookings_usage": 1})
    used = api.call("fallback", "GET", CP + now["id"]).json()["data"]["client_package"]
    assert used["active"] == "false" and used["bookings_usage"] == "1"


def test_uids_look_like_vcitas_and_use_every_character_evenly() -> None:
    from collections import Counter

    from reconciler.sandbox.values import UID_ALPHABET, is_uid, new_uid

    uids = [new_uid() for _ in range(5000)]
    assert all(is_uid(u) for u in uids) and len(set(uids)) == len(uids)
    # 80,000 characters over 36 symbols: about 2,222 each; a skewed or truncated draw is far off
    counts = Counter("".join(uids))
    assert set(counts) == set(UID_ALPHABET)
    assert all(abs(n - 80000 / 36) < 300 for n in counts.values())
    # every position varies too (no constant leading digit from a short draw)
    assert all(len({u[i] for u in uids}) == 36 for i in range(16))

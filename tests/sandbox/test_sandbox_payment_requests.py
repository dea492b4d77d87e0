"""Payment requests as the sandbox serves them (API-NOTES §11): each client package opens one,
linked both ways; the list's paging, sorting and every filter; its doors, tokens and errors; and
the operator's imitations of the open questions (a lagging list, price-0 packages opening none)."""

from __future__ import annotations

import time

from sandbox_demo import BUSINESS, CLIENTS, DIRECTORY

LIST = "/business/payments/v1/payment_requests"
XOBO = {"X-On-Behalf-Of": BUSINESS}


def listed(api, door: str = "fallback", **params) -> list[dict]:
    response = api.call(door, "GET", LIST, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    return body["data"]["payment_requests"]


def test_every_client_package_opens_one_payment_request_linked_both_ways(api):
    package = api.make_package(price=250)
    cp = api.make_client_package(package["id"], price=99.5)
    assert cp["payment_request_id"] and cp["payment_status_uid"] == cp["payment_request_id"]
    [pr] = listed(api)
    assert pr["uid"] == cp["payment_request_id"]
    assert (pr["payable_type"], pr["payable_uid"]) == ("ClientBookingPackage", cp["id"])
    assert (pr["amount"], pr["currency"], pr["state"]) == ("99.5", "USD", "overdue")
    assert pr["created_at"].endswith("Z") and pr["sellable_name"] == package["name"]
    one = api.call("fallback", "GET", f"{LIST}/{pr['uid']}")
    assert one.status_code == 200 and one.json()["data"]["payment_request"] == pr
    back = api.call("fallback", "GET", f"/business/payments/v1/client_packages/{cp['id']}").json()
    assert back["data"]["client_package"]["payment_request_id"] == pr["uid"]


def test_paging_sorting_and_filters(api):
    package = api.make_package()
    made = [api.make_client_package(package["id"], client_id=CLIENTS[n % 2]) for n in range(5)]
    uids = [cp["payment_request_id"] for cp in made]
    assert [p["uid"] for p in listed(api)] == uids[::-1]  # default: newest first
    asc = [p["uid"] for p in listed(api, sort="created_at:asc")]
    assert asc == uids
    pages = [[p["uid"] for p in listed(api, sort="created_at:asc", per_page=2, page=n)] for n in (1, 2, 3, 4)]
    assert pages == [uids[:2], uids[2:4], uids[4:], []]
    mine = listed(api, **{"filter[client_uid][eq]": CLIENTS[1], "sort": "created_at:asc"})
    assert [p["uid"] for p in mine] == [uids[1], uids[3]]
    kinds = {"filter[entity_type][in]": "ClientBookingPackage,PendingClientBookingPackage"}
    assert len(listed(api, **kinds)) == 5
    assert listed(api, **{"filter[entity_type][in]": "Invoice"}) == []
    one = listed(api, **{"filter[entity_type][in]": "ClientBookingPackage", "filter[entity_uid][eq]": made[2]["id"]})
    assert [p["uid"] for p in one] == [uids[2]]
    assert len(listed(api, **{"filter[state][in]": "OVERDUE,DUE"})) == 5
    assert listed(api, **{"filter[state][in]": "PAID"}) == []
    today = made[0]["created_at"][:10]
    assert len(listed(api, **{"filter[created_at][gte]": today})) == 5
    assert listed(api, **{"filter[created_at][gt]": "2999-01-01T00:00:00Z"}) == []
    assert len(listed(api, **{"filter[created_at][lte]": "2999-01-01T00:00:00+02:00"})) == 5
    assert len(listed(api, **{"filter[amount_pending][gte]": "250"})) == 5
    assert listed(api, **{"filter[amount_paid][gt]": "0"}) == []
    assert len(listed(api, **{"filter[due_date][eq]": today})) == 5


def test_bad_filters_and_unknown_uids_answer_in_the_business_envelope(api):
    for params in ({"filter[entity_uid][eq]": "x"},
                   {"filter[entity_uid][eq]": "x", "filter[entity_type][in]": "Invoice,Cart"},
                   {"filter[state][in]": "LOST"}, {"filter[entity_type][in]": "Car"},
                   {"filter[created_at][gte]": "yesterday"}, {"filter[colour][eq]": "red"},
                   {"filter[client_uid][in]": "x"}, {"sort": "amount:asc"}, {"sort": "created_at:up"}):
        response = api.call("fallback", "GET", LIST, params=params)
        assert response.status_code == 422, params
        assert response.json()["success"] is False and response.json()["errors"][0]["message"]
    missing = api.call("fallback", "GET", f"{LIST}/nosuchrequest0000")
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "not_found"


def test_doors_and_tokens_as_the_other_business_payments_routes(api):
    package = api.make_package()
    cp = api.make_client_package(package["id"])
    gateway = api.call("gateway", "GET", LIST)
    assert gateway.status_code == 401  # the staging gateway refuses /business/payments/v1/*
    assert len(listed(api)) == 1
    by_directory = api.call("fallback", "GET", LIST, token=DIRECTORY, headers=XOBO)
    assert by_directory.status_code == 200 and len(by_directory.json()["data"]["payment_requests"]) == 1
    assert api.call("fallback", "GET", LIST, token=DIRECTORY).status_code == 401  # no X-On-Behalf-Of
    one = api.call("fallback", "GET", f"{LIST}/{cp['payment_request_id']}", token=DIRECTORY, headers=XOBO)
    assert one.status_code == 401
    assert api.call("fallback", "GET", LIST, token="nope").status_code == 401
    other = api.op("POST", "/businesses", json={"name": "Other", "clients": 1})
    theirs = api.call("fallback", "GET", LIST, token=other["staff_token"])
    assert theirs.json()["data"]["payment_requests"] == []  # a business sees only its own
    assert api.call("fallback", "GET", f"{LIST}/{cp['payment_request_id']}",
                    token=other["staff_token"]).status_code == 404


def test_a_lagging_list_shows_new_requests_later_but_reads_by_uid_at_once(api):
    package = api.make_package()
    old = api.make_client_package(package["id"])
    api.op("PUT", "/settings", json={"payment_request_lag_seconds": 1.0})
    new = api.make_client_package(package["id"], client_id=CLIENTS[1])
    assert [p["uid"] for p in listed(api)] == [old["payment_request_id"]]
    one = api.call("fallback", "GET", f"{LIST}/{new['payment_request_id']}")
    assert one.status_code == 200
    deadline = time.monotonic() + 10
    while len(listed(api)) != 2:
        assert time.monotonic() < deadline, "the lagging payment request never appeared"
        time.sleep(0.1)


def test_price_zero_packages_open_no_request_when_the_operator_says_so(api):
    package = api.make_package(price=0)
    first = api.make_client_package(package["id"])
    assert first["payment_request_id"]  # by default even a free package opens one
    api.op("PUT", "/settings", json={"free_packages_open_no_request": True})
    free = api.make_client_package(package["id"], client_id=CLIENTS[1])
    paid = api.make_client_package(package["id"], client_id=CLIENTS[1], price=5)
    assert free["payment_request_id"] is None and paid["payment_request_id"]
    assert {p["payable_uid"] for p in listed(api)} == {first["id"], paid["id"]}
    api.op("POST", "/reset")
    assert api.op("GET", "/settings")["free_packages_open_no_request"] is False


def test_bulk_client_packages_open_requests_too(api):
    package = api.make_package()
    ids = api.op("POST", "/bulk/client_packages", json={"business_id": BUSINESS, "package_id": package["id"],
                                                        "count": 30})["ids"]
    seen = [p["payable_uid"] for n in (1, 2) for p in listed(api, per_page=25, page=n, sort="created_at:asc")]
    assert seen == ids

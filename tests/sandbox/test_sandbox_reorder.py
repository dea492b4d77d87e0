"""The sandbox's reorder route (API-NOTES §2 row 5): the verified recipe's way (directory token +
X-On-Behalf-Of through the fallback) works, the gateway refuses /business/payments/v1/* with 401,
and a request naming an unknown package changes nothing."""

from __future__ import annotations

from sandbox_demo import BUSINESS, DIRECTORY, STAFF

REORDER = "/business/payments/v1/packages/reorder"
XOBO = {"X-On-Behalf-Of": BUSINESS}


def _order(api, pid: str) -> int:
    return api.op("GET", f"/objects/packages/{pid}")["doc"]["order"]


def test_reorder_through_the_fallback_with_a_directory_token(api) -> None:
    a, b = api.make_package()["id"], api.make_package(name="Second")["id"]
    body = {"packages": [{"id": b, "order": 1}, {"id": a, "order": 2}]}
    refused = api.call("gateway", "PUT", REORDER, token=DIRECTORY, headers=XOBO, json=body)
    assert refused.status_code == 401
    answer = api.call("fallback", "PUT", REORDER, token=DIRECTORY, headers=XOBO, json=body)
    assert answer.status_code == 200 and answer.json() == {"success": True, "data": {}}
    assert (_order(api, b), _order(api, a)) == (1, 2)
    assert api.call("fallback", "PUT", REORDER, token=STAFF, json={"packages": [{"id": a, "order": 7}]}).status_code == 200
    assert (_order(api, b), _order(api, a)) == (1, 7)  # a package not named keeps its position


def test_a_bad_reorder_changes_nothing(api) -> None:
    a = api.make_package()["id"]
    before = _order(api, a)
    for body in ({"packages": [{"id": a, "order": 5}, {"id": "nosuchpackage", "order": 6}]},
                 {"packages": [{"id": a}]}, {"packages": []}, {}):
        answer = api.call("fallback", "PUT", REORDER, token=STAFF, json=body)
        assert answer.status_code == 422 and answer.json()["success"] is False, answer.text
    assert _order(api, a) == before

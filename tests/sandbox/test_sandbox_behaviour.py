"""The operator's imitation settings (behaviour.py): a package list that lags behind creation, and
a package list that refuses staff tokens on one door while a directory token is served."""

from __future__ import annotations

import time

import httpx
import pytest
from sandbox_demo import BUSINESS, DIRECTORY

LIST = "/platform/v1/payment/packages"
XOBO = {"X-On-Behalf-Of": BUSINESS}
UNAUTHORIZED_422 = {"status": "Error", "error": "Unauthorized"}


def listed(api, door: str = "fallback", **kw) -> list[str]:
    response = api.call(door, "GET", LIST, params={"include_items": "true"}, **kw)
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["data"]["packages"]]


def test_settings_default_and_validation(api):
    defaults = {"list_lag_seconds": 0.0, "list_refuses_staff": [], "payment_request_lag_seconds": 0.0,
                "free_packages_open_no_request": False}
    assert api.op("GET", "/settings") == defaults
    for bad in ({"list_lag_seconds": -1}, {"list_lag_seconds": "20"}, {"list_lag_seconds": True},
                {"list_refuses_staff": ["side"]}, {"lag": 3}, {"payment_request_lag_seconds": 4000},
                {"free_packages_open_no_request": "yes"}):
        response = api.http.put(api.served.operator_url + "/settings", json=bad)
        assert response.status_code == 400, bad
    assert api.op("GET", "/settings") == defaults  # unchanged


def test_a_new_package_lags_in_the_list_but_reads_by_id_at_once(api):
    old = api.make_package(name="Old")
    api.op("PUT", "/settings", json={"list_lag_seconds": 1.5})
    new = api.make_package(name="New")
    second = api.make_package(name="Newer")
    assert listed(api) == [old["id"]]  # the two new ones are not indexed yet (the old one, made
    # before the lag was set, is)
    page = api.call("fallback", "GET", LIST, params={"per_page": 1, "page": 1})
    assert [p["id"] for p in page.json()["data"]["packages"]] == [old["id"]]  # filtered before paging
    by_id = api.call("gateway", "GET", f"{LIST}/{new['id']}")
    assert by_id.status_code == 200 and by_id.json()["data"]["package"]["name"] == "New"
    deadline = time.monotonic() + 10
    while listed(api) != [old["id"], new["id"], second["id"]]:
        assert time.monotonic() < deadline, "the lagging packages never appeared"
        time.sleep(0.1)


def test_bulk_packages_lag_too_and_reset_clears_the_lag(api):
    api.op("PUT", "/settings", json={"list_lag_seconds": 30})
    made = api.op("POST", "/bulk/packages", json={"business_id": BUSINESS, "count": 3})
    assert len(made["ids"]) == 3 and listed(api) == []
    api.op("POST", "/reset")
    assert api.op("GET", "/settings")["list_lag_seconds"] == 0.0


@pytest.mark.parametrize("door", ["gateway", "fallback"])
def test_the_list_refuses_staff_tokens_on_the_chosen_door_only(api, door):
    api.op("PUT", "/gateway", json={"routes": []})  # a gateway that serves the list
    api.make_package()
    api.op("PUT", "/settings", json={"list_refuses_staff": [door]})
    other = "fallback" if door == "gateway" else "gateway"
    refused = api.call(door, "GET", LIST)
    assert refused.status_code == 422 and refused.json() == UNAUTHORIZED_422
    assert len(listed(api, door, token=DIRECTORY, headers=XOBO)) == 1  # directory + XOBO served
    assert len(listed(api, other)) == 1  # the other door accepts the staff token
    # only the list: reading one package with the staff token still works on that door
    package_id = listed(api, other)[0]
    assert api.call(door, "GET", f"{LIST}/{package_id}").status_code == 200


def test_an_invalid_token_is_still_a_401_not_the_staff_refusal(api):
    api.op("PUT", "/settings", json={"list_refuses_staff": ["fallback"]})
    response = api.call("fallback", "GET", LIST, token="not-a-token")
    assert response.status_code == 401


def test_settings_given_at_start_survive_a_reset(tmp_path):
    from reconciler.sandbox import serve_in_thread

    with serve_in_thread(tmp_path / "s.db", behaviour={"list_lag_seconds": 20,
                                                        "list_refuses_staff": ["fallback"]}) as served:
        httpx.post(served.operator_url + "/reset", timeout=10).raise_for_status()
        settings = httpx.get(served.operator_url + "/settings", timeout=10).json()
    assert settings == {"list_lag_seconds": 20.0, "list_refuses_staff": ["fallback"],
                        "payment_request_lag_seconds": 0.0, "free_packages_open_no_request": False}


def test_sandbox_serve_flags_set_the_imitations(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler.sandbox", "serve", "--port", "0", "--db", str(tmp_path / "s.db"),
         "--list-lag", "7.5", "--list-refuses-staff", "fallback", "--list-refuses-staff", "gateway",
         "--open-gateway", "--payment-request-lag", "3", "--free-packages-open-no-request"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        operator = None
        deadline = time.monotonic() + 20
        while operator is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("operator:"):
                operator = line.split()[1]
            elif not line and proc.poll() is not None:
                break
        assert operator is not None, "the sandbox did not start"
        with httpx.Client(timeout=10) as http:
            assert http.get(operator + "/settings").json() == {
                "list_lag_seconds": 7.5, "list_refuses_staff": ["fallback", "gateway"],
                "payment_request_lag_seconds": 3.0, "free_packages_open_no_request": True}
            assert http.get(operator + "/gateway").json() == {"routes": []}
            http.post(operator + "/reset").raise_for_status()  # the flags are the defaults a reset restores
            assert http.get(operator + "/settings").json()["list_lag_seconds"] == 7.5
            assert http.get(operator + "/gateway").json() == {"routes": []}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

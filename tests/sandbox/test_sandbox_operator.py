"""The operator API (`/_sandbox/...`) and the `sandbox` CLI group."""

from __future__ import annotations

import asyncio
import json

import httpx
from click.testing import CliRunner

from reconciler.cli.sandbox_cmds import sandbox as sandbox_cli
from reconciler.sandbox import DEMO

BUSINESS = DEMO["business"]["id"]
STAFF = DEMO["tokens"]["staff"]
CP = "/business/payments/v1/client_packages/"


def test_info_lists_the_demo_business_tokens_and_doors(api):
    info = api.op("GET", "/info")
    assert info["business_id"] == BUSINESS
    assert info["staff_token"] == STAFF
    assert info["directory_token"] == DEMO["tokens"]["directory"]
    assert info["directory_id"] == DEMO["directory"]["id"]
    assert info["doors"] == {"gateway": "/apigw", "fallback": "/api2", "operator": "/_sandbox"}


def test_reset_wipes_and_reseeds(api):
    api.make_package()
    api.new_business()
    api.op("POST", "/faults", json={"status": 500, "path": "/x"})
    api.op("PUT", "/gateway", json={"routes": []})
    info = api.op("POST", "/reset")
    assert [b["business_id"] for b in info["businesses"]] == [BUSINESS]
    assert api.call("fallback", "GET", "/platform/v1/payment/packages").json()["data"][
        "packages"] == []
    assert api.op("GET", "/faults")["faults"] == []
    assert len(api.op("GET", "/gateway")["routes"]) == 2


def test_businesses_features_and_generated_objects(api):
    made = api.new_business(id="abcdefgh12345678", booking_packages=False, services=3,
                            clients=2, products=1, directory=True)
    assert made["business_id"] == "abcdefgh12345678"
    assert len(made["services"]) == 3 and len(made["clients"]) == 2
    token = made["staff_token"]
    gated = api.call("fallback", "GET", "/platform/v1/payment/packages", token=token)
    assert gated.status_code == 403
    api.op("PUT", f"/businesses/{made['business_id']}/features", json={"booking_packages": True})
    assert api.call("fallback", "GET", "/platform/v1/payment/packages",
                    token=token).status_code == 200
    own = api.call("fallback", "GET", "/platform/v1/clients", token=made["directory_token"],
                   headers={"X-On-Behalf-Of": made["business_id"]})
    assert own.status_code == 200 and len(own.json()["data"]["clients"]) == 2
    duplicate = api.http.post(api.served.operator_url + "/businesses",
                              json={"id": "abcdefgh12345678"})
    assert duplicate.status_code == 422
    joined = api.new_business(directory_id=DEMO["directory"]["id"])
    listed = api.call("fallback", "GET", "/platform/v1/clients", token=DEMO["tokens"]["directory"],
                      headers={"X-On-Behalf-Of": joined["business_id"]})
    assert listed.status_code == 200


def test_usage_sets_bookings_usage_like_a_redemption(api):
    package = api.make_package()
    cp = api.make_client_package(package["id"])
    credit = cp["booking_credits"][0]["id"]
    shown = api.op("PUT", f"/client_packages/{cp['id']}/usage",
                   json={"booking_credit_id": credit, "bookings_usage": 4})
    assert shown["bookings_usage"] == "4"
    assert shown["booking_credits"][0]["credit_items"][0]["bookings_usage"] == 4
    too_many = api.http.put(api.served.operator_url + f"/client_packages/{cp['id']}/usage",
                            json={"booking_credit_id": credit, "bookings_usage": 11})
    assert too_many.status_code == 422


def test_patch_objects_behind_the_reconcilers_back(api):
    package = api.make_package()
    patched = api.op("PATCH", f"/objects/packages/{package['id']}",
                     json={"price": 99, "name": "Drifted"})
    assert patched["doc"]["price"] == 99
    shown = api.call("fallback", "GET", f"/platform/v1/payment/packages/{package['id']}").json()
    assert shown["data"]["package"]["price"] == "99.0"
    assert shown["data"]["package"]["name"] == "Drifted"
    service = DEMO["services"][0]["id"]
    api.op("PATCH", f"/objects/services/{service}", json={"name": "Piano (renamed)"})
    items = api.call("fallback", "GET",
                     f"/platform/v1/payment/packages/{package['id']}").json()
    assert items["data"]["package"]["items"][0]["services"][0]["name"] == "Piano (renamed)"
    cp = api.make_client_package(package["id"])
    api.op("PATCH", f"/objects/client_packages/{cp['id']}", json={"valid_until": "2030-01-01"})
    got = api.call("fallback", "GET", CP + cp["id"]).json()["data"]["client_package"]
    assert got["valid_until"] == "2030-01-01"
    for path, body in ((f"/objects/planets/{cp['id']}", {}),
                       ("/objects/packages/zzzzzzzzzzzzzzzz", {"name": "x"}),
                       (f"/objects/packages/{package['id']}", {"business_id": "x"})):
        response = api.http.patch(api.served.operator_url + path, json=body)
        assert response.status_code in (400, 404)


def test_bulk_inserts_and_listing_client_packages(api):
    package = api.make_package()
    clients = [c["id"] for c in DEMO["clients"][:2]]
    made = api.op("POST", "/bulk/client_packages", json={
        "business_id": BUSINESS, "package_id": package["id"], "client_ids": clients, "count": 5})
    assert len(made["ids"]) == 5
    listed = api.op("GET", "/client_packages", params={"business_id": BUSINESS})["client_packages"]
    assert [cp["id"] for cp in listed] == made["ids"]
    assert [cp["client_id"] for cp in listed] == [clients[n % 2] for n in range(5)]
    assert api.call("fallback", "GET", CP + made["ids"][3]).status_code == 200
    packages = api.op("POST", "/bulk/packages", json={"business_id": BUSINESS, "count": 3})
    assert len(packages["ids"]) == 3


def test_clock_can_be_frozen_and_released(api):
    assert api.op("PUT", "/clock", json={"today": "2026-02-08"}) == {"today": "2026-02-08",
                                                                     "frozen": True}
    package = api.make_package()
    assert api.make_client_package(package["id"])["valid_from"] == "2026-02-08"
    assert api.op("PUT", "/clock", json={"today": None})["frozen"] is False


def test_operator_api_is_absent_unless_enabled(sandbox_app_factory):
    app = sandbox_app_factory(operator=False)

    async def scenario() -> tuple[int, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            info = await client.get("/_sandbox/info")
            api = await client.get("/api2/platform/v1/clients",
                                   headers={"Authorization": f"Bearer {STAFF}"})
            return info.status_code, api.status_code

    assert asyncio.run(scenario()) == (404, 200)


def test_cli_info_and_reset(tmp_path):
    runner = CliRunner()
    db = tmp_path / "cli" / "sandbox.db"
    result = runner.invoke(sandbox_cli, ["info", "--db", str(db)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["business_id"] == BUSINESS and info["staff_token"] == STAFF
    assert db.exists()
    result = runner.invoke(sandbox_cli, ["reset", "--db", str(db)])
    assert result.exit_code == 0 and json.loads(result.output)["business_id"] == BUSINESS


def test_cli_default_database_is_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(sandbox_cli, ["info"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".reconciler" / "sandbox.db").is_file()


def test_cli_serve_refuses_non_loopback_hosts(tmp_path):
    for host in ("0.0.0.0", "192.168.1.10", "example.com"):
        result = CliRunner().invoke(sandbox_cli, ["serve", "--host", host, "--db",
                                                  str(tmp_path / "x.db")])
        assert result.exit_code == 2
        assert "loopback" in result.output

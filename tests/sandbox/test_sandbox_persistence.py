"""State survives restarts: a server stopped cleanly, and a server process killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from reconciler.sandbox import DEMO, serve_in_thread

REPO = Path(__file__).resolve().parents[2]
BUSINESS = DEMO["business"]["id"]
STAFF = {"Authorization": f"Bearer {DEMO['tokens']['staff']}"}
SERVICE = DEMO["services"][0]["id"]
CLIENT = DEMO["clients"][0]["id"]
PACKAGE = {"name": "Kept", "price": 99, "currency": "USD", "expiration": 2,
           "expiration_unit": "M", "products": [],
           "items": [{"total_bookings": 4, "services": [{"id": SERVICE}]}]}


def start(db: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler.sandbox", "serve", "--port", "0", "--db", str(db),
         "--operator"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("fallback:"):
            return proc, line.split()[1]
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("the sandbox process did not start")


def stop(proc: subprocess.Popen[str], sig: int) -> None:
    proc.send_signal(sig)
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def test_state_survives_a_killed_process(tmp_path):
    db = tmp_path / "kept.db"
    proc, api = start(db)
    try:
        with httpx.Client(headers=STAFF, timeout=10) as http:
            package = http.post(api + "/platform/v1/payment/packages", json=PACKAGE).json()
            package_id = package["data"]["package"]["id"]
            created = http.post(api + "/platform/v1/payment/client_packages",
                                json={"client_id": CLIENT, "package_id": package_id})
            uid = created.json()["data"]["client_package"]["id"]
            credit = created.json()["data"]["client_package"]["booking_credits"][0]["id"]
            changed = http.put(api + f"/business/payments/v1/client_packages/{uid}", json={
                "client_package": {"valid_until": "2099-09-09",
                                   "booking_credits": [{"id": credit, "total_bookings": 6}]}})
            assert changed.status_code == 200
    finally:
        stop(proc, signal.SIGKILL)
    proc, api = start(db)
    try:
        with httpx.Client(headers=STAFF, timeout=10) as http:
            shown = http.get(api + f"/business/payments/v1/client_packages/{uid}")
            assert shown.status_code == 200
            cp = shown.json()["data"]["client_package"]
            assert cp["valid_until"] == "2099-09-09" and cp["total_bookings"] == "6"
            listed = http.get(api + "/platform/v1/payment/packages").json()["data"]["packages"]
            assert [p["id"] for p in listed] == [package_id]
            clients = http.get(api + "/platform/v1/clients").json()["data"]["clients"]
            assert len(clients) == len(DEMO["clients"])
    finally:
        stop(proc, signal.SIGTERM)


def test_state_survives_a_clean_restart_in_thread(tmp_path):
    db = tmp_path / "thread.db"
    with serve_in_thread(db) as served:
        made = httpx.post(served.operator_url + "/businesses",
                          json={"name": "Persisted", "clients": 2, "services": 1}).json()
        httpx.put(served.operator_url + f"/businesses/{BUSINESS}/features",
                  json={"booking_packages": False})
    with serve_in_thread(db) as served:
        token = {"Authorization": f"Bearer {made['staff_token']}"}
        clients = httpx.get(served.fallback_url + "/platform/v1/clients", headers=token)
        assert [c["id"] for c in clients.json()["data"]["clients"]] == [
            c["id"] for c in made["clients"]]
        gated = httpx.get(served.fallback_url + "/platform/v1/payment/packages", headers=STAFF)
        assert gated.status_code == 403
        info = httpx.get(served.operator_url + "/info").json()
        assert info["business_id"] == BUSINESS and len(info["businesses"]) == 2


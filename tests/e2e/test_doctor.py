"""``reconciler doctor`` against the served sandbox: healthy, and misconfigured in each way the
real API can be (one door, a list refusing staff tokens, a pinned door that is refused, the
feature off, a token of another business, an invalid token) — always read-only."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CLI = Callable[..., tuple[int, str, str]]


def _files(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*")}


def _doctor(cli: CLI, *args: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = cli("doctor", "--format", "json", *args)
    assert not err, err
    return code, json.loads(out), out


def _route(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in report["routes"] if r["route"] == name)


def test_a_healthy_target(workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0  # objects to read: packages, client packages
    before_files = _files(workdir)
    before = operator("GET", f"/client_packages?business_id={demo['business']['id']}")
    operator("DELETE", "/stats")
    code, out, err = cli("doctor")
    assert code == 0, out + err
    assert "Result: every route reconciler needs works." in out
    assert "list_catalog_packages   gateway refusal 422  ok" in out  # the staging gateway, as documented
    code, report, _ = _doctor(cli)
    assert code == 0 and report["ok"] and not report["failures"]
    assert report["feature_booking_packages"] == "on"
    assert report["tokens"][0]["status"] == "valid" and report["tokens"][0]["business"] == [demo["business"]["id"]]
    assert report["clock"]["status"] == "ok"  # uvicorn sends a Date header
    assert set(report["latency"]) == {"gateway", "fallback"}
    assert _route(report, "get_client_package")["via"] == {"door": "fallback", "token": "staff"}
    assert _route(report, "get_catalog_package")["probes"][0]["detail"] == "answered"  # a real id from the list
    assert report["fix"] == {"reconciler_toml": [], "environment": [], "notes": []}
    # read-only: GETs only, nothing changed, no file written
    rows = operator("GET", "/stats")["requests"]
    assert rows and {r["method"] for r in rows} == {"GET"}
    assert operator("GET", f"/client_packages?business_id={demo['business']['id']}") == before
    assert _files(workdir) == before_files


def test_a_gateway_only_target_is_told_the_fallback_url_and_following_it_works(
        workdir: Path, cli: CLI, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VCITA_FALLBACK_URL")
    code, out, _err = cli("doctor")
    assert code == 1
    assert f'fallback_url = "{sandbox.fallback_url}"' in out
    assert f"VCITA_FALLBACK_URL={sandbox.fallback_url}" in out
    assert "list_catalog_packages   gateway refusal 422  FAILS" in out
    code, report, _ = _doctor(cli)
    assert report["fallback_candidate"]["serves"] == [
        "list_catalog_packages", "get_client_package"]
    monkeypatch.setenv("VCITA_FALLBACK_URL", sandbox.fallback_url)  # follow the advice
    assert cli("doctor")[0] == 0


def test_a_list_refusing_staff_tokens_asks_for_the_directory_token(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    operator("PUT", "/settings", json={"list_refuses_staff": ["fallback"]})
    code, report, _out = _doctor(cli)
    assert code == 1
    assert report["fix"]["reconciler_toml"][-1] == 'directory_token_env = "VCITA_DIRECTORY_TOKEN"'
    assert "the staff token was refused (422" in _route(report, "list_catalog_packages")["why"]
    monkeypatch.setenv("VCITA_DIRECTORY_TOKEN", demo["tokens"]["directory"])
    code, report, _ = _doctor(cli)
    assert code == 0, report["failures"]
    assert _route(report, "list_catalog_packages")["via"] == {"door": "fallback", "token": "directory"}
    assert report["tokens"][1]["status"] == "valid"


def test_a_pinned_door_that_is_refused_gets_the_pin_that_works(
        workdir: Path, cli: CLI, sandbox: Any, demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("VCITA_GATEWAY_URL", "VCITA_FALLBACK_URL", "VCITA_BUSINESS_ID", "VCITA_STAFF_TOKEN"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("SERVED_TOKEN", demo["tokens"]["staff"])
    toml = workdir / "reconciler.toml"
    head = (f'default_target = "served"\n[targets.served]\ngateway_url = "{sandbox.gateway_url}"\n'
            f'fallback_url = "{sandbox.fallback_url}"\nbusiness_id = "{demo["business"]["id"]}"\n'
            'token_env = "SERVED_TOKEN"\n')
    toml.write_text(head + '[targets.served.routes]\nlist_catalog_packages = { door = "gateway" }\n')
    code, out, _ = cli("doctor")
    assert code == 1
    fix = out.split("Add to reconciler.toml:\n", 1)[1].split("\n\n", 1)[0]
    assert fix.splitlines() == ["  [targets.served]", "  [targets.served.routes]",
                                '  list_catalog_packages = { door = "fallback", token = "staff" }']
    code, out, err = cli("plan")  # a run refuses the same way, and says why
    assert code == 1 and "pinned to the gateway" in err
    toml.write_text(head + "[targets.served.routes]\n" + fix.splitlines()[-1].strip() + "\n")  # follow it
    assert cli("doctor")[0] == 0
    assert cli("plan", "--detailed-exitcode")[0] == 2


def test_the_feature_gate_off(workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    operator("PUT", f"/businesses/{demo['business']['id']}/features", json={"booking_packages": False})
    code, report, _ = _doctor(cli)
    assert code == 1 and report["feature_booking_packages"] == "off"
    assert any("booking_packages" in n for n in report["fix"]["notes"])
    assert not report["fix"]["reconciler_toml"]  # no configuration can fix it


def test_a_token_of_another_business(workdir: Path, cli: CLI, operator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    other = operator("POST", "/businesses", json={"name": "Other", "services": 1, "clients": 2})
    monkeypatch.setenv("VCITA_STAFF_TOKEN", other["staff_token"])  # the demo's business id stays
    code, report, _ = _doctor(cli)
    assert code == 1
    assert report["tokens"][0]["status"] == "wrong business"
    assert other["business_id"] in report["tokens"][0]["detail"]


def test_an_invalid_token(workdir: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCITA_STAFF_TOKEN", "sbx_not_a_token_canary")
    code, out, err = cli("doctor")
    assert code == 1
    assert "staff      invalid: refused as missing, unknown or expired" in out
    assert "sbx_not_a_token_canary" not in out + err


def test_server_text_is_escaped(workdir: Path, cli: CLI, operator: Any) -> None:
    operator("POST", "/faults", json={"method": "GET", "path": "/platform/v1/services", "door": "*",
                                       "status": 418, "body": {"status": "Error", "error": "\x1b[31mred\nline"}})
    code, out, err = cli("doctor")
    assert code == 1
    assert "\x1b" not in out + err and "\\x1b[31mred\\nline" in out


def test_the_embedded_sandbox_is_not_checked_and_nothing_is_written(
        workdir: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("VCITA_")]:
        monkeypatch.delenv(var)
    code, _out, err = cli("doctor")
    assert code == 1 and "embedded sandbox" in err
    assert not (workdir / ".reconciler").exists()


def test_doctor_checks_the_second_memory_read_only(workdir: Path, cli: CLI, operator: Any,
                                                    demo: dict[str, Any]) -> None:
    code, report, _ = _doctor(cli)  # nothing assigned yet: nothing to check, not a failure
    assert code == 0 and report["second_memory"]["status"] == "unconfirmed"
    assert cli("apply", "--auto-approve")[0] == 0
    before = operator("GET", f"/client_packages?business_id={demo['business']['id']}")
    before_files = _files(workdir)
    operator("DELETE", "/stats")
    code, out, err = cli("doctor")
    assert code == 0, out + err
    assert "Second memory (client packages found through payment requests): works: payment request" in out
    assert "points back to it" in out
    rows = operator("GET", "/stats")["requests"]
    assert {r["method"] for r in rows} == {"GET"}
    assert operator("GET", f"/client_packages?business_id={demo['business']['id']}") == before
    assert _files(workdir) == before_files
    # a client package whose link back is broken: unavailable, and doctor still passes
    newest = before["client_packages"][-1]  # the list's first item, newest first
    operator("PATCH", f"/objects/client_packages/{newest['id']}", json={"payment_request_id": "zzzzzzzzzzzzzzzz"})
    code, report, _ = _doctor(cli)
    assert code == 0 and report["second_memory"]["status"] == "unavailable"
    assert "no link back" in report["second_memory"]["detail"]
    operator("POST", "/faults", json={"path": "/business/payments/v1/payment_requests", "door": "*", "status": 404})
    code, report, _ = _doctor(cli)
    assert code == 0 and report["second_memory"]["status"] == "unavailable"
    assert not any("payment_request" in r["route"] for r in report["routes"])

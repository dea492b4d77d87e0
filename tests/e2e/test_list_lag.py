"""A package list that lags creation (API-NOTES §8) never makes reconciler create a catalog package
twice, refuse a fresh one as gone, or report a false change (issue 16, item 3).

Against the served sandbox with its list lag on (``list_lag_seconds``: a new catalog package is
listed only that long after its creation; read by id at once), through the CLI, with short
bounds (``reconciler.core.listlag``: a few seconds instead of 20 s + margins):

- an apply SIGKILLed while its catalog create is in flight, after vcita executed it: the next plan
  waits for the list and adopts the package; with a bound shorter than the sandbox's lag, the same
  plan would have sent it again (shown, never applied);
- a create that never executed: the plan waits until the record's bound and not longer, then
  sends it again once; a plan made after the bound does not wait;
- a saved plan that concluded "not created" from a list read too early is refused by apply;
- a fresh, still unlisted package updated by the next apply is not refused as "no longer exists",
  and the verification after apply shows no change.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.core.listlag import parse_utc

CLI = Callable[..., tuple[int, str, str]]
CATALOG_POST = {"method": "POST", "path": "/platform/v1/payment/packages", "door": "*", "times": 1}
COMPLETE = "Complete Musician (1 year)"


def _bounds(monkeypatch: pytest.MonkeyPatch, lag: float, window: float, skew: float) -> None:
    monkeypatch.setenv("RECONCILER_LIST_LAG_SECONDS", str(lag))
    monkeypatch.setenv("RECONCILER_CREATE_SEND_WINDOW_SECONDS", str(window))
    monkeypatch.setenv("RECONCILER_CLOCK_SKEW_SECONDS", str(skew))


def _all_catalog_names(operator: Any, sandbox: Any, demo: dict[str, Any]) -> list[str]:
    """Every catalog package of the business, lagging or not (the lag is switched off to look)."""
    lag = operator("GET", "/settings")["list_lag_seconds"]
    operator("PUT", "/settings", json={"list_lag_seconds": 0})  # packages made before count as old
    try:
        return _listed_names(sandbox, demo)
    finally:
        operator("PUT", "/settings", json={"list_lag_seconds": lag})


def _listed_names(sandbox: Any, demo: dict[str, Any]) -> list[str]:
    """What the (lagging) list shows now."""
    r = httpx.get(f"{sandbox.fallback_url}/platform/v1/payment/packages", params={"per_page": 100, "page": 1},
                  headers={"Authorization": f"Bearer {demo['tokens']['staff']}"}, timeout=10)
    r.raise_for_status()
    return sorted(p["name"] for p in r.json()["data"]["packages"])


def _state(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / "manifests/.reconciler/state.json").read_text())


def _resolutions(out: str) -> dict[str, dict[str, Any]]:
    return {op["address"]: op for op in json.loads(out)["operations"] if op["op"] == "resolve_pending_create"}


def _posts(operator: Any) -> int:
    return sum(r["count"] for r in operator("GET", "/stats")["requests"]
               if r["method"] == "POST" and r["route"] == "/platform/v1/payment/packages")


def test_a_catalog_create_killed_in_flight_is_adopted_after_the_list_shows_it_never_created_twice(
        workdir: Path, cli: CLI, operator: Any, sandbox: Any, demo: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    operator("PUT", "/settings", json={"list_lag_seconds": 6})
    # vcita executes the create 3 s after receiving it and answers 3 s later: killed in between.
    operator("POST", "/faults", json={**CATALOG_POST, "latency_ms": 6000})
    log = (workdir / "apply.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "apply", "--auto-approve",
                             "manifests/catalog-packages.yaml"], cwd=workdir, stdout=log,
                            stderr=subprocess.STDOUT, env=os.environ.copy())
    log.close()
    try:
        deadline = time.monotonic() + 60
        while _posts(operator) < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)  # until all three creates arrived
        assert _posts(operator) == 3, (workdir / "apply.log").read_text()
        time.sleep(4.0)  # the slow one was executed (at 3 s), its answer not sent yet (at 6 s)
        assert proc.poll() is None, "apply ended before it could be killed mid-create"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    pending = list(_state(workdir)["pending"].values())
    assert len(pending) == 1 and pending[0]["kind"] == "CatalogPackage", pending
    lost, name = pending[0]["address"], pending[0]["details"]["name"]
    assert _all_catalog_names(operator, sandbox, demo).count(name) == 1  # vcita has it ...
    listed = json.loads(cli("plan", "--no-refresh", "--format", "json")[1])  # (state only, no wait)
    assert _resolutions(json.dumps(listed))[lost]["resolution"] == "unknown"

    # ... its list does not show it yet: a bound shorter than the list's lag would send it again.
    _bounds(monkeypatch, lag=0, window=0.1, skew=0)
    code, out, err = cli("plan", "manifests/catalog-packages.yaml", "--format", "json")
    assert _resolutions(out)[lost]["resolution"] == "not_created", out + err  # shown, never applied

    # With the sandbox's lag as the bound, the plan waits for the list, which then shows it.
    _bounds(monkeypatch, lag=6, window=5, skew=0.5)
    started = time.monotonic()
    code, out, err = cli("apply", "--auto-approve", "manifests/catalog-packages.yaml")
    assert code == 0, out + err
    assert "Waiting up to" in err and "for vcita's package list" in err and lost in err
    assert time.monotonic() - started < 6 + 5 + 0.5 + 1 + 10  # bounded by the record's settled_at
    assert f"{lost}: created " in out and "(by an interrupted run)" in out
    assert f"{lost}: an interrupted run had created" in err
    names = _all_catalog_names(operator, sandbox, demo)
    assert names == sorted(set(names)) and len(names) == 3, names  # never created twice
    assert _state(workdir)["pending"] == {}
    code, out, err = cli("apply", "--auto-approve")  # the client packages, on the adopted package
    assert code == 0, out + err
    assert "Verified: a fresh plan shows no changes." in err
    assert _all_catalog_names(operator, sandbox, demo) == names


def test_a_create_that_never_executed_is_sent_again_once_the_bound_has_passed_and_not_later(
        workdir: Path, cli: CLI, operator: Any, sandbox: Any, demo: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    operator("PUT", "/settings", json={"list_lag_seconds": 2})
    _bounds(monkeypatch, lag=2, window=2, skew=0.5)
    operator("POST", "/faults", json={**CATALOG_POST, "status": 500})  # answered before executing
    code, out, _ = cli("apply", "--auto-approve", "manifests/catalog-packages.yaml")
    assert code == 1 and "unknown outcome" in out
    (record,) = _state(workdir)["pending"].values()
    settled = parse_utc(record["opened_at"]).timestamp() + 1 + 2 + 2 + 0.5

    began = time.time()
    code, out, err = cli("plan", "manifests/catalog-packages.yaml", "--format", "json")
    took = time.time() - began
    op = _resolutions(out)[record["address"]]
    assert op["resolution"] == "not_created", out + err
    assert parse_utc(op["listed_at"]) >= parse_utc(op["settled_at"])
    assert parse_utc(op["settled_at"]).timestamp() == pytest.approx(settled)
    assert "Waiting up to" in err
    assert took >= settled - began - 0.1, (took, settled - began)  # it waited for the bound ...
    assert took <= max(0.0, settled - began) + 5.0, (took, settled - began)  # ... and not much longer

    code, out, err = cli("apply", "--auto-approve", "manifests/catalog-packages.yaml")
    assert code == 0, out + err
    assert "Waiting" not in err  # the bound has passed: the list is trusted at once
    assert f"{record['address']}: an interrupted create had not reached vcita; it will be sent again" in err
    names = _all_catalog_names(operator, sandbox, demo)
    assert names == sorted(set(names)) and len(names) == 3, names


def test_a_saved_plan_that_concluded_not_created_too_early_is_refused(
        workdir: Path, cli: CLI, operator: Any, sandbox: Any, demo: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _bounds(monkeypatch, lag=1, window=1, skew=0)
    operator("POST", "/faults", json={**CATALOG_POST, "status": 500})
    assert cli("apply", "--auto-approve", "manifests/catalog-packages.yaml")[0] == 1
    (record,) = _state(workdir)["pending"].values()
    code, out, err = cli("plan", "--out", "plan.json")
    assert code == 0, out + err
    raw = json.loads((workdir / "plan.json").read_text())
    (op,) = [o for o in raw["operations"] if o["op"] == "resolve_pending_create"]
    assert op["resolution"] == "not_created"
    op["listed_at"] = record["opened_at"]  # as if read right after the interrupted create
    from reconciler.plan.document import SEAL_KEY, _canonical_digest
    raw[SEAL_KEY] = _canonical_digest({k: v for k, v in raw.items() if k != SEAL_KEY})
    (workdir / "plan.json").write_text(json.dumps(raw))
    code, out, err = cli("apply", "plan.json")
    assert code == 1 and not err, out + err
    assert f"{record['address']}: the plan concludes that an interrupted create of {record['address']} never " \
           "reached vcita from a package list read" in out
    assert "before the list could show it" in out
    assert sorted(_all_catalog_names(operator, sandbox, demo)) == sorted(
        n for n in ("10 Piano Lessons", "5 Guitar Lessons", COMPLETE) if n != record["details"]["name"])


def test_a_fresh_unlisted_package_is_updated_not_refused_and_verified_without_false_change(
        workdir: Path, cli: CLI, operator: Any, sandbox: Any, demo: dict[str, Any]) -> None:
    operator("PUT", "/settings", json={"list_lag_seconds": 20})
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert "Verified: a fresh plan shows no changes." in err
    assert _listed_names(sandbox, demo) == []  # the list shows none of the three yet
    catalog = workdir / "manifests/catalog-packages.yaml"
    text = catalog.read_text()
    catalog.write_text(text.replace(f"name: {COMPLETE}", f"name: {COMPLETE} - renewed"))

    code, out, err = cli("plan", "--out", "plan.json")  # the stale check reads the saved plan's objects
    assert code == 0 and "update" in out, out + err
    code, out, err = cli("apply", "plan.json")
    assert code == 0, out + err
    assert "no longer exists" not in out + err and "stale" not in out + err
    assert "catalog_package.complete-musician: updated " in out
    assert "Verified: a fresh plan shows no changes." in err

    catalog.write_text(text)  # and back, without a saved plan
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert "no longer exists" not in out + err and "Verified: a fresh plan shows no changes." in err
    assert operator("GET", "/settings")["list_lag_seconds"] == 20.0  # the list was lagging all along
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 0 and "No changes." in out, out + err
    assert _listed_names(sandbox, demo) == []  # all of it while the list was still lagging
    assert _all_catalog_names(operator, sandbox, demo) == sorted(["10 Piano Lessons", "5 Guitar Lessons", COMPLETE])


def test_a_create_held_back_past_its_send_window_is_recorded_again_before_it_is_sent(
        workdir: Path, cli: CLI, operator: Any, sandbox: Any, demo: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A 429 asking to wait 3 s: the retry would leave 3 s after its pending record, later than the
    # 1 s the recovery of that record would count on; it is recorded afresh, then sent once.
    _bounds(monkeypatch, lag=0, window=1, skew=0)
    operator("POST", "/faults", json={**CATALOG_POST, "status": 429, "retry_after": 3})
    code, out, err = cli("apply", "--auto-approve", "manifests/catalog-packages.yaml")
    assert code == 0, out + err
    assert err.count("waited longer than its send window without being sent; recording it as pending again") == 1
    assert _posts(operator) == 4  # 3 creates, one of them refused once with 429 (never executed)
    names = _all_catalog_names(operator, sandbox, demo)
    assert names == sorted(set(names)) and len(names) == 3, names
    assert _state(workdir)["pending"] == {}

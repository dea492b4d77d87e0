"""``plan --refresh=changed`` (issue 19): read the catalog and only the tracked client packages
whose manifests changed; counted against the served sandbox's request statistics.  What it does
not read is not seen (drift reads everything), and apply's stale check still protects each change.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLI = Callable[..., tuple[int, str, str]]
CP_ROUTE = "/business/payments/v1/client_packages/{uid}"


def _count(stats: dict[str, Any], method: str, route: str) -> int:
    return sum(r["count"] for r in stats["requests"] if r["method"] == method and r["route"] == route)


def _ids(workdir: Path) -> dict[str, str]:
    state = json.loads((workdir / "manifests/.reconciler/state.json").read_text())
    return {a: r["id"] for a, r in state["resources"].items()}


def test_changed_reads_only_what_changed_and_sees_only_that(workdir: Path, cli: CLI, operator: Any) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    ids = _ids(workdir)
    clients = workdir / "manifests" / "client-packages.yaml"
    clients.write_text(clients.read_text().replace("valid_until: 2027-06-30", "valid_until: 2027-07-31"))
    # Changed in vcita by hand, not in the manifests: not read, so not seen by --refresh=changed.
    operator("PATCH", f"/objects/client_packages/{ids['client_package.grace-complete']}",
             json={"valid_until": "2030-01-01"})
    operator("DELETE", "/stats")
    code, out, err = cli("plan", "--refresh=changed", "--detailed-exitcode")
    assert code == 2, out + err
    stats = operator("GET", "/stats")
    catalog = _count(stats, "GET", "/platform/v1/payment/packages")
    emails = 2  # ben-guitar and farid-piano name their clients by e-mail
    assert _count(stats, "GET", CP_ROUTE) == 1  # emma-guitar only
    assert stats["total"] == 1 + catalog + 1 + emails and 1 <= catalog <= 2, stats
    assert "Plan: 0 to create, 1 to update, 0 to replace." in out, out
    assert "client_package.emma-guitar will be updated" in out and "grace-complete" not in out
    assert "7 tracked client package(s) whose manifests ask for what was last applied were not read" in out
    # A full refresh reads all eight and sees the hand edit (as a change back to the manifest).
    operator("DELETE", "/stats")
    code, out, err = cli("plan", "--detailed-exitcode")
    assert _count(operator("GET", "/stats"), "GET", CP_ROUTE) == 8
    assert "client_package.grace-complete will be updated" not in out  # valid_until is not managed there
    code, out, err = cli("drift")
    assert "grace-complete" in out, out


def test_apply_still_refuses_a_change_computed_against_an_object_edited_since(
        workdir: Path, cli: CLI, operator: Any) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    ids = _ids(workdir)
    clients = workdir / "manifests" / "client-packages.yaml"
    clients.write_text(clients.read_text().replace("valid_until: 2027-06-30", "valid_until: 2027-07-31"))
    code, out, err = cli("plan", "--refresh=changed", "--out", "plan.json")
    assert code == 0, out + err
    operator("PATCH", f"/objects/client_packages/{ids['client_package.emma-guitar']}",
             json={"valid_until": "2027-12-31"})
    code, out, err = cli("apply", "plan.json")
    assert code == 1
    assert "client_package.emma-guitar: stale" in out, out


def test_no_refresh_and_changed_together_are_refused(workdir: Path, cli: CLI) -> None:
    code, _out, err = cli("plan", "--no-refresh", "--refresh=changed")
    assert code != 0 and "give one of them" in err


def _state(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / "manifests/.reconciler/state.json").read_text())


def test_apply_changed_reads_and_changes_only_what_changed_then_verifies_it(
        workdir: Path, cli: CLI, operator: Any) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    ids = _ids(workdir)
    clients = workdir / "manifests" / "client-packages.yaml"
    clients.write_text(clients.read_text().replace("valid_until: 2027-06-30", "valid_until: 2027-07-31"))
    operator("PATCH", f"/objects/client_packages/{ids['client_package.grace-complete']}",
             json={"valid_until": "2030-01-01"})
    operator("DELETE", "/stats")
    code, out, err = cli("apply", "--refresh=changed", "--auto-approve")
    assert code == 0, out + err
    stats = operator("GET", "/stats")
    # emma-guitar is read three times (to plan it, by the stale check right before its update,
    # and by the verification) and changed once; no other client package is read.
    assert _count(stats, "GET", CP_ROUTE) == 3, stats
    puts = [r for r in stats["requests"] if r["method"] in ("PUT", "PATCH", "POST") and r["count"]]
    assert sum(r["count"] for r in puts) == 1 and _count(stats, "PUT", CP_ROUTE) == 1, puts
    assert "client_package.emma-guitar will be updated" in out and "grace-complete" not in out
    assert "Verified: a fresh plan shows no changes (--refresh=changed: it read again what was changed; " \
           "7 other tracked client package(s) were not read)" in err + out
    emma = operator("GET", f"/objects/client_packages/{ids['client_package.emma-guitar']}")
    assert "2027-07-31" in json.dumps(emma)
    grace = operator("GET", f"/objects/client_packages/{ids['client_package.grace-complete']}")
    assert "2030-01-01" in json.dumps(grace)  # not read, so not seen, so left alone
    assert _state(workdir)["resources"]["client_package.emma-guitar"]["applied"]["valid_until"] == "2027-07-31"
    # Nothing more changed: a second run reads no client package but the catalog's list.
    operator("DELETE", "/stats")
    code, out, err = cli("apply", "--refresh=changed", "--auto-approve")
    assert code == 0 and "No changes" in out, out + err
    assert _count(operator("GET", "/stats"), "GET", CP_ROUTE) == 0


def test_apply_changed_refuses_a_saved_plan_and_a_fleet_and_changes_nothing(
        workdir: Path, cli: CLI, operator: Any) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    clients = workdir / "manifests" / "client-packages.yaml"
    clients.write_text(clients.read_text().replace("valid_until: 2027-06-30", "valid_until: 2027-07-31"))
    assert cli("plan", "--refresh=changed", "--out", "plan.json")[0] == 0
    before = _state(workdir)
    operator("DELETE", "/stats")
    code, out, err = cli("apply", "plan.json", "--refresh=changed")
    assert code == 1 and "a saved plan was read when it was made" in err, (code, err)
    code, out, err = cli("apply", "--all", "--refresh=changed", "--auto-approve")
    assert code == 1 and "--refresh are not available with --all" in err, (code, err)
    assert operator("GET", "/stats")["total"] == 0 and _state(workdir) == before
    code, out, err = cli("apply", "plan.json")  # the saved plan itself applies
    assert code == 0, out + err

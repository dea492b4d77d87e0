"""``plan --refresh=changed`` (issue 19): read the catalog and only the tracked client packages
whose manifests changed; counted against the served sandbox's request statistics.  What it does
not read is not seen (drift reads everything), and apply's stale check still protects each change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

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
    code, out, err = cli("plan", "--no-refresh", "--refresh=changed")
    assert code != 0 and "give one of them" in err

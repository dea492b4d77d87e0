"""The user's loop against the served sandbox: plan, apply, edit, re-apply, saved plans, faults."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLI = Callable[..., tuple[int, str, str]]


def _client_packages(operator: Any, demo: dict[str, Any]) -> list[dict[str, Any]]:
    got = operator("GET", f"/client_packages?business_id={demo['business']['id']}")
    return got["client_packages"] if isinstance(got, dict) else got


def test_plan_apply_edit_reapply_converges(workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    code, out, _ = cli("plan", "--detailed-exitcode")
    assert code == 2
    assert "Plan: 11 to create, 0 to update, 0 to replace." in out

    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert "Apply complete: 11 done, 0 failed" in out
    assert "Verified: a fresh plan shows no changes." in err
    assert len(_client_packages(operator, demo)) == 8

    code, out, _ = cli("plan", "--detailed-exitcode")
    assert code == 0 and "No changes." in out

    catalog = workdir / "manifests" / "catalog-packages.yaml"
    catalog.write_text(catalog.read_text().replace("price: 540", "price: 560"))
    code, out, _ = cli("plan", "--detailed-exitcode", "--format", "json")
    assert code == 2
    plan = json.loads(out)
    changed = plan["operations"]
    assert [(c["address"], c["op"]) for c in changed] == [("catalog_package.piano-10", "update_catalog_package")]
    assert [fc["path"] for fc in changed[0]["field_changes"]] == ["price"]
    assert changed[0]["field_changes"][0]["before"] == "540" and changed[0]["field_changes"][0]["after"] == "560"

    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    code, out, _ = cli("plan", "--detailed-exitcode")
    assert code == 0, out
    assert len(_client_packages(operator, demo)) == 8


def test_saved_plan_applies_once(workdir: Path, cli: CLI) -> None:
    code, _, _ = cli("plan", "--out", "plan.json")
    assert code == 0
    code, out, err = cli("apply", "plan.json")
    assert code == 0, out + err
    code, out, err = cli("apply", "plan.json")
    assert code == 1
    assert "already applied" in out + err and "serial" in out + err


def test_saved_plan_refuses_an_object_changed_since(workdir: Path, cli: CLI, operator: Any) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    catalog = workdir / "manifests" / "catalog-packages.yaml"
    text = catalog.read_text()
    catalog.write_text(text.replace("price: 540", "price: 560").replace("price: 260", "price: 280"))
    assert cli("plan", "--out", "plan.json")[0] == 0
    state = json.loads((workdir / "manifests" / ".reconciler" / "state.json").read_text())
    guitar_id = state["resources"]["catalog_package.guitar-5"]["id"]
    operator("PATCH", f"/objects/packages/{guitar_id}", json={"description": "edited in the vcita UI"})
    code, out, _err = cli("apply", "plan.json")
    assert code == 1
    assert "catalog_package.guitar-5: stale" in out
    assert "catalog_package.piano-10: updated" in out  # only the changed object is refused


def test_lost_response_on_client_package_create_is_unknown_and_never_duplicated(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    operator("POST", "/faults", json={"method": "POST", "path": "/platform/v1/payment/client_packages",
                                       "door": "*", "drop_after_commit": True, "times": 1})
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1
    assert "unknown outcome" in out
    assert len(_client_packages(operator, demo)) == 8  # the dropped one was committed by the server
    # A target whose payment requests cannot serve as a second memory (issue 18; where they can,
    # tests/e2e/test_second_memory.py shows the plan adopting it): the state alone decides.
    operator("POST", "/faults", json={"path": "/business/payments/v1/payment_requests", "status": 404})

    code, out, err = cli("apply", "--auto-approve")  # a re-run must not create it again
    assert code == 1
    assert "unknown outcome of an earlier create" in out
    assert len(_client_packages(operator, demo)) == 8

    # A person checks vcita, finds the client package, and imports it; then all converges.
    state = json.loads((workdir / "manifests" / ".reconciler" / "state.json").read_text())
    assert state["target"]["business_id"] == demo["business"]["id"]
    tracked = {r["id"] for r in state["resources"].values()}
    orphans = [cp for cp in _client_packages(operator, demo) if cp["id"] not in tracked]
    assert len(orphans) == 1
    # the outcome line of apply (the plan printed before it shows the pending create too)
    unknown = next(line.split(":")[0] for line in out.splitlines()
               if "unknown outcome" in line and line.startswith("client_package."))
    code, out, err = cli("import", unknown, orphans[0]["id"])
    assert code == 0, out + err
    assert "its pending create is resolved" in out
    code, out, _ = cli("plan", "--detailed-exitcode")
    assert code == 0, out
    assert len(_client_packages(operator, demo)) == 8


def test_import_refuses_a_client_package_of_another_client(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    state = json.loads((workdir / "manifests" / ".reconciler" / "state.json").read_text())
    bens = state["resources"]["client_package.ben-guitar"]["id"]
    assert cli("state", "rm", "client_package.alice-piano", "--yes")[0] == 0
    before = (workdir / "manifests" / ".reconciler" / "state.json").read_bytes()
    code, _out, err = cli("import", "client_package.alice-piano", bens)
    assert code == 1
    assert "is already tracked as client_package.ben-guitar" in err
    assert (workdir / "manifests" / ".reconciler" / "state.json").read_bytes() == before


def test_no_refresh_plans_from_state_alone(workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    operator("DELETE", "/stats")
    code, out, _ = cli("plan", "--no-refresh", "--detailed-exitcode")
    assert code == 0, out
    assert "planned from state alone" in out and "No changes." in out
    assert operator("GET", "/stats")["total"] == 0  # not a single request
    catalog = workdir / "manifests" / "catalog-packages.yaml"
    catalog.write_text(catalog.read_text().replace("price: 260", "price: 275"))
    code, out, _ = cli("plan", "--no-refresh", "--detailed-exitcode")
    assert code == 2 and "~ price = 260 -> 275" in out



def test_a_no_refresh_plan_that_creates_is_refused_by_apply_and_a_lost_state_bills_nobody_twice(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    # A CI runner with an empty state (or a lost one) that saves a --no-refresh plan: the plan
    # creates everything again (it never looked in vcita); applying it would bill every client twice.
    assert cli("apply", "--auto-approve")[0] == 0
    before = _client_packages(operator, demo)
    state = workdir / "manifests" / ".reconciler" / "state.json"
    state.unlink()
    # a fresh runner has no backup either (with one, apply refuses to start a new state over it:
    # tests/state/test_lost_state_backup.py)
    state.with_name("state.json.backup").unlink()
    code, out, _ = cli("plan", "--no-refresh", "--out", "plan.json")
    assert code == 0, out
    assert "apply refuses this plan" in out
    code, md, _ = cli("plan", "--no-refresh", "--format", "markdown")
    assert "apply refuses this plan" in md
    operator("DELETE", "/stats")
    code, out, err = cli("apply", "plan.json", "--auto-approve")
    assert code == 1, out + err
    assert "made with --no-refresh and creates 11 object(s)" in err and "plan --out plan.json" in err, err
    assert operator("GET", "/stats")["total"] == 0  # refused before a single request
    assert _client_packages(operator, demo) == before and not state.exists()
    # the plan the refusal asks for finds them in vcita (the second memory): nothing is created twice
    code, out, err = cli("plan", "--out", "plan.json")
    assert "already exists in vcita" in out + err and "0 to create" in out, out + err
    assert len(_client_packages(operator, demo)) == len(before)


def test_a_no_refresh_plan_that_only_updates_still_applies(workdir: Path, cli: CLI) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    catalog = workdir / "manifests" / "catalog-packages.yaml"
    catalog.write_text(catalog.read_text().replace("price: 260", "price: 275"))
    code, out, _ = cli("plan", "--no-refresh", "--out", "plan.json")
    assert code == 0 and "apply refuses" not in out, out
    code, out, err = cli("apply", "plan.json", "--auto-approve")
    assert code == 0, out + err
    assert cli("plan", "--detailed-exitcode")[0] == 0

def test_partial_failure_skips_dependents_and_a_rerun_continues(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    operator("POST", "/faults", json={"method": "POST", "path": "/platform/v1/payment/packages", "door": "*",
                                       "status": 422, "times": 1,
                                       "body": {"status": "Error", "error": "Name is invalid"}})
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1
    failed = [line.split(":")[0] for line in out.splitlines() if ": failed:" in line]
    assert len(failed) == 1 and failed[0].startswith("catalog_package.")
    assert out.count("Name is invalid") == 1, out  # the server's message, said once
    skipped = [line for line in out.splitlines() if ": skipped:" in line]
    assert skipped and all(failed[0] in line for line in skipped)
    assert "Apply incomplete: " in out
    state = json.loads((workdir / "manifests" / ".reconciler" / "state.json").read_text())
    assert failed[0] not in state["resources"]
    assert len(state["resources"]) == 11 - 1 - len(skipped)

    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert f"Apply complete: {1 + len(skipped)} done" in out
    assert len(_client_packages(operator, demo)) == 8


def test_a_business_folder_with_target_toml_is_its_own_target(
        workdir: Path, cli: CLI, sandbox: Any, demo: dict[str, Any], monkeypatch: Any) -> None:
    """`reconciler plan manifests/acme` uses manifests/acme/target.toml, as `plan --all` does."""
    for var in ("VCITA_GATEWAY_URL", "VCITA_FALLBACK_URL", "VCITA_BUSINESS_ID", "VCITA_STAFF_TOKEN"):
        monkeypatch.delenv(var)
    acme = workdir / "fleet" / "acme"
    acme.mkdir(parents=True)
    for f in (workdir / "manifests").glob("*.yaml"):
        (acme / f.name).write_text(f.read_text())
    (acme / "target.toml").write_text(
        f'gateway_url = "{sandbox.gateway_url}"\nfallback_url = "{sandbox.fallback_url}"\n'
        f'business_id = "{demo["business"]["id"]}"\ntoken_env = "ACME_TOKEN"\n')
    code, out, err = cli("plan", "fleet/acme")
    assert code == 1 and "ACME_TOKEN" in err  # the folder's target is used, and it needs its token
    monkeypatch.setenv("ACME_TOKEN", demo["tokens"]["staff"])
    code, out, err = cli("plan", "fleet/acme", "--detailed-exitcode")
    assert code == 2, err
    assert f"Target: business {demo['business']['id']} at {sandbox.gateway_url}" in out
    code, out, err = cli("plan", "fleet/acme", "--target", "embedded")
    assert code == 0 and "embedded sandbox" in out

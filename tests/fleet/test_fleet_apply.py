"""``apply --all``: a fleet applied business by business, each under its own lock, from a saved
fleet plan (``plan --all --out``) or a fresh one, with shards; with the file backend and with the
postgres backend (each folder's ``target.toml`` choosing it, states moved in by ``state push``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.remote.target import Secret
from reconciler.state.backends.postgres import PostgresStateStore
from reconciler.state.store import StateStore, TargetRef

CLI = Callable[..., tuple[int, str, str]]


def bump(root: Path, business: str, price: int) -> None:
    f = root / business / "bulk-package-1.yaml"
    text, n = re.subn(r"(?m)^(\s*)price: \d+$", rf"\g<1>price: {price}", f.read_text())
    assert n == 1
    f.write_text(text)


def rows_of(out: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in out.splitlines()[2:] if line and not line.startswith(("-", "Error", "apply"))}


def test_a_saved_fleet_plan_applies_once(fleet: dict[str, Any], cli: CLI, tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    bump(root, "acme", 11)
    bump(root, "gamma", 12)
    code, out, err = cli("plan", "--all", "--out", "fleet.json")
    assert code == 0, out + err
    code, _, err = cli("apply", "fleet.json")
    assert code == 1 and "is a fleet plan" in err and "apply --all fleet.json" in err
    # sealed: a fleet plan edited anywhere after it was made (here: one price) is refused whole
    saved = (tmp_path / "fleet.json").read_text()
    assert json.loads(saved)["seal"].startswith("sha256:")
    edited = tmp_path / "edited.json"
    edited.write_text(saved.replace('"price": 11', '"price": 1', 1) if '"price": 11' in saved
                      else saved.replace('"business": "acme"', '"business": "acme "', 1))
    assert edited.read_text() != saved
    code, out, err = cli("apply", "--all", "edited.json")
    assert code == 1 and "does not match its seal" in err and "applied" not in out
    unsealed = json.loads(saved)
    del unsealed["seal"]
    edited.write_text(json.dumps(unsealed))
    code, _, err = cli("apply", "--all", "edited.json")
    assert code == 1 and "carries no seal" in err
    code, out, err = cli("apply", "--all", "fleet.json")
    assert code == 0, out + err
    table = rows_of(out)
    assert table["acme"][2] == "applied" and table["gamma"][2] == "applied"
    assert table["beta"][2:4] == ["no", "changes"]
    assert cli("plan", "--all", "--detailed-exitcode")[0] == 0  # vcita now matches every business's manifests
    # applied once: the same plan again is refused for what it changed, and nothing is sent
    code, out, _ = cli("apply", "--all", "fleet.json", "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["command"] == "apply"
    by = {b["business"]: b for b in doc["businesses"]}
    assert by["acme"]["exit_code"] == 1 and "state" in by["acme"]["error"]
    assert by["beta"]["exit_code"] == 0
    assert cli("plan", "--all", "--detailed-exitcode")[0] == 0


def test_apply_all_needs_approval_takes_shards_and_reports_a_locked_business(
        fleet: dict[str, Any], cli: CLI, tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    for i, name in enumerate(sorted(fleet)):
        bump(root, name, 20 + i)
    code, _, err = cli("apply", "--all")
    assert code == 1 and "needs --auto-approve" in err
    from reconciler.fleet.businesses import shard_of

    in_zero = sorted(n for n in fleet if shard_of(n, 2) == 0)
    held = StateStore(root / "beta" / ".reconciler" / "state.json")
    with held.lock("a person's state rm"):
        code, out, err = cli("apply", "--all", "--auto-approve", "--shard", "0/2")
        table = rows_of(out)
        assert sorted(table) == in_zero
        if "beta" in in_zero:
            assert code == 1 and table["beta"][1] == "error" and "Error: beta: the state is locked by" in out
        code, out, err = cli("apply", "--all", "--auto-approve", "--shard", "1/2")
    code, out, err = cli("apply", "--all", "--auto-approve")
    assert code == 0, out + err  # what was locked before is applied now; the rest has nothing to do
    assert cli("plan", "--all", "--detailed-exitcode")[0] == 0


def test_fleet_on_postgres_pushed_planned_and_applied(fleet: dict[str, Any], cli: CLI, tmp_path: Path, pg_dsn: str,
                                                      sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "manifests"
    monkeypatch.setenv("FLEET_DSN", pg_dsn)
    for name in fleet:  # onboarding: each folder's state file into the database
        code, out, err = cli("state", "push", "--manifests", str(root / name), "--state-backend", "postgres",
                             "--state-dsn-env", "FLEET_DSN")
        assert code == 0, out + err
        (root / name / ".reconciler" / "state.json").rename(root / name / "pushed.json.bak")
        with (root / name / "target.toml").open("a") as f:
            f.write('state = "postgres"\nstate_dsn_env = "FLEET_DSN"\n')
    code, out, err = cli("plan", "--all", "--detailed-exitcode")
    assert code == 0, out + err  # the states come from the database: nothing to create
    bump(root, "delta", 33)
    code, out, err = cli("plan", "--all", "--out", "fleet.json")
    assert code == 0
    code, out, err = cli("apply", "--all", "fleet.json")
    assert code == 0 and rows_of(out)["delta"][2] == "applied", out + err
    delta = PostgresStateStore(Secret(pg_dsn), TargetRef(gateway_url=sandbox.gateway_url,
                                                        business_id=fleet["delta"]["business_id"]))
    assert delta.load().serial >= 2
    assert not any((root / n / ".reconciler" / "state.json").exists() for n in fleet)
    code, out, err = cli("state", "businesses", "--state-backend", "postgres", "--state-dsn-env", "FLEET_DSN")
    assert code == 0 and all(b["business_id"] in out for b in fleet.values())
    with delta.lock("someone else's apply"):
        bump(root, "delta", 34)
        code, out, err = cli("apply", "--all", "--auto-approve")
        assert code == 1 and "Error: delta:" in out and "is locked by" in out
    code, out, err = cli("apply", "--all", "--auto-approve")
    assert code == 0 and rows_of(out)["delta"][2] == "applied", out + err


def test_a_saved_fleet_plan_is_refused_for_a_business_another_runner_applied_since(
        fleet: dict[str, Any], cli: CLI, tmp_path: Path, operator: Any) -> None:
    # A fleet plan saved for review; meanwhile another runner, with its own copy of one business's
    # folder and state, applies that business.  The fleet apply looks in vcita again (as a saved
    # plan's apply does) and refuses that business instead of selling the package a second time.
    import shutil

    acme, b = tmp_path / "manifests" / "acme", fleet["acme"]
    name = re.search(r"(?m)^  name: (\S+)$", (acme / "bulk-package-1.yaml").read_text())
    assert name is not None
    (acme / "sale.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: ClientPackage\nmetadata:\n  name: first-sale\nspec:\n"
        f"  client: {b['clients'][0]['id']}\n  package: {name.group(1)}\n")
    code, out, err = cli("plan", "--all", "--out", "fleet.json")
    assert code == 0, out + err
    other = tmp_path / "other-runner" / "acme"
    shutil.copytree(acme, other)
    code, out, err = cli("apply", "--auto-approve", str(other))
    assert code == 0, out + err

    def sold() -> int:
        got = operator("GET", f"/client_packages?business_id={b['business_id']}")
        return len(got["client_packages"] if isinstance(got, dict) else got)

    assert sold() == 1
    code, out, err = cli("apply", "--all", "fleet.json")
    assert code == 1, out + err
    assert "since this plan was made, vcita got 1 of the client packages it would create" in out + err, out + err
    assert sold() == 1

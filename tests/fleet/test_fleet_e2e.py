"""``plan --all`` / ``drift --all`` over per-business folders against the served sandbox."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLI = Callable[..., tuple[int, str, str]]


def _state_id(root: Path, business: str, address: str) -> str:
    state = json.loads((root / business / ".reconciler" / "state.json").read_text())
    return str(state["resources"][address]["id"])


def test_drift_all_reports_each_business_and_exits_with_the_worst(
        fleet: dict[str, Any], cli: CLI, operator: Any, tmp_path: Path, monkeypatch: Any) -> None:
    # The global variables are ignored with --all: each folder has its own target.
    monkeypatch.setenv("VCITA_BUSINESS_ID", "not-this-one")
    code, out, err = cli("drift", "--all")
    assert code == 0, out + err
    assert "drift --all: 4 businesses: 4 in sync. Exit code 0." in out

    root = tmp_path / "manifests"
    operator("PATCH", f"/objects/packages/{_state_id(root, 'beta', 'catalog_package.bulk-package-2')}",
             json={"price": "12.0"})
    gamma = root / "gamma" / "bulk-package-1.yaml"
    gamma.write_text(gamma.read_text().replace("price: 10", "price: 11"))
    code, out, _ = cli("drift", "--all")
    assert code == 2
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:6]}
    assert rows["beta"][2:5] == ["drift", "1", "0"]
    assert rows["gamma"][2:5] == ["pending", "0", "1"]
    assert rows["acme"][2] == rows["delta"][2] == "in"  # "in sync"

    code, out, _ = cli("drift", "--all", "--format", "json", "--out", "fleet.json")
    doc = json.loads(out)
    assert doc == json.loads((tmp_path / "fleet.json").read_text())
    assert doc["exit_code"] == 2 and doc["format_version"] == 1
    beta = next(b for b in doc["businesses"] if b["business"] == "beta")
    assert beta["business_id"] == fleet["beta"]["business_id"]
    assert beta["report"]["objects"][0]["fields"][0]["path"] == "price"

    # A business that fails (here: no target) is an error row; the others are still reported.
    (root / "zeta").mkdir()
    (root / "zeta" / "p.yaml").write_text(gamma.read_text())
    code, out, _ = cli("drift", "--all")
    assert code == 1
    assert "Error: zeta: no target for business folder" in out and "beta" in out


def test_plan_all_and_shards(fleet: dict[str, Any], cli: CLI, tmp_path: Path) -> None:
    code, out, _ = cli("plan", "--all", "--detailed-exitcode", "--format", "markdown")
    assert code == 0 and "plan --all: 4 businesses: 4 no changes. Exit code 0." in out
    acme = tmp_path / "manifests" / "acme" / "bulk-package-3.yaml"
    acme.write_text(acme.read_text().replace("price: 10", "price: 15"))
    code, out, _ = cli("plan", "--all", "--detailed-exitcode")
    assert code == 2 and "1 changes" in out
    assert cli("plan", "--all")[0] == 0  # without --detailed-exitcode changes are not an exit code

    seen: list[str] = []
    for i in range(3):
        code, out, _ = cli("drift", "--all", "--shard", f"{i}/3", "--format", "json")
        seen += [b["business"] for b in json.loads(out)["businesses"]]
    assert sorted(seen) == ["acme", "beta", "delta", "gamma"]
    code, _, err = cli("drift", "--shard", "0/3")
    assert code == 1 and "needs --all" in err
    code, _, err = cli("drift", "--all", "--business-id", "x")
    assert code == 1 and "cannot be used with --all" in err


def test_a_folder_can_be_named_in_reconciler_toml(fleet: dict[str, Any], cli: CLI, tmp_path: Path,
                                                  sandbox: Any, monkeypatch: Any) -> None:
    folder = tmp_path / "manifests" / "acme"
    (folder / "target.toml").unlink()
    monkeypatch.setenv("ACME_TOKEN", fleet["acme"]["staff_token"])
    (tmp_path / "reconciler.toml").write_text(
        f'[targets.acme]\ngateway_url = "{sandbox.gateway_url}"\nfallback_url = "{sandbox.fallback_url}"\n'
        f'business_id = "{fleet["acme"]["business_id"]}"\ntoken_env = "ACME_TOKEN"\n')
    code, out, err = cli("drift", "--all")
    assert code == 0, out + err

    (tmp_path / "manifests" / "beta" / "target.toml").write_text(
        f'gateway_url = "{sandbox.gateway_url}"\nbusiness_id = "x"\nstaff_token = "secret-value"\n')
    code, out, _ = cli("drift", "--all")
    assert code == 1 and "looks like a literal credential" in out and "secret-value" not in out

"""``--only ADDRESS`` (issue 19): plan and apply a part of the manifests, and say what was left out.

Against the served sandbox: nothing outside the selection is changed, archived or forgotten; a
selected client package brings the catalog package it names; a saved plan keeps its selection; a
pattern that names nothing is refused before anything happens.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]


def _state(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / "manifests/.reconciler/state.json").read_text())


def test_only_plans_the_selection_and_leaves_the_rest_alone(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    clients = workdir / "manifests" / "client-packages.yaml"
    text = clients.read_text()
    docs = text.split("\n---\n")
    # hugo-guitar's price changes (a replacement), alice-piano leaves the manifests (an archive):
    # neither is selected, so neither happens.  The set sells piano-10 to Isla and Ben, who have
    # none (Farid, tracked with piano-10 and no valid_from declared, would be a second sale).
    changed = [d.replace("price: 230", "price: 235") for d in docs if "name: alice-piano" not in d]
    clients.write_text("\n---\n".join(changed)
                       + "\n---\napiVersion: reconciler/v1\nkind: ClientPackageSet\nmetadata:\n  name: spring\n"
                         "spec:\n  package: piano-10\n  valid_from: 2027-03-01\n  valid_for: 3M\n  clients:\n"
                         "    - {email: isla.novak@example.com}\n    - 7omq1goalpsourny\n")
    serial = _state(workdir)["serial"]
    code, out, err = cli("plan", "--detailed-exitcode", "--only", "client_package_set.spring[*]")
    assert code == 2, out + err
    assert "Plan: 2 to create, 0 to update, 0 to replace." in out, out
    assert "to archive" not in out and "hugo-guitar will be" not in out
    assert "--only client_package_set.spring[*]: 9 manifest object(s) left out" in out
    assert "added as dependencies: catalog_package.piano-10" in out
    assert "Unmanaged remote catalog packages" not in out  # tracked, only outside the selection
    # One of the two, by an exact address, then ? as a wildcard.
    code, out, err = cli("apply", "--auto-approve", "--only", 'client_package_set.spring["isla.novak@example.com"]')
    assert code == 0, out + err
    assert "Plan: 1 to create" in out and "Apply complete: 1 done" in out, out
    st = _state(workdir)
    assert st["serial"] > serial
    assert "client_package.alice-piano" in st["resources"] and not st["archived"]
    assert st["resources"]["client_package.hugo-guitar"]["applied"]["price"] == "230"
    code, out, err = cli("plan", "--only", "client_package_set.spr?ng[*]", "--detailed-exitcode")
    assert code == 2 and "Plan: 1 to create" in out and "7omq1goalpsourny" in out, out
    assert len(client_packages(operator, demo)) == 9


def test_a_pattern_that_names_nothing_is_refused_and_changes_nothing(workdir: Path, cli: CLI) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    before = (workdir / "manifests/.reconciler/state.json").read_bytes()
    code, out, err = cli("apply", "--auto-approve", "--only", "client_package.alice-piano", "--only", "client_package.zed*")
    assert code != 0
    assert "--only 'client_package.zed*' matches no object of the manifests" in err, out + err
    assert (workdir / "manifests/.reconciler/state.json").read_bytes() == before


def test_a_saved_plan_keeps_its_selection(workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    saved = workdir / "plan.json"
    code, out, err = cli("plan", "--only", "client_package.alice-piano", "--out", str(saved))
    assert code == 0, out + err
    assert "Plan: 2 to create" in out  # alice-piano and the catalog package it names
    assert json.loads(saved.read_text())["only"] == ["client_package.alice-piano"]
    code, out, err = cli("apply", str(saved), "--only", "client_package.*")
    assert code != 0 and "--only is part of a saved plan" in err, out + err
    code, out, err = cli("apply", str(saved))
    assert code == 0, out + err
    assert set(_state(workdir)["resources"]) == {"client_package.alice-piano", "catalog_package.piano-10"}
    assert len(client_packages(operator, demo)) == 1

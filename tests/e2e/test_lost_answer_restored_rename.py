"""An attack on the create path: a lost answer, a state that forgot it, and a rename, together.

An apply creates alice's package but its answer is lost (the pending record says so); the runner
is lost with its state, and the next one starts from the copy before that apply (no pending record,
alice untracked); meanwhile the team renamed ``alice-piano`` to ``alice-lessons``.  Nothing in the
state ties ``alice-lessons`` to the package vcita made: the plan must see it through the payment
requests (the second memory), refuse the create, and ``import --discover`` must adopt it under the
new name; no payment request is opened twice, whatever order the steps come in.  A saved plan made
before the lost apply is refused too.  Served sandbox, through the CLI.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
CREATE = "/platform/v1/payment/client_packages"
ALICE = "ktsrl7f6h94run82"


def _state_file(workdir: Path) -> Path:
    return workdir / "manifests" / ".reconciler" / "state.json"


def _rename_alice(workdir: Path) -> None:
    path = workdir / "manifests" / "client-packages.yaml"
    path.write_text(path.read_text().replace("name: alice-piano\n", "name: alice-lessons\n"))


def _alice(operator: Any, demo: dict[str, Any]) -> list[dict[str, Any]]:
    return [cp for cp in client_packages(operator, demo) if cp["client_id"] == ALICE]


def test_a_lost_answer_forgotten_with_the_state_and_renamed_is_never_sold_twice(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve", "manifests/catalog-packages.yaml")[0] == 0
    older = workdir / "older-state.json"
    shutil.copy(_state_file(workdir), older)
    assert cli("plan", "--out", "before.json")[0] == 0  # a plan saved for review before the lost apply
    operator("POST", "/faults", json={"method": "POST", "path": CREATE, "door": "*", "drop_after_commit": True,
                                      "times": 1})
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1 and "1 unknown" in out, out + err
    operator("DELETE", "/faults")
    assert len(json.loads(_state_file(workdir).read_text())["pending"]) == 1
    lost = {cp["id"] for cp in client_packages(operator, demo)}
    assert len(lost) == 8  # the lost answer's package was made

    shutil.copy(older, _state_file(workdir))  # the runner is gone with its state: the older copy
    _rename_alice(workdir)
    code, out, err = cli("plan")
    assert code == 1, out + err
    assert "already exists in vcita" in out + err and "reconciler import --discover" in out + err
    assert cli("apply", "--auto-approve")[0] == 1
    code, out, err = cli("apply", "before.json")  # the plan saved before: refused as well
    assert code != 0, out + err
    assert {cp["id"] for cp in client_packages(operator, demo)} == lost

    code, out, err = cli("import", "--discover")
    assert code == 0, out + err
    tracked = json.loads(_state_file(workdir).read_text())["resources"]
    assert tracked["client_package.alice-lessons"]["id"] in {cp["id"] for cp in _alice(operator, demo)}
    assert "client_package.alice-piano" not in tracked
    assert cli("plan", "--detailed-exitcode")[0] == 0
    assert {cp["id"] for cp in client_packages(operator, demo)} == lost and len(_alice(operator, demo)) == 1

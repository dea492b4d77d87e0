"""Paths of two states in one run are refused.

The state is the one beside the *first* path, so ``plan a b`` and ``plan b a`` used different
states when both folders had one: the client packages the other state tracks looked untracked,
and each was a create (sold again wherever the payment requests cannot be listed).  Served
sandbox, through the CLI.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]


def _clients_with_their_own_state(workdir: Path) -> Path:
    """client-packages.yaml moved to clients/ (beside manifests/, catalog packages by id), with
    the state that tracks them; manifests/'s state keeps the catalog packages only (a team that
    split its repository in two, each folder with its state)."""
    state = json.loads((workdir / "manifests/.reconciler/state.json").read_text())
    ids = {a.split(".", 1)[1]: r["id"] for a, r in state["resources"].items() if a.startswith("catalog_package.")}
    text = (workdir / "manifests" / "client-packages.yaml").read_text()
    for name, remote_id in ids.items():
        text = re.sub(rf"package: {name}\b", f"package: {{id: {remote_id}}}", text)
    clients = workdir / "clients"
    clients.mkdir()
    (clients / "client-packages.yaml").write_text(text)
    (workdir / "manifests" / "client-packages.yaml").unlink()
    shutil.copytree(workdir / "manifests" / ".reconciler", clients / ".reconciler")
    # the catalog's state forgets the client packages: clients/ tracks them now
    state["resources"] = {a: r for a, r in state["resources"].items() if a.startswith("catalog_package.")}
    state["serial"] += 1
    (workdir / "manifests/.reconciler/state.json").write_text(json.dumps(state, indent=2))
    return clients


def test_a_run_over_the_paths_of_two_states_is_refused_whichever_comes_first(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    sold = len(client_packages(operator, demo))
    clients = _clients_with_their_own_state(workdir)
    # the payment requests cannot be listed: only the state stands between these and a second sale
    operator("POST", "/faults", json={"path": "/business/payments/v1/payment_requests", "status": 404})
    for paths in (["manifests", str(clients)], [str(clients), "manifests"]):
        code, out, err = cli("apply", "--auto-approve", *paths)
        assert code == 1 and "these manifests have more than one state" in out + err, out + err
        assert "nothing was read or written" in out + err
    assert len(client_packages(operator, demo)) == sold
    # one state chosen on purpose: the run goes on with it
    code, out, err = cli("plan", "--state", "manifests/.reconciler/state.json", "manifests", str(clients))
    assert "more than one state" not in out + err, out + err
    assert code == 0, out + err

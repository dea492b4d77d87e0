"""``export`` does not take over the client package of a create whose answer was lost.

An apply loses the answer to ``alice-piano``'s create (vcita made it): the state holds a pending
create.  ``export --force`` (adding to the folder's ``client-packages.yaml``) used to find that
package through the payment requests and record it under an export name
(``piano-10-<client>``): the pending create then never settled (the package it looks for is
tracked by another address, so it is "not found"), and once a person forgot it
(``state forget-intent``), an object saying ``repeat_purchase: true`` was sold again: two
packages, two payment requests, for one declared sale.  Export now leaves out the packages of a
pending create's client and catalog package, says why, and the next apply adopts it at its own
address.  Served sandbox, through the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
CREATE = "/platform/v1/payment/client_packages"
ALICE = "ktsrl7f6h94run82"


def _state(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / "manifests" / ".reconciler" / "state.json").read_text())


def test_export_leaves_a_pending_creates_package_to_the_plan(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    clients = workdir / "manifests" / "client-packages.yaml"
    text = clients.read_text()
    clients.write_text(text.replace("  package: piano-10\n", "  package: piano-10\n  repeat_purchase: true\n", 1))
    operator("POST", "/faults", json={"method": "POST", "path": CREATE, "drop_after_commit": True, "times": 1})
    code, out, err = cli("apply", "--auto-approve", "--concurrency", "1")
    operator("DELETE", "/faults")
    assert code == 1 and "1 unknown" in out, out + err
    [intent] = _state(workdir)["pending"].values()
    assert intent["address"] == "client_package.alice-piano"
    [made] = [cp["id"] for cp in client_packages(operator, demo) if cp["client_id"] == ALICE]

    code, out, err = cli("export", "--force", "--skip-tracked")
    assert code == 0, out + err
    said = " ".join((out + err).split())
    assert f"client package not exported: {made}: it may be the client package of client_package.alice-piano" in said
    assert made not in clients.read_text()
    assert made not in {r["id"] for r in _state(workdir)["resources"].values()}

    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    state = _state(workdir)
    assert state["pending"] == {} and state["resources"]["client_package.alice-piano"]["id"] == made
    assert len(client_packages(operator, demo)) == 8  # one package per declared sale, nothing sold twice

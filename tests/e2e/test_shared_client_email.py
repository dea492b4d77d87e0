"""A client written by e-mail when several vcita clients have that e-mail (vcita refuses a new
client of an existing e-mail, but an e-mail edited later, or in another case, can collide):
which client the object is for cannot be told, and the API's first match may change from one plan
to the next, so a tracked object would be "replaced" onto the other client and a new one created
for the wrong client.  The plan refuses the object, naming both clients; nothing is sent, even
with --allow-replace.  ``import`` refuses it too, and ``import --discover`` leaves it out, saying
why, rather than adopt the API's first client's package."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
ALICE, BEN = "ktsrl7f6h94run82", "7omq1goalpsourny"
BEN_COMPLETE = """
---
apiVersion: reconciler/v1
kind: ClientPackage
metadata:
  name: ben-complete
spec:
  client: {email: Ben.Cohen@example.com}
  package: complete-musician
"""


def test_an_email_two_clients_share_is_refused_not_resolved_to_either(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    sold = client_packages(operator, demo)
    operator("PATCH", f"/objects/clients/{ALICE}", json={"email": "BEN.COHEN@example.com"})  # Alice is older
    clients = workdir / "manifests" / "client-packages.yaml"
    clients.write_text(clients.read_text() + BEN_COMPLETE)
    for args in (("apply", "--auto-approve", "--allow-replace"), ("plan",)):
        code, out, err = cli(*args)
        assert client_packages(operator, demo) == sold, f"a client package was sold to a client by e-mail: {out}"
        assert code == 1, out + err
        for address in ("client_package.ben-guitar", "client_package.ben-complete"):
            assert (f"{address}: spec.client: 2 clients of this business have the e-mail") in out + err
        assert f"({ALICE}, {BEN})" in out + err


def test_import_and_discover_do_not_pick_one_of_the_clients_an_email_names(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    state = workdir / "manifests" / ".reconciler" / "state.json"
    ben_guitar = json.loads(state.read_text())["resources"]["client_package.ben-guitar"]["id"]
    operator("PATCH", f"/objects/clients/{ALICE}", json={"email": "BEN.COHEN@example.com"})
    assert cli("state", "rm", "--yes", "client_package.ben-guitar")[0] == 0
    assert cli("state", "rm", "--yes", "--archived", ben_guitar)[0] == 0
    code, out, err = cli("import", "client_package.ben-guitar", ben_guitar)
    assert code != 0, out + err
    assert f"2 clients have the e-mail ben.cohen@example.com ({ALICE}, {BEN})" in out + err
    code, out, err = cli("import", "--discover")
    assert "client_package.ben-guitar" not in json.loads(state.read_text())["resources"]
    assert "client_package.ben-guitar: not matched: several clients have its e-mail" in out + err

"""A create answered 2xx whose body cannot be read was executed: never recorded as failed.

Issue 12 (item 2): the applier closed the intent of such a create as *failed*, and the next
apply created the client package again (a second payment request).  The sandbox executes each
create and then strips a field from its answer; apply must report an unknown outcome with the id
the answer showed, keep the intent open, create nothing on the next run, and converge once the
ids are imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
CREATE = "/platform/v1/payment/client_packages"


def test_a_create_answered_with_an_unreadable_body_is_never_sent_again(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    operator("POST", "/faults", json={"method": "POST", "path": CREATE, "strip_fields": ["client_id"]})
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err
    made = {cp["id"] for cp in client_packages(operator, demo)}
    assert len(made) == 8  # vcita executed every create
    assert "Apply incomplete: 3 done, 0 failed, 8 unknown." in out
    imports = dict(re.findall(r"'reconciler import (client_package\.[a-z0-9-]+) ([a-z0-9]{16})'", out))
    assert len(imports) == 8 and set(imports.values()) == made  # each message names the id to import

    operator("DELETE", "/faults")
    # The state-only path (a target whose payment requests are no second memory, issue 18).
    operator("POST", "/faults", json={"path": "/business/payments/v1/payment_requests", "status": 404})
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err  # blocked until a person resolves them: never created again
    assert "unknown outcome of an earlier create" in out + err
    assert len(client_packages(operator, demo)) == 8

    for address, uid in imports.items():
        code, out, err = cli("import", address, uid)
        assert code == 0, out + err
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    code, out, _ = cli("plan", "--detailed-exitcode")
    assert code == 0, out
    assert {cp["id"] for cp in client_packages(operator, demo)} == made  # exactly one each, none lost



def test_an_update_answered_with_another_package_moves_nothing_in_the_state(
        workdir: Path, cli: CLI, operator: Any, sandbox: Any, demo: dict[str, Any]) -> None:
    # A server (or a proxy) that answers an update of alice's package with ben's: recorded, the
    # state would track ben's package under alice's address and forget alice's.
    import json

    import httpx

    assert cli("apply", "--auto-approve")[0] == 0
    state_file = workdir / "manifests" / ".reconciler" / "state.json"
    before = json.loads(state_file.read_text())["resources"]
    alice, ben = before["client_package.alice-piano"]["id"], before["client_package.ben-guitar"]["id"]
    path = workdir / "manifests" / "client-packages.yaml"
    old = "  client: ktsrl7f6h94run82                # Alice Martin\n  package: piano-10\n"
    path.write_text(path.read_text().replace(old, old + "  valid_until: 2031-01-31\n"))
    ben_answer = httpx.get(f"{sandbox.fallback_url}/business/payments/v1/client_packages/{ben}", timeout=10,
                           headers={"Authorization": f"Bearer {demo['tokens']['staff']}"}).json()
    assert ben_answer["data"]["client_package"]["id"] == ben
    operator("POST", "/faults", json={"method": "PUT", "path": f"/business/payments/v1/client_packages/{alice}",
                                      "door": "*", "status": 200, "body": ben_answer})
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err
    assert "client_package.alice-piano: failed: " in out and f"package {ben}, not {alice}" in out, out
    after = json.loads(state_file.read_text())["resources"]
    assert after["client_package.alice-piano"]["id"] == alice and after["client_package.ben-guitar"]["id"] == ben
    operator("DELETE", "/faults")
    assert cli("apply", "--auto-approve")[0] == 0
    assert cli("plan", "--detailed-exitcode")[0] == 0


def test_a_read_answered_with_another_package_is_never_imported_nor_planned_from(
        workdir: Path, cli: CLI, operator: Any, sandbox: Any, demo: dict[str, Any]) -> None:
    # A proxy's cache answers the read of alice's package with ben's.  Imported, the state would
    # track ben's package under alice's address (and forget alice's); refreshed, alice's would be
    # planned from ben's values.
    import json

    import httpx

    assert cli("apply", "--auto-approve")[0] == 0
    state_file = workdir / "manifests" / ".reconciler" / "state.json"
    ids = {a: rs["id"] for a, rs in json.loads(state_file.read_text())["resources"].items()}
    alice, ben = ids["client_package.alice-piano"], ids["client_package.ben-guitar"]
    ben_answer = httpx.get(f"{sandbox.fallback_url}/business/payments/v1/client_packages/{ben}", timeout=10,
                           headers={"Authorization": f"Bearer {demo['tokens']['staff']}"}).json()
    operator("POST", "/faults", json={"method": "GET", "path": f"/business/payments/v1/client_packages/{alice}",
                                      "door": "*", "status": 200, "body": ben_answer})
    code, out, err = cli("plan")
    assert code == 1 and f"asked for {alice}, answered with {ben}" in out + err, out + err
    assert "Traceback" not in out + err
    assert cli("state", "rm", "client_package.alice-piano", "--yes")[0] == 0
    before = state_file.read_text()
    code, out, err = cli("import", "client_package.alice-piano", alice)
    assert code == 1 and f"answered with {ben}" in out + err, out + err
    assert state_file.read_text() == before  # nothing imported
    operator("DELETE", "/faults")
    assert cli("import", "client_package.alice-piano", alice)[0] == 0
    assert cli("plan", "--detailed-exitcode")[0] == 0

"""``apply --all FLEET_PLAN.json`` when vcita's payment requests cannot be read: a business whose
state is a file (another runner's copy may have applied since, unseen by its serial) is refused, not
sold again, exactly as ``apply PLAN.json`` is (``tests/e2e/test_saved_plan_blind_recheck.py``)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLI = Callable[..., tuple[int, str, str]]


def test_a_saved_fleet_plan_is_refused_when_neither_memory_can_vouch(
        fleet: dict[str, Any], cli: CLI, tmp_path: Path, operator: Any) -> None:
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
    operator("POST", "/faults", json={"path": "/business/payments/v1/payment_requests", "door": "*", "status": 404})
    code, out, err = cli("apply", "--all", "fleet.json")
    assert code == 1, out + err
    assert "vcita's payment requests cannot be read" in " ".join((out + err).split()), out + err
    assert sold() == 1

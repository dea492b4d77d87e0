"""``drift`` right after an apply whose answer to a client-package create was lost.

The package exists in vcita, the state holds its create as pending (no id).  Drift must not call
it "created outside reconciler, not created by reconciler" (exit 2, which the drift workflow turns
into an issue asking someone to declare it again), nor say of the address that "apply creates
it": the next plan adopts it.  Served sandbox, through the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def test_drift_names_the_pending_create_and_calls_its_package_nobody_elses(
        workdir: Path, cli: Any, operator: Any, demo: dict[str, Any]) -> None:
    operator("POST", "/faults", json={"method": "POST", "path": "/platform/v1/payment/client_packages",
                                       "door": "*", "drop_after_commit": True, "times": 1})
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1 and "1 unknown" in out, out + err
    operator("DELETE", "/faults")
    state = json.loads((workdir / "manifests" / ".reconciler" / "state.json").read_text())
    (pending,) = state["pending"].values()

    code, out, err = cli("drift", "--format", "json")
    report = json.loads(out)
    assert code == 3, out + err  # only pending: vcita is as reconciler left it
    assert not [o for o in report["objects"] if o["status"] == "created_outside"], out
    (obj,) = [o for o in report["objects"] if o["address"] == pending["address"]]
    assert obj["status"] == "untracked" and "a create of unknown outcome" in obj["notes"][0], obj
    assert "apply creates it" not in out

    code, out, err = cli("apply", "--auto-approve")  # which the next apply adopts, creating nothing
    assert code == 0 and "adopted" in out, out + err
    assert len(operator("GET", f"/client_packages?business_id={demo['business']['id']}")["client_packages"]) == 8
    assert cli("drift")[0] == 0

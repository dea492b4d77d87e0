"""``state forget-intent`` while vcita's lists may still be hiding the create (API-NOTES §8, §11).

A create whose answer was lost stays pending; the next plan looks for its package through the
business's payment requests.  Right after the create, that list may not show it yet (it lags), so
the plan reports "not found" and names ``forget-intent``.  Forgetting it at once used to let the
following plan create it again, the lagging list vouching for nothing: alice billed twice.  Now
``forget-intent`` refuses a create recorded less than the target's send window + list lag + clock
skew ago (``core/listlag.py``), changing nothing, unless ``--force`` (a person checked vcita by
hand); once that time has passed, the plan finds the package and adopts it.  Served sandbox,
through the CLI, with the list lagging for real.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sandbox_support import client_packages

from reconciler.core.listlag import ListLag

CLI = Callable[..., tuple[int, str, str]]
CREATE = "/platform/v1/payment/client_packages"
ALICE = "ktsrl7f6h94run82"


@pytest.fixture
def lagging(monkeypatch: pytest.MonkeyPatch, operator: Any) -> ListLag:
    """A payment request list that lags 3 s behind creation, and a target whose bounds say so
    (a create leaves within 1 s of its record): a create settles 1 + 1 + 3 s after its record."""
    monkeypatch.setenv("RECONCILER_CREATE_SEND_WINDOW_SECONDS", "1")
    monkeypatch.setenv("RECONCILER_LIST_LAG_SECONDS", "3")
    operator("PUT", "/settings", json={"payment_request_lag_seconds": 3})
    return ListLag(lag=3, send_window=1, skew=0)


def _lost_alice(workdir: Path, cli: CLI, operator: Any) -> dict[str, Any]:
    """Apply only alice-piano, its answer lost (vcita made it); its pending record."""
    clients = workdir / "manifests" / "client-packages.yaml"
    clients.write_text(clients.read_text().split("\n---\n")[0] + "\n")
    operator("POST", "/faults", json={"method": "POST", "path": CREATE, "door": "*", "drop_after_commit": True,
                                      "times": 1})
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1 and "1 unknown" in out, out + err
    state = json.loads((workdir / "manifests" / ".reconciler" / "state.json").read_text())
    [intent] = state["pending"].values()
    return dict(intent)


def _alice(operator: Any, demo: dict[str, Any]) -> list[dict[str, Any]]:
    return [cp for cp in client_packages(operator, demo) if cp["client_id"] == ALICE]


def test_forgetting_a_create_the_list_may_still_hide_is_refused_then_the_plan_adopts_it(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any], lagging: ListLag) -> None:
    intent = _lost_alice(workdir, cli, operator)
    state_file = workdir / "manifests" / ".reconciler" / "state.json"
    before = state_file.read_bytes()
    code, out, err = cli("state", "forget-intent", "alice-piano")
    assert code == 1, out + err
    assert "too recent to forget: client_package.alice-piano" in err and "nothing was forgotten" in err
    assert "with --force" in err and "'reconciler plan' once that time has passed" in err
    assert state_file.read_bytes() == before  # refused: nothing changed
    # once the list can no longer hide it, the plan finds the package and adopts it, no request sent
    wait = (lagging.settled_at(intent["opened_at"]) - datetime.now(UTC)).total_seconds()
    time.sleep(max(wait, 0) + 0.2)
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0 and "adopted" in out, out + err
    assert len(_alice(operator, demo)) == 1  # billed once
    assert cli("state", "forget-intent", "alice-piano")[0] == 1  # nothing pending any more


def test_force_forgets_at_once_and_says_what_the_person_vouched_for(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any], lagging: ListLag) -> None:
    # A person who checked alice's packages in vcita by hand (and found it: they import it, which
    # needs no waiting; here the sandbox's operator stands in for the vcita UI).
    _lost_alice(workdir, cli, operator)
    code, out, err = cli("state", "forget-intent", "alice-piano", "--force")
    assert code == 0 and "Forgot the pending create of client_package.alice-piano" in out, out + err
    assert "reconciler did not check vcita" in err
    [cp] = _alice(operator, demo)
    assert cli("import", "client_package.alice-piano", cp["id"])[0] == 0
    assert cli("plan", "--detailed-exitcode")[0] == 0
    assert len(_alice(operator, demo)) == 1


def test_an_old_intent_is_forgotten_without_force(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    # recorded long ago (its settle time has passed): forgetting needs no --force, as before
    _lost_alice(workdir, cli, operator)
    state_file = workdir / "manifests" / ".reconciler" / "state.json"
    state = json.loads(state_file.read_text())
    for it in state["pending"].values():
        it["opened_at"] = "2026-01-05T10:00:00Z"
    state_file.write_text(json.dumps(state))
    code, out, err = cli("state", "forget-intent", "alice-piano")
    assert code == 0 and "Forgot the pending create" in out, out + err

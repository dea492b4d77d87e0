"""The flows people actually run end with one client package per client and catalog package
(issue 14): renames, plans over some paths, a lost state, a second sale, the money limit.

Each flow runs the CLI against the served sandbox (a real target for every safety decision) and
counts what vcita holds afterwards.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]


def _one_each(operator: Any, demo: dict[str, Any]) -> int:
    pairs = Counter((cp["client_id"], cp["package_id"]) for cp in client_packages(operator, demo))
    assert max(pairs.values()) == 1, f"a client was billed twice: {pairs.most_common(3)}"
    return sum(pairs.values())


def _state(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / "manifests/.reconciler/state.json").read_text())


def test_renaming_every_client_package_moves_records_and_creates_nothing(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    ids = {a: r["id"] for a, r in _state(workdir)["resources"].items()}
    clients = workdir / "manifests" / "client-packages.yaml"
    text = clients.read_text()
    names = re.findall(r"^  name: ([a-z0-9-]+)$", text, flags=re.M)
    renamed = re.sub(r"^  name: ([a-z0-9-]+)$", r"  name: \1-2026", text, flags=re.M)
    clients.write_text(renamed)
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 2, out + err
    assert f"Plan: 0 to create, 0 to update, 0 to replace, {len(names)} to move." in out
    assert "Payment requests: none would be opened" in out
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    after = _state(workdir)["resources"]
    for name in names:
        assert after[f"client_package.{name}-2026"]["id"] == ids[f"client_package.{name}"]
    assert cli("plan", "--detailed-exitcode")[0] == 0
    assert _one_each(operator, demo) == len(names)


def test_a_plan_over_one_file_leaves_the_other_files_objects_alone(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    code, out, err = cli("apply", "--auto-approve", "manifests/catalog-packages.yaml")
    assert code == 0, out + err
    assert "8 tracked object(s) are outside the paths of this plan: left alone" in out
    assert "to archive" not in out
    assert len([a for a in _state(workdir)["resources"] if a.startswith("client_package.")]) == 8
    code, out, _ = cli("plan", "--detailed-exitcode")
    assert code == 0, out
    assert _one_each(operator, demo) == 8


def test_removed_then_restored_objects_are_re_adopted_not_created(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    clients = workdir / "manifests" / "client-packages.yaml"
    original = clients.read_text()
    docs = original.split("\n---\n")
    clients.write_text("\n---\n".join(docs[:2]))  # six client packages leave the manifests
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0 and "6 to archive" in out, out + err
    assert len(_state(workdir)["archived"]) == 6
    clients.write_text(original.replace("name: emma-guitar", "name: emma-guitar-again"))  # back, one renamed
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert "6 to re-adopt" in out and "Payment requests: none would be opened" in out
    assert _state(workdir)["archived"] == {}
    assert cli("plan", "--detailed-exitcode")[0] == 0
    assert _one_each(operator, demo) == 8


def test_a_lost_state_is_not_a_blank_slate(workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    shutil.rmtree(workdir / "manifests" / ".reconciler")  # a new clone without the state
    code, out, err = cli("plan")
    assert code == 1, out + err
    assert "the state does not know this business's past" in out + err
    assert "--confirm-no-prior-client-packages" in out + err and "import --from" in out + err
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err
    assert _one_each(operator, demo) == 8  # nothing created
    assert not (workdir / "manifests/.reconciler/state.json").exists() or not _state(workdir)["resources"]


def test_a_second_sale_must_be_declared_and_is_shown_as_a_payment_request(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    clients = workdir / "manifests" / "client-packages.yaml"
    alice = clients.read_text().split("\n---\n")[0]
    again = alice.replace("name: alice-piano", "name: alice-piano-renewal")
    clients.write_text(clients.read_text() + "\n---\n" + again)
    code, out, err = cli("plan")
    assert code == 1 and "a second sale of this package to this client" in out + err, out + err
    assert "repeat_purchase: true" in out + err
    clients.write_text(clients.read_text().rstrip("\n") + "\n  repeat_purchase: true\n")
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 2, out + err
    assert "Payment requests: apply would open 1" in out and "client_package.alice-piano-renewal" in out
    assert cli("apply", "--auto-approve")[0] == 0
    assert len(client_packages(operator, demo)) == 9


def test_the_payment_request_limit_is_part_of_the_reviewed_plan(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    code, out, err = cli("plan", "--max-payment-requests", "5")
    assert code == 1 and "would open 8 payment requests, more than the limit of 5" in out + err, out + err
    code, out, err = cli("plan", "--out", "plan.json", "--format", "json")
    assert code == 0, out + err
    saved = json.loads((workdir / "plan.json").read_text())
    money = saved["payment_requests"]
    assert money["count"] == 8 and money["limit"] == 25 and money["totals"] == {"USD": "7110"}  # 3x piano (540, 480, 540), 3x guitar (260, 260, 230), 2x 2400
    code, out, err = cli("apply", "plan.json", "--max-payment-requests", "3")
    assert code == 1 and "more than --max-payment-requests (3)" in out + err
    assert client_packages(operator, demo) == []
    # a saved plan whose summary was edited (a count lowered to pass a limit) is refused
    saved["payment_requests"]["count"] = 2
    (workdir / "edited.json").write_text(json.dumps(saved))
    code, out, err = cli("apply", "edited.json")
    assert code == 1 and "does not match its seal" in out + err
    # ... and if the seal is recomputed too, the count is checked against the creates themselves
    from reconciler.plan.document import SEAL_KEY, _canonical_digest
    saved[SEAL_KEY] = _canonical_digest({k: v for k, v in saved.items() if k != SEAL_KEY})
    (workdir / "edited.json").write_text(json.dumps(saved))
    code, out, err = cli("apply", "edited.json")
    assert code == 1 and "its summary counts 2" in out + err
    assert client_packages(operator, demo) == []
    assert cli("apply", "plan.json")[0] == 0
    assert _one_each(operator, demo) == 8

"""A saved plan applied against another copy of the state, when vcita's payment requests cannot be read.

``apply PLAN.json`` checks that the state is the one the plan was made from (lineage and serial)
and looks in vcita again (``refresh/second_memory.recheck_saved``) for what another run created
since.  A state *file* has copies: a CI runner that restored an older one, a rejected ``git push``.
Another runner applying the same creates from its own copy leaves this copy's serial unchanged, so
only the payment requests can tell.  When they cannot be read (a 404, a list that answers empty),
apply used to go ahead on the state alone: every client of the plan billed a second time.  Now it
refuses, nothing sent, naming ``--checked-client`` for a person who checked those clients in vcita;
a state database, which every runner shares, still vouches (its serial moves with any apply).
Served sandbox, through the CLI.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
LIST = "/business/payments/v1/payment_requests"
EMPTY = {"success": True, "data": {"payment_requests": []}}
ISLA = ("\n---\napiVersion: reconciler/v1\nkind: ClientPackage\nmetadata:\n  name: isla-piano\nspec:\n"
        "  client: {email: isla.novak@example.com}\n  package: piano-10\n")


def _state_file(workdir: Path) -> Path:
    return workdir / "manifests" / ".reconciler" / "state.json"


def _other_runner_applies(workdir: Path, cli: CLI) -> None:
    """Another runner, with its own copy of the state as it is now, applies the manifests."""
    other = workdir / "other-runner.json"
    shutil.copy(_state_file(workdir), other)
    code, out, err = cli("apply", "--auto-approve", "--state", str(other))
    assert code == 0, out + err


def test_a_saved_plan_is_refused_when_neither_memory_can_vouch(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve", "manifests/catalog-packages.yaml")[0] == 0
    code, out, err = cli("plan", "--out", "p.json")
    assert code == 0 and "8 to create" in out, out + err
    _other_runner_applies(workdir, cli)
    assert len(client_packages(operator, demo)) == 8
    operator("POST", "/faults", json={"path": LIST, "door": "*", "status": 404})
    before = _state_file(workdir).read_bytes()
    code, out, err = cli("apply", "p.json")
    assert code == 1, out + err
    text = " ".join(err.split())
    assert "creates 8 client package(s), and vcita's payment requests cannot be read" in text
    assert "the state cannot vouch for it either: it is a file" in text and "nothing was applied" in text
    assert "--checked-client ktsrl7f6h94run82" in text
    assert len(client_packages(operator, demo)) == 8  # nobody billed twice
    assert _state_file(workdir).read_bytes() == before
    # once the list answers, the same plan is refused for what it then sees (the other run's), as before
    operator("DELETE", "/faults")
    code, out, err = cli("apply", "p.json")
    assert code == 1 and "since this plan was made, vcita got 8 of the client packages" in out + err, out + err
    assert cli("import", "--discover")[0] == 0
    assert cli("plan", "--detailed-exitcode")[0] == 0
    assert len(client_packages(operator, demo)) == 8


def test_a_list_that_names_none_of_the_tracked_packages_vouches_for_nothing(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    # the list answers, but empty (a target where it is no second memory): it does not show the 8
    # client packages the state tracks, so its silence about isla's proves nothing either
    assert cli("apply", "--auto-approve")[0] == 0
    clients = workdir / "manifests" / "client-packages.yaml"
    clients.write_text(clients.read_text() + ISLA)
    code, out, err = cli("plan", "--out", "p.json")
    assert code == 0 and "1 to create" in out, out + err
    _other_runner_applies(workdir, cli)
    assert len(client_packages(operator, demo)) == 9
    operator("POST", "/faults", json={"method": "GET", "path": LIST, "door": "*", "status": 200, "body": EMPTY})
    code, out, err = cli("apply", "p.json")
    assert code == 1, out + err
    assert "named none of the 8 client package(s) the state tracks" in err and "nothing was applied" in err
    assert len(client_packages(operator, demo)) == 9


def test_a_person_who_checked_the_clients_applies_with_checked_client(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    # no other runner this time: the person checks isla's packages in vcita, finds none, and vouches
    assert cli("apply", "--auto-approve")[0] == 0
    clients = workdir / "manifests" / "client-packages.yaml"
    clients.write_text(clients.read_text() + ISLA)
    assert cli("plan", "--out", "p.json")[0] == 0
    operator("POST", "/faults", json={"path": LIST, "door": "*", "status": 404})
    code, out, err = cli("apply", "p.json")
    assert code == 1 and "--checked-client" in err, out + err
    isla = next(c["id"] for c in demo["clients"] if c["email"] == "isla.novak@example.com")
    assert cli("apply", "p.json", "--checked-client", "someone-else")[0] == 1  # not isla: still refused
    code, out, err = cli("apply", "p.json", "--checked-client", isla)
    assert code == 0 and "1 done" in out, out + err
    assert "--checked-client says a person checked" in err
    assert len(client_packages(operator, demo)) == 9


@pytest.fixture
def pg_state(workdir: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The state in PostgreSQL (reconciler.toml chooses it for every command)."""
    monkeypatch.setenv("RECONCILER_STATE_DSN", pg_dsn)
    (workdir / "reconciler.toml").write_text('state = "postgres"\n')
    return pg_dsn


def test_a_state_database_vouches_for_itself(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any], pg_state: str) -> None:
    # every runner reads and writes the one row: another apply since the plan moves its serial,
    # which apply refuses; the same serial means no apply since, whatever the list can show
    assert cli("apply", "--auto-approve", "manifests/catalog-packages.yaml")[0] == 0
    assert cli("plan", "--out", "p.json")[0] == 0
    operator("POST", "/faults", json={"path": LIST, "door": "*", "status": 404})
    code, out, err = cli("apply", "p.json")
    assert code == 0 and "8 done" in out, out + err
    assert "the state database vouches that no apply happened since the plan was made" in err
    assert len(client_packages(operator, demo)) == 8
    assert not _state_file(workdir).exists()  # the state was the database's
    assert cli("apply", "p.json")[0] != 0  # applied once
    assert len(client_packages(operator, demo)) == 8


def test_a_request_that_links_back_to_nothing_refuses_its_clients_creates(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    # the list answers, but the other runner's renewal shows only as a payment request naming a
    # package that does not exist (a server that lies about one request): it may be that renewal
    import json

    assert cli("apply", "--auto-approve")[0] == 0
    clients = workdir / "manifests" / "client-packages.yaml"
    alice = clients.read_text().split("\n---\n")[0].replace("name: alice-piano", "name: alice-piano-renewal")
    clients.write_text(clients.read_text().rstrip("\n") + "\n---\n" + alice.rstrip("\n") + "\n  repeat_purchase: true\n")
    code, out, err = cli("plan", "--out", "p.json")
    assert code == 0 and "1 to create" in out, out + err
    _other_runner_applies(workdir, cli)
    assert len(client_packages(operator, demo)) == 9
    other = json.loads((workdir / "other-runner.json").read_text())
    renewal = other["resources"]["client_package.alice-piano-renewal"]["id"]
    request = operator("GET", f"/objects/client_packages/{renewal}")["doc"]["payment_request_id"]
    operator("PATCH", f"/objects/payment_requests/{request}", json={"payable_uid": "nosuchpackage0000"})
    code, out, err = cli("apply", "p.json")
    assert code == 1, out + err
    text = " ".join(err.split())
    assert f"link back to no client package (client ktsrl7f6h94run82: {request})" in text
    assert "nothing was applied" in text and "--checked-client ktsrl7f6h94run82" in text
    assert len(client_packages(operator, demo)) == 9  # the renewal not sold a second time

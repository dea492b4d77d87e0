"""``state push|pull`` between a file and PostgreSQL when the two histories diverged.

A team moves its state into the database (``state push``), one runner goes on with the file (a
job still configured ``local``): both sell.  A later ``push`` of the file, whose serial has
grown past the database's, must not overwrite the row and with it the record of the package
the database run sold: the state would forget it, and a later plan could sell it again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.remote.target import Secret
from reconciler.state.backends.postgres import PostgresStateStore
from reconciler.state.store import PendingCreate, StateStore, TargetRef

CLI = Callable[..., tuple[int, str, str]]

ISLA = """---
apiVersion: reconciler/v1
kind: ClientPackage
metadata:
  name: isla-piano
spec:
  client: nja3jgzdul48vwpm
  package: piano-10
"""


@pytest.fixture
def pg_env(workdir: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("RECONCILER_STATE_DSN", pg_dsn)
    return pg_dsn


def test_a_push_of_a_diverged_newer_file_never_drops_what_the_database_sold(
        pg_env: str, cli: CLI, workdir: Path, demo: dict[str, Any], sandbox: Any) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    assert cli("state", "push", "--state-backend", "postgres")[0] == 0
    clients = workdir / "manifests" / "client-packages.yaml"
    catalog = workdir / "manifests" / "catalog-packages.yaml"
    original = clients.read_text()
    # the database's runner sells Isla a package
    clients.write_text(original + ISLA)
    code, out, err = cli("apply", "--auto-approve", "--state-backend", "postgres")
    assert code == 0, out + err
    db = PostgresStateStore(Secret(pg_env), TargetRef(gateway_url=sandbox.gateway_url,
                                                      business_id=demo["business"]["id"]))
    isla = db.load().resources["client_package.isla-piano"].id
    # the file's runner never saw it, and applies catalog edits until its serial is the larger
    clients.write_text(original)
    file = StateStore(workdir / "manifests" / ".reconciler" / "state.json")
    text = catalog.read_text()
    for n in range(1, 10):
        if file.load().serial > db.load().serial:
            break
        catalog.write_text(re.sub(r"description: Ten 45-minute .*", f"description: Ten lessons ({n}).", text))
        code, out, err = cli("apply", "--auto-approve", "-q", "--state-backend", "local")
        assert code == 0, out + err
    before = db.load()
    assert file.load().serial > before.serial
    code, out, err = cli("state", "push", "--state-backend", "postgres")
    assert code == 1, out + err
    assert "does not know 1 object(s)" in err and f"client_package.isla-piano ({isla})" in err
    assert "nothing was written" in err
    assert db.load() == before
    # the way out it names: adopt the missing package into the file, then copy again
    clients.write_text(original + ISLA)
    code, out, err = cli("import", "client_package.isla-piano", isla, "--state-backend", "local")
    assert code == 0, out + err
    code, out, err = cli("state", "push", "--state-backend", "postgres")
    assert code == 0, out + err
    assert db.load().resources["client_package.isla-piano"].id == isla


def test_a_pull_never_drops_a_create_the_file_still_holds_pending(
        pg_env: str, cli: CLI, workdir: Path, demo: dict[str, Any], sandbox: Any) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    assert cli("state", "push", "--state-backend", "postgres")[0] == 0
    file = StateStore(workdir / "manifests" / ".reconciler" / "state.json")
    db = PostgresStateStore(Secret(pg_env), TargetRef(gateway_url=sandbox.gateway_url,
                                                      business_id=demo["business"]["id"]))
    # the database moves on twice (archives, as a run does); the file, meanwhile, opened a create
    # whose answer it never got
    state = db.load()
    for address in sorted(state.resources)[:2]:
        state = db.write(state.archive(address, "test"), expected_serial=state.serial)
    local = file.load()
    intent = PendingCreate(id="ab" * 8, address="client_package.isla-piano", kind="ClientPackage",
                           request_digest="x", details={"client_id": "nja3jgzdul48vwpm"},
                           opened_at="2026-12-01T00:00:00Z")
    file.write(local.replace(pending={intent.id: intent}), expected_serial=local.serial)
    assert db.load().serial > file.load().serial
    code, out, err = cli("state", "pull", "--state-backend", "postgres")
    assert code == 1, out + err
    assert "client_package.isla-piano (a pending create since 2026-12-01T00:00:00Z)" in err
    assert intent.id in file.load().pending

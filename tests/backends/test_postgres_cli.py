"""The postgres backend through the command line, against the served sandbox and a real server.

A single business planned and applied with its state in the database (chosen by the flags, by
``reconciler.toml``), ``state push|pull`` refusing to overwrite a newer serial, ``state list``
showing the lock holder, and every bad input the issue names: one clear error each, exit 1,
nothing written, the DSN and its password never shown.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from reconciler.refresh.full import target_ref
from reconciler.remote.target import Secret
from reconciler.state.backends.postgres import PostgresStateStore
from reconciler.state.store import StateStore, TargetRef

CLI = Callable[..., tuple[int, str, str]]


def rows(dsn: str, statement: str, params: Any = None) -> list[Any]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def pg_env(workdir: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("RECONCILER_STATE_DSN", pg_dsn)
    return pg_dsn


def demo_key(demo: dict[str, Any], sandbox: Any) -> TargetRef:
    return TargetRef(gateway_url=sandbox.gateway_url, business_id=demo["business"]["id"])


def assert_secret_free(dsn: str, *texts: str) -> None:
    password = dict(part.split("=", 1) for part in dsn.split())["password"]
    for text in texts:
        assert dsn not in text and password not in text


def test_plan_and_apply_keep_the_state_in_the_database(pg_env: str, cli: CLI, workdir: Path, demo: dict[str, Any],
                                                       sandbox: Any) -> None:
    code, out, err = cli("apply", "--auto-approve", "--state-backend", "postgres")
    assert code == 0, out + err
    assert not (workdir / "manifests" / ".reconciler" / "state.json").exists()
    state = PostgresStateStore(Secret(pg_env), demo_key(demo, sandbox)).load()
    assert state.resources and state.serial >= 2 and not state.pending
    # chosen by reconciler.toml this time, with the variable named there
    (workdir / "reconciler.toml").write_text('state = "postgres"\nstate_dsn_env = "TEAM_DSN"\n')
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 1 and "TEAM_DSN is not set" in err
    import os

    os.environ["TEAM_DSN"] = pg_env
    try:
        code, out, err = cli("plan", "--detailed-exitcode")
        assert code == 0, out + err
        code, out, err = cli("state", "list")
        assert code == 0 and "client_package." in out and "the postgres state of business" in err
        assert_secret_free(pg_env, out, err)
    finally:
        del os.environ["TEAM_DSN"]


def test_push_and_pull_never_overwrite_a_newer_serial(pg_env: str, cli: CLI, workdir: Path, demo: dict[str, Any],
                                                      sandbox: Any) -> None:
    assert cli("apply", "--auto-approve")[0] == 0  # the state file, as today
    file = StateStore(workdir / "manifests" / ".reconciler" / "state.json")
    local = file.load()
    code, out, err = cli("state", "push", "--state-backend", "postgres")
    assert code == 0 and f"serial {local.serial}" in out, out + err
    db = PostgresStateStore(Secret(pg_env), demo_key(demo, sandbox))
    assert db.load() == local
    assert "already holds this state" in cli("state", "push", "--state-backend", "postgres")[1]
    # the database moves on (a run with the postgres backend): pushing the old file is refused
    db.write(db.load().archive(sorted(local.resources)[0], "test"), expected_serial=local.serial)
    code, out, err = cli("state", "push", "--state-backend", "postgres")
    assert code == 1 and "is newer (serial" in err and "nothing was written" in err
    assert db.load().serial == local.serial + 1
    # pulling brings the newer one back into the file; the old file is its backup
    code, out, err = cli("state", "pull", "--state-backend", "postgres")
    assert code == 0, err
    assert file.load() == db.load() and file.backup_path.exists()
    # a file of another lineage is another state: refused both ways
    other = StateStore(workdir / "other.json")
    other.write(local.model_copy(update={"lineage": "0" * 32}), expected_serial=0, set_serial=99)
    code, _, err = cli("state", "push", "--state", str(workdir / "other.json"), "--state-backend", "postgres")
    assert code == 1 and "holds another state" in err
    code, _, err = cli("state", "push")
    assert code == 1 and "the configured state backend is local" in err


def test_state_list_shows_who_holds_the_lock(pg_env: str, cli: CLI, demo: dict[str, Any], sandbox: Any) -> None:
    assert cli("apply", "--auto-approve", "--state-backend", "postgres")[0] == 0
    store = PostgresStateStore(Secret(pg_env), demo_key(demo, sandbox), lock_wait=0.2)
    with store.lock("apply") as lock:
        code, out, err = cli("state", "list", "--state-backend", "postgres")
        assert code == 0 and "locked by pid" in err and lock.id in err and "for 'apply'" in err
        code, out, err = cli("apply", "--auto-approve", "--state-backend", "postgres")
        assert code == 1 and "is locked by pid" in err and "nothing to break" in err
        code, out, err = cli("state", "unlock", str(lock.id), "--state-backend", "postgres")
        assert code == 1 and "held by a live database session" in err
    code, out, err = cli("state", "businesses", "--state-backend", "postgres")
    assert code == 0 and demo["business"]["id"] in out and "locked" not in out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BAD = {
    "unreachable": (lambda pg, dsn: f"host=127.0.0.1 port={_closed_port()} dbname=x user=x password=pw-unreach-123",
                    "cannot reach the state database"),
    "wrong password": (lambda pg, dsn: dsn.replace("password=", "password=wrong"),
                       "refused the login: password authentication failed"),
    "tls required": (lambda pg, dsn: dsn + " sslmode=require", "does not offer TLS, but the DSN requires it"),
    "no such database": (lambda pg, dsn: dsn.replace("dbname=", "dbname=nope"), "does not exist"),
    "not a dsn": (lambda pg, dsn: "this is not = a dsn 'x", "is not a PostgreSQL connection string"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_databases_are_one_clear_error_and_nothing_is_written(
        case: str, pg_env: str, pg_server: Any, cli: CLI, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make, expected = BAD[case]
    dsn = make(pg_server, pg_env)
    monkeypatch.setenv("RECONCILER_STATE_DSN", dsn)
    before = sorted(p.name for p in (workdir / "manifests").rglob("*"))
    for args in (("plan",), ("apply", "--auto-approve"), ("state", "list"), ("state", "push")):
        code, out, err = cli(*args, "--state-backend", "postgres")
        assert code == 1, (args, out, err)
        assert expected in err, (args, err)
        assert "Traceback" not in err and "internal error" not in err
        assert err.count("Error:") == 1
        assert_secret_free(dsn, out, err) if "password=" in dsn else None
    assert sorted(p.name for p in (workdir / "manifests").rglob("*")) == before
    assert rows(pg_env, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'reconciler%%'") == [(0,)]


def test_another_tools_table_and_a_newer_row_are_refused_without_writing(
        pg_env: str, cli: CLI, workdir: Path, demo: dict[str, Any], sandbox: Any) -> None:
    from reconciler.state.backends import postgres

    rows(pg_env, "CREATE TABLE reconciler_lock (name text PRIMARY KEY, owner text)")
    postgres._checked.clear()
    code, _out, err = cli("apply", "--auto-approve", "--state-backend", "postgres")
    assert code == 1 and "already has a table reconciler_lock that reconciler did not create" in err
    assert rows(pg_env, "SELECT to_regclass('reconciler_state')") == [(None,)]
    rows(pg_env, "DROP TABLE reconciler_lock")
    postgres._checked.clear()
    assert cli("apply", "--auto-approve", "--state-backend", "postgres")[0] == 0
    doc = rows(pg_env, "SELECT document FROM reconciler_state")[0][0]
    doc["format_version"] = 7
    rows(pg_env, "UPDATE reconciler_state SET document = %s::jsonb", [json.dumps(doc)])
    before = rows(pg_env, "SELECT serial, document::text FROM reconciler_state")
    for args in (("plan",), ("apply", "--auto-approve"), ("state", "list"), ("state", "pull")):
        code, _out, err = cli(*args, "--state-backend", "postgres")
        assert code == 1 and "format_version 7 was written by a newer reconciler" in err, (args, err)
    assert rows(pg_env, "SELECT serial, document::text FROM reconciler_state") == before
    assert not (workdir / "manifests" / ".reconciler" / "state.json").exists()


def test_a_dsn_is_never_accepted_from_a_file_or_a_flag(cli: CLI, workdir: Path, pg_env: str) -> None:
    (workdir / "reconciler.toml").write_text(f'state = "postgres"\nstate_dsn = "{pg_env}"\n')
    code, out, err = cli("plan")
    assert code == 1 and "would hold the state database's DSN in a file" in err
    assert_secret_free(pg_env, out, err)
    (workdir / "reconciler.toml").unlink()
    code, out, err = cli("plan", "--state-backend", "postgres", "--state-dsn-env", pg_env)
    assert code == 1 and "not a connection string" in err
    assert_secret_free(pg_env, out, err)
    code, out, err = cli("plan", "--state-backend", "postgres", "--state", "x.json")
    assert code == 1 and "--state names a state file" in err


def test_target_ref_of_the_run_is_the_row_key(pg_env: str, cli: CLI, demo: dict[str, Any], sandbox: Any) -> None:
    """Two targets, two rows; each run reads only its own business's row."""
    assert cli("apply", "--auto-approve", "--state-backend", "postgres")[0] == 0
    keys = rows(pg_env, "SELECT gateway_url, business_id FROM reconciler_state")
    assert keys == [(sandbox.gateway_url, demo["business"]["id"])]
    assert target_ref  # the key is reconciler.refresh.full.target_ref of the run's target


def test_a_plan_over_a_sub_folder_with_the_state_in_the_database_touches_only_it(
        pg_env: str, cli: CLI, workdir: Path, demo: dict[str, Any], sandbox: Any) -> None:
    # The database's state is the business's: a plan over manifests/catalog alone was a full plan
    # that archived every client package declared outside the sub-folder.
    catalog = workdir / "manifests" / "catalog"
    catalog.mkdir()
    (workdir / "manifests" / "catalog-packages.yaml").rename(catalog / "catalog-packages.yaml")
    assert cli("apply", "--auto-approve", "--state-backend", "postgres")[0] == 0
    path = catalog / "catalog-packages.yaml"
    path.write_text(path.read_text().replace("price: 260", "price: 280"))
    code, out, err = cli("plan", "--state-backend", "postgres", str(catalog))
    assert code == 0 and "to archive" not in out and "client_package." not in out, out + err
    assert "0 to create, 1 to update" in out, out + err
    code, out, err = cli("apply", "--auto-approve", "--state-backend", "postgres", str(catalog))
    assert code == 0, out + err
    state = PostgresStateStore(Secret(pg_env), demo_key(demo, sandbox)).load()
    assert len([a for a in state.resources if a.startswith("client_package.")]) == 8 and not state.archived


def test_a_sub_folder_planned_from_outside_the_working_folder_with_the_state_in_the_database_archives_nothing(
        pg_env: str, cli: CLI, workdir: Path, demo: dict[str, Any], sandbox: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A folder outside the working folder was always a whole: 'apply /repo/manifests/catalog' run
    # from another folder (a CI step's) archived the 8 client packages declared beside it.
    catalog = workdir / "manifests" / "catalog"
    catalog.mkdir()
    (workdir / "manifests" / "catalog-packages.yaml").rename(catalog / "catalog-packages.yaml")
    assert cli("apply", "--auto-approve", "--state-backend", "postgres")[0] == 0
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = catalog / "catalog-packages.yaml"
    path.write_text(path.read_text().replace("price: 260", "price: 280"))
    code, out, err = cli("apply", "--auto-approve", "--state-backend", "postgres", str(catalog))
    assert code == 0 and "to archive" not in out and "0 to create, 1 to update" in out, out + err
    state = PostgresStateStore(Secret(pg_env), demo_key(demo, sandbox)).load()
    assert len([a for a in state.resources if a.startswith("client_package.")]) == 8 and not state.archived


def test_a_plan_over_part_of_a_folder_named_otherwise_with_the_state_in_the_database_touches_only_it(
        pg_env: str, cli: CLI, workdir: Path, demo: dict[str, Any], sandbox: Any) -> None:
    # Only a folder named "manifests" was taken for the database state's home: a plan over
    # other/catalog was a full plan, and archived the 8 client packages declared in other/.
    other = workdir / "other"
    (workdir / "manifests").rename(other)
    catalog = other / "catalog"
    catalog.mkdir()
    (other / "catalog-packages.yaml").rename(catalog / "catalog-packages.yaml")
    (workdir / "docker-compose.yml").write_text("services: {db: {image: postgres}}\n")  # not a manifest
    assert cli("apply", "--auto-approve", "--state-backend", "postgres", "other")[0] == 0
    path = catalog / "catalog-packages.yaml"
    path.write_text(path.read_text().replace("price: 260", "price: 280"))
    code, out, err = cli("plan", "--state-backend", "postgres", "other/catalog")
    assert code == 0 and "to archive" not in out and "client_package." not in out, out + err
    assert "0 to create, 1 to update" in out, out + err
    code, out, err = cli("apply", "--auto-approve", "--state-backend", "postgres", "other/catalog")
    assert code == 0, out + err
    state = PostgresStateStore(Secret(pg_env), demo_key(demo, sandbox)).load()
    assert len([a for a in state.resources if a.startswith("client_package.")]) == 8 and not state.archived
    # the whole folder is still a whole plan: an object removed from it is archived
    clients = other / "client-packages.yaml"
    docs = clients.read_text().split("\n---\n")
    clients.write_text("\n---\n".join(d for d in docs if "name: alice-piano" not in d))
    code, out, err = cli("plan", "--state-backend", "postgres", "other")
    assert code == 0 and "client_package.alice-piano will be archived" in out, out + err

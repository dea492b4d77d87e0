"""Every command with malformed inputs: one clear message, a documented exit code, nothing damaged.

Inputs: a corrupt state file (truncated, empty, binary, not an object, from a newer version,
invalid), a corrupt journal, a truncated plan file, a plan file for another target, paths that
cannot be read (missing, a folder where a file is expected, a file where a folder is expected),
a missing token, a wrong token, a server answering HTML instead of JSON, a stale or damaged
lock, and for the sandbox commands a database that is not SQLite and a non-loopback host.

For each: exit code 1 (README, "Exit codes"), exactly one ``Error:`` line on stderr (a hint may
follow), no traceback and no internal error, and every file of the project byte-for-byte as it
was (a refused command changes nothing; no lock is left behind).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from snapshots import CLI, snapshot

from reconciler.state.store import ResourceState, State, StateStore, TargetRef, utc_now

STATE = Path("manifests/.reconciler/state.json")
ALICE = "client_package.alice-piano"


def one_error(code: int, out: str, err: str, *, exit_code: int = 1, says: tuple[str, ...] = ()) -> str:
    """Assert the outcome is one clear error; return its message line."""
    both = out + err
    assert code == exit_code, (code, both)
    assert "Traceback" not in both and "internal error" not in both, both
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, err
    for word in says:
        assert word.lower() in both.lower(), (word, both)
    return errors[0]


def write_state(project: Path, sandbox: Any, demo: dict[str, Any]) -> bytes:
    """A valid state for the demo target, tracking one client package; returns its bytes."""
    applied = {"client_id": "ktsrl7f6h94run82", "package_id": "abcdefghijklmnop", "price": "540",
               "valid_from": "2026-01-01", "valid_until": "2026-07-01", "matter_uid": None, "booking_credits": {}}
    rs = ResourceState(kind="ClientPackage", id="qqqqqqqqqqqqqqqq", fingerprint="sha256:" + "0" * 32,
                       applied=applied, updated_at=utc_now())
    state = State.new(TargetRef(gateway_url=sandbox.gateway_url, business_id=demo["business"]["id"]))
    StateStore(project / STATE).write(state.with_resource(ALICE, rs), expected_serial=0)
    return (project / STATE).read_bytes()


CORRUPTIONS = {
    "truncated": lambda good: good[: len(good) // 2],
    "empty": lambda good: b"",
    "binary": lambda good: b"\x00\xff\xfe\x89PNG garbage",
    "not-an-object": lambda good: b"[1, 2, 3]\n",
    "newer-version": lambda good: good.replace(b'"format_version": 2', b'"format_version": 99'),
    "invalid-resource": lambda good: good.replace(b'"id": "qqqqqqqqqqqqqqqq"', b'"id": ""'),
}

COMMANDS = {
    "plan": ["plan"],
    "plan-no-refresh": ["plan", "--no-refresh"],
    "apply": ["apply", "--auto-approve"],
    "import": ["import", ALICE, "abcdefghijklmnop"],
    "drift": ["drift"],
    "export": ["export", "--out", "manifests", "--force"],
    "state-list": ["state", "list"],
    "state-show": ["state", "show", ALICE],
    "state-rm": ["state", "rm", ALICE, "--yes"],
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_corrupt_state_is_refused_and_left_alone(project: Path, sandbox: Any, demo: dict[str, Any], cli: CLI,
                                                 corruption: str, command: str) -> None:
    good = write_state(project, sandbox, demo)
    (project / STATE).write_bytes(CORRUPTIONS[corruption](good))
    before = snapshot(project)
    line = one_error(*cli(*COMMANDS[command]))
    assert str(STATE.name) in line or "state" in line.lower(), line
    assert snapshot(project) == before


def test_corrupt_journal_is_refused_and_left_alone(project: Path, cli: CLI) -> None:
    journal = project / "manifests/.reconciler/journal.jsonl"
    journal.parent.mkdir()
    journal.write_bytes(b'{"op": "open", "id": "x"}\nnot json at all\n{"op": "close"}\n')
    before = snapshot(project)
    for args in (["apply", "--auto-approve"], ["state", "list"], ["state", "forget-intent", "alice-piano"]):
        code, out, err = cli(*args)
        assert err, (args, code, out)
        one_error(code, out, err, says=("journal",))
        assert snapshot(project) == before


def test_truncated_plan_file_is_refused(project: Path, cli: CLI) -> None:
    assert cli("plan", "--out", "plan.json")[0] == 0
    plan = project / "plan.json"
    plan.write_bytes(plan.read_bytes()[:-200])
    before = snapshot(project)
    one_error(*cli("apply", "plan.json"), says=("truncated",))
    assert snapshot(project) == before
    assert not (project / STATE).exists()


@pytest.mark.parametrize("damage", ["not-json", "other-format", "damaged-field", "empty"])
def test_damaged_plan_file_is_refused(project: Path, cli: CLI, damage: str) -> None:
    assert cli("plan", "--out", "plan.json")[0] == 0
    plan = project / "plan.json"
    raw = json.loads(plan.read_text())
    if damage == "not-json":
        plan.write_text("<html>not a plan</html>")
    elif damage == "other-format":
        plan.write_text(json.dumps({**raw, "format_version": 7}))
    elif damage == "damaged-field":
        raw["operations"][0]["op"] = "explode"
        plan.write_text(json.dumps(raw))
    else:
        plan.write_text("")
    before = snapshot(project)
    one_error(*cli("apply", "plan.json"), says=("plan",))
    assert snapshot(project) == before


def test_plan_for_another_target_is_refused(project: Path, sandbox: Any, cli: CLI,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("plan", "--out", "plan.json")[0] == 0
    other = httpx.post(sandbox.operator_url + "/businesses", json={"name": "Another studio"}, timeout=10).json()
    monkeypatch.setenv("VCITA_BUSINESS_ID", other["business_id"])
    monkeypatch.setenv("VCITA_STAFF_TOKEN", other["staff_token"])
    before = snapshot(project)
    one_error(*cli("apply", "plan.json"), says=("plan", other["business_id"]))
    assert snapshot(project) == before


def test_state_of_another_target_is_refused(project: Path, sandbox: Any, demo: dict[str, Any], cli: CLI,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    write_state(project, sandbox, demo)
    other = httpx.post(sandbox.operator_url + "/businesses", json={"name": "Another studio"}, timeout=10).json()
    monkeypatch.setenv("VCITA_BUSINESS_ID", other["business_id"])
    monkeypatch.setenv("VCITA_STAFF_TOKEN", other["staff_token"])
    before = snapshot(project)
    for args in (["plan"], ["apply", "--auto-approve"], ["import", ALICE, "abcdefghijklmnop"], ["drift"]):
        one_error(*cli(*args), says=("belongs to business",))
        assert snapshot(project) == before


# --- paths that cannot be read ------------------------------------------------------------------


UNREADABLE = [
    (["validate", "no-such-folder"], ("no such file",)),
    (["validate", "a-file/inside.yaml"], ()),
    (["plan", "no-such-folder"], ("no such file",)),
    (["plan", "--state", "a-folder"], ("directory",)),
    (["apply", "--auto-approve", "--state", "a-folder"], ("directory",)),
    (["apply", "a-folder/plan.json"], ("plan",)),
    (["apply", "no-such-plan.json"], ("no plan file",)),
    (["plan", "--token-file", "a-folder"], ("directory",)),
    (["plan", "--token-file", "no-such-token"], ("does not exist",)),
    (["state", "list", "--state", "a-folder"], ("directory",)),
    (["state", "show", ALICE, "--state", "a-file"], ("state",)),
    (["drift", "--state", "a-folder"], ("directory",)),
    (["export", "--out", "a-file"], ()),
    (["schema", "--out", "a-file/schema.json"], ("a-file",)),
    (["plan", "--out", "a-file/plan.json"], ("a-file",)),
    (["drift", "--out", "a-file/drift.json"], ("a-file",)),
    (["plan", "--out", "a-folder"], ("a-folder",)),
]


@pytest.mark.parametrize(("args", "says"), UNREADABLE, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_unreadable_paths(project: Path, sandbox: Any, demo: dict[str, Any], cli: CLI, args: list[str],
                          says: tuple[str, ...]) -> None:
    write_state(project, sandbox, demo)
    (project / "a-file").write_text("x")
    (project / "a-folder").mkdir()
    (project / "a-folder" / "plan.json").mkdir()
    before = snapshot(project)
    one_error(*cli(*args), says=says)
    assert snapshot(project) == before, args


# --- tokens -------------------------------------------------------------------------------------

REMOTE_COMMANDS = [["plan"], ["apply", "--auto-approve"], ["import", ALICE, "abcdefghijklmnop"], ["drift"],
                   ["export", "--out", "exported"]]


@pytest.mark.parametrize("args", REMOTE_COMMANDS, ids=lambda a: a[0])
def test_missing_token(project: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    monkeypatch.delenv("VCITA_STAFF_TOKEN")
    before = snapshot(project)
    one_error(*cli(*args), says=("token",))
    assert snapshot(project) == before


@pytest.mark.parametrize("args", REMOTE_COMMANDS, ids=lambda a: a[0])
def test_wrong_token(project: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    wrong = "sbx_staff_not_a_real_token_42"
    monkeypatch.setenv("VCITA_STAFF_TOKEN", wrong)
    before = snapshot(project)
    code, out, err = cli(*args)
    one_error(code, out, err)
    assert wrong not in out + err
    assert snapshot(project) == before


# --- a server that answers HTML -------------------------------------------------------------------


@pytest.mark.parametrize("args", REMOTE_COMMANDS, ids=lambda a: a[0])
def test_server_answering_html(project: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch, html_server: str,
                               args: list[str]) -> None:
    monkeypatch.setenv("VCITA_GATEWAY_URL", html_server + "/apigw")
    monkeypatch.setenv("VCITA_FALLBACK_URL", html_server + "/api2")
    before = snapshot(project)
    code, out, err = cli(*args, "--rate", "1000")
    one_error(code, out, err)
    assert all(len(line) < 400 for line in err.splitlines()), err  # described, not dumped
    assert snapshot(project) == before


# --- locks left behind ---------------------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_left_by_a_killed_run_blocks_nothing(project: Path, sandbox: Any, demo: dict[str, Any],
                                                  cli: CLI) -> None:
    # What a SIGKILLed run leaves: its record, and no flock (the kernel released it).
    write_state(project, sandbox, demo)
    lock = project / "manifests/.reconciler/state.lock"
    lock.write_text(json.dumps({"id": "deadbeef", "pid": _dead_pid(), "host": socket.gethostname(), "user": "someone",
                                "operation": "apply", "created_at": "2026-01-01T00:00:00Z", "lock": "flock"}))
    os.chmod(lock, 0o600)
    code, out, err = cli("state", "unlock", "deadbeef")
    assert code == 0 and out.startswith("Nothing to break: lock deadbeef is no longer held"), out + err
    code, out, err = cli("state", "rm", ALICE, "--yes")  # takes the lock: at once, nothing to break first
    assert code == 0 and "locked" not in out + err, out + err
    assert not lock.exists()


def test_old_style_lock_is_reported_and_only_broken_by_id(project: Path, sandbox: Any, demo: dict[str, Any],
                                                          cli: CLI) -> None:
    # A lock file of a reconciler before the flock lock, held on another host: it cannot be proven
    # gone, so it is honoured, and broken only by its id.
    write_state(project, sandbox, demo)
    lock = project / "manifests/.reconciler/state.lock"
    lock.write_text(json.dumps({"id": "deadbeef", "pid": 4242, "host": "build-agent-7", "user": "someone",
                                "operation": "apply", "created_at": "2026-01-01T00:00:00Z"}))
    os.chmod(lock, 0o600)
    before = snapshot(project)
    for args in (["apply", "--auto-approve"], ["import", ALICE, "abcdefghijklmnop"], ["state", "rm", ALICE, "--yes"]):
        code, out, err = cli(*args)
        line = one_error(code, out, err, says=("build-agent-7", "deadbeef"))
        assert "locked" in line and "reconciler state unlock deadbeef" in err, err
        assert snapshot(project) == before
    one_error(*cli("state", "unlock", "cafebabe"), says=("not the lock held now",))  # another id: nothing broken
    assert snapshot(project) == before
    code, out, err = cli("state", "unlock", "deadbeef")
    assert code == 0 and out.startswith("Broke lock deadbeef"), err
    assert not lock.exists()


def test_damaged_lock_is_reported(project: Path, sandbox: Any, demo: dict[str, Any], cli: CLI) -> None:
    write_state(project, sandbox, demo)
    lock = project / "manifests/.reconciler/state.lock"
    lock.write_bytes(b'{"id": "trunc')
    before = snapshot(project)
    line = one_error(*cli("apply", "--auto-approve"), says=("holds no record",))
    lock_id = line.rsplit("lock id ", 1)[1].rstrip(")")
    assert snapshot(project) == before
    assert cli("state", "unlock", lock_id)[0] == 0
    lock.write_bytes(b"")  # a taker killed before writing its record: an empty file is a free lock
    assert cli("state", "rm", ALICE, "--yes")[0] == 0


# --- the sandbox commands -------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["sandbox", "info", "--db", "garbage.db"],
    ["sandbox", "serve", "--port", "0", "--db", "garbage.db"],
    ["sandbox", "info", "--db", "a-file/sandbox.db"],
    ["sandbox", "reset", "--db", "a-file/sandbox.db"],
    ["sandbox", "serve", "--host", "0.0.0.0", "--port", "0", "--db", "ok.db"],
], ids=lambda a: " ".join(a[1:]))
def test_sandbox_commands_with_malformed_inputs(project: Path, cli: CLI, args: list[str]) -> None:
    (project / "garbage.db").write_bytes(b"this is not an SQLite database\n" * 10)
    (project / "a-file").write_text("x")
    before = snapshot(project)
    one_error(*cli(*args))
    assert snapshot(project) == before


def test_sandbox_reset_replaces_a_damaged_database(project: Path, cli: CLI) -> None:
    """'reset' is what the damaged-database message tells a user to run: it must work."""
    (project / "garbage.db").write_bytes(b"this is not an SQLite database\n" * 10)
    code, out, err = cli("sandbox", "reset", "--db", "garbage.db")
    assert code == 0, err
    assert '"business_id"' in out
    assert cli("sandbox", "info", "--db", "garbage.db")[0] == 0


@pytest.mark.parametrize("args", [["plan"], ["apply", "--auto-approve"], ["drift"]], ids=lambda a: a[0])
def test_corrupt_embedded_sandbox(project: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    for var in ("VCITA_GATEWAY_URL", "VCITA_FALLBACK_URL", "VCITA_BUSINESS_ID", "VCITA_STAFF_TOKEN"):
        monkeypatch.delenv(var)
    (project / ".reconciler").mkdir()
    (project / ".reconciler" / "sandbox.db").write_bytes(b"this is not an SQLite database\n" * 10)
    before = snapshot(project)
    one_error(*cli(*args))
    assert snapshot(project) == before


@pytest.mark.parametrize("html_server", [200, 502], indirect=True)
def test_doctor_against_a_server_answering_html(project: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch,
                                               html_server: str) -> None:
    monkeypatch.setenv("VCITA_GATEWAY_URL", html_server + "/apigw")
    monkeypatch.setenv("VCITA_FALLBACK_URL", html_server + "/api2")
    before = snapshot(project)
    code, out, err = cli("doctor", "--rate", "1000")
    assert code == 1 and "Traceback" not in out + err and "internal error" not in out + err
    assert "FAILS" in out and "Result:" in out
    assert all(len(line) < 400 for line in out.splitlines()), out  # described, not dumped
    assert snapshot(project) == before

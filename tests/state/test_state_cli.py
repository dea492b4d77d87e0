"""``reconciler state ...`` as a user meets it: output, exit codes, and refusals that change nothing."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from state_helpers import REPO, TARGET, WORKER, resource

from reconciler.cli import cli, run
from reconciler.cli.state_cmds import state
from reconciler.state.journal import Journal
from reconciler.state.store import State, StateLock, StateStore


@pytest.fixture(autouse=True)
def _registered() -> None:
    # Until the lead registers the group in reconciler/cli/__init__.py.
    if "state" not in cli.commands:
        cli.add_command(state)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    """A state with two resources under tmp_path/manifests/.reconciler (serial 1)."""
    s = StateStore(tmp_path / "manifests" / ".reconciler" / "state.json")
    s.write(State.new(TARGET)
            .with_resource("client_package.alice-10", resource(rid="uid-alice"))
            .with_resource("catalog_package.piano-10", resource("CatalogPackage", "uid-piano")), expected_serial=0)
    return s


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_help_documents_where_the_state_is(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["state", "rm", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--state FILE" in out and "--manifests PATH" in out and "[default: manifests]" in out


def test_list(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["state", "list", "--state", str(store.path)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["catalog_package.piano-10  uid-piano", "client_package.alice-10   uid-alice"]
    assert "serial 1" in err and "business biz1" in err


def test_list_finds_the_default_manifests_folder(store: StateStore, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(["state", "list"]) == 0
    assert "uid-alice" in capsys.readouterr().out
    (tmp_path / "manifests" / "a.yaml").write_text("")
    assert run(["state", "list", "--manifests", "manifests/a.yaml"]) == 0
    assert "uid-alice" in capsys.readouterr().out


def test_list_without_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["state", "list", "--manifests", str(tmp_path)]) == 0
    assert "nothing is tracked yet" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_list_warns_about_pending_creates(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    Journal.for_state(store).open_intent("client_package.bob-5", "ClientPackage", "d", {"client_email": "b@x.io"})
    assert run(["state", "list", "--state", str(store.path)]) == 0
    err = capsys.readouterr().err
    assert "client_package.bob-5" in err and "unknown outcome" in err and "forget-intent" in err


def test_show(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["state", "show", "client_package.alice-10", "--state", str(store.path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == store.load().resources["client_package.alice-10"].model_dump(mode="json")


def test_show_unknown_address_suggests(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["state", "show", "alice-10", "--state", str(store.path)]) == 1
    err = capsys.readouterr().err
    assert "alice-10 is not tracked" in err and "Did you mean client_package.alice-10?" in err


def test_damaged_state_is_one_error_line(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    store.path.write_bytes(b"{\"format_version\": 1,")
    assert run(["state", "list", "--state", str(store.path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: the state file {store.path} cannot be used: it is not valid JSON")
    assert "Traceback" not in err


def test_unlock(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    lock = store.lock("apply").acquire()
    args = ["--state", str(store.path)]
    before = snapshot(store.dir)
    assert run(["state", "unlock", "0000", *args]) == 1
    assert "not the lock held now" in capsys.readouterr().err and snapshot(store.dir) == before
    assert run(["state", "unlock", str(lock.id), *args]) == 1  # held by a running process: never broken
    assert "held by a running process" in capsys.readouterr().err and snapshot(store.dir) == before
    assert run(["state", "list", *args]) == 0
    assert f"The state is locked by pid {os.getpid()}" in capsys.readouterr().err
    lock.release()
    assert run(["state", "unlock", str(lock.id), *args]) == 0
    assert capsys.readouterr().out.startswith("Nothing to break: the state is not locked")
    store.lock_path.write_text(json.dumps({"id": "0ld10ck0", "pid": os.getpid(), "host": socket.gethostname(),
                                           "user": "u", "operation": "apply", "created_at": "2025-01-31T09:30:00Z"}))
    assert run(["state", "unlock", "0ld10ck0", *args]) == 0  # an older reconciler's lock file: broken by id
    assert f"Broke lock 0ld10ck0 (held by pid {os.getpid()}" in capsys.readouterr().out
    assert not store.lock_path.exists()


def test_forget_intent_by_bare_name(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    journal = Journal.for_state(store)
    journal.open_intent("client_package.bob-5", "ClientPackage", "d",
                        {"client_email": "bob@example.com", "package_name": "Piano 10"})
    # just recorded: vcita may still be executing it, or not list it yet (refused, nothing changed)
    before = snapshot(store.dir)
    assert run(["state", "forget-intent", "bob-5", "--state", str(store.path)]) == 1
    err = capsys.readouterr().err
    assert "too recent to forget: client_package.bob-5" in err and "nothing was forgotten" in err
    assert "with --force" in err and snapshot(store.dir) == before
    assert run(["state", "forget-intent", "bob-5", "--force", "--state", str(store.path)]) == 0
    out, err = capsys.readouterr()
    assert "Forgot the pending create of client_package.bob-5" in out
    assert "client_email: bob@example.com" in out and "package_name: Piano 10" in out
    assert "Check by hand" in err and "reconciler import client_package.bob-5" in err
    # the format-1 journal was migrated into the state and retired by the write that forgot it
    assert not journal.path.exists() and store.load().pending == {}
    assert not store.lock_path.exists()


def test_forget_intent_refused_changes_nothing(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    Journal.for_state(store).open_intent("client_package.bob-5", "ClientPackage", "d", {})
    before = snapshot(store.dir)
    assert run(["state", "forget-intent", "client_package.carol", "--state", str(store.path)]) == 1
    err = capsys.readouterr().err
    assert "no pending create of client_package.carol" in err and "Pending creates: client_package.bob-5" in err
    assert run(["state", "forget-intent", "Not A Name", "--state", str(store.path)]) == 1
    assert snapshot(store.dir) == before


def test_forget_intent_of_several_names_in_one_state_write(store: StateStore,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    # After a server that died with many creates in flight: one command, one write, every record.
    journal = Journal.for_state(store)
    for name in ("bob-5", "carol-5", "dan-5"):
        journal.open_intent(f"client_package.{name}", "ClientPackage", "d", {"client_email": f"{name}@example.com"})
    serial = store.load().serial
    args = ["state", "forget-intent", "bob-5", "client_package.carol-5", "bob-5", "--force", "--state",
            str(store.path)]
    assert run(args) == 0
    out, err = capsys.readouterr()
    assert out.count("Forgot the pending create of") == 2  # the repeated name counts once
    assert "client_email: bob-5@example.com" in out and "client_email: carol-5@example.com" in out
    assert "none of these 2 was created" in err and "reconciler import ADDRESS ID" in err
    after = store.load()
    assert [it.address for it in after.pending.values()] == ["client_package.dan-5"]
    assert after.serial == serial + 1  # one state write for both
    assert not store.lock_path.exists()


def test_forget_intent_of_several_names_refuses_them_all_when_one_is_not_pending(
        store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    Journal.for_state(store).open_intent("client_package.bob-5", "ClientPackage", "d", {})
    store.load()  # the journal migrated into the state, so the snapshot below is what stays
    before = snapshot(store.dir)
    assert run(["state", "forget-intent", "bob-5", "erin-5", "--state", str(store.path)]) == 1
    err = capsys.readouterr().err
    assert "no pending create of client_package.erin-5" in err and "nothing was forgotten" in err
    assert "Pending creates: client_package.bob-5" in err
    assert run(["state", "forget-intent", "bob-5", "Not A Name", "--state", str(store.path)]) == 1
    assert snapshot(store.dir) == before
    assert [it.address for it in store.load().pending.values()] == ["client_package.bob-5"]


def test_rm_with_yes(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["state", "rm", "client_package.alice-10", "--yes", "--state", str(store.path)]) == 0
    assert "the object still exists in vcita" in capsys.readouterr().out
    after = store.load()
    assert list(after.resources) == ["catalog_package.piano-10"] and after.serial == 2
    assert not store.lock_path.exists()


def test_rm_several_addresses_at_once(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["state", "rm", "client_package.alice-10", "catalog_package.piano-10", "-y", "--state", str(store.path)]
    assert run(args) == 0
    assert capsys.readouterr().out.count("Removed ") == 2
    after = store.load()
    assert not after.resources and after.serial == 2  # one write for both


def test_rm_is_all_or_nothing(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(store.dir)
    args = ["state", "rm", "client_package.alice-10", "client_package.nobody", "-y", "--state", str(store.path)]
    assert run(args) == 1
    assert "client_package.nobody is not tracked" in capsys.readouterr().err
    assert snapshot(store.dir) == before


def test_rm_without_terminal_refuses(store: StateStore, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # input is there, but not a terminal
    before = snapshot(store.dir)
    assert run(["state", "rm", "client_package.alice-10", "--state", str(store.path)]) == 1
    err = capsys.readouterr().err
    assert "without confirmation" in err and "--yes" in err
    assert snapshot(store.dir) == before


def test_rm_refused_while_locked(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    with StateLock(store.dir, operation="apply"):
        before = snapshot(store.dir)
        assert run(["state", "rm", "client_package.alice-10", "-y", "--state", str(store.path)]) == 1
        assert "state is locked by pid" in capsys.readouterr().err
        assert snapshot(store.dir) == before


def test_rm_unknown_address(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(store.dir)
    assert run(["state", "rm", "client_package.nobody", "-y", "--state", str(store.path)]) == 1
    assert "is not tracked" in capsys.readouterr().err and snapshot(store.dir) == before


def _rm_on_a_terminal(store: StateStore, answer: bytes) -> tuple[int, str]:
    """Run ``state rm`` in a real pseudo-terminal and answer its question."""
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, str(WORKER), "cli", "--no-color", "state", "rm",
                          "client_package.alice-10", "--state", str(store.path)],
                         stdin=slave, stdout=slave, stderr=slave, env={**os.environ, "PYTHONPATH": str(REPO)})
    os.close(slave)
    seen = b""
    answered = False
    deadline = time.monotonic() + 15
    try:
        for chunk in _read_pty(master, deadline):
            seen += chunk
            if not answered and b"[y/N]" in seen:
                os.write(master, answer)
                answered = True
        return p.wait(timeout=10), seen.decode(errors="replace")
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
            p.wait()


def _read_pty(fd: int, deadline: float) -> Iterator[bytes]:
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side is closed
            return
        if not chunk:
            return
        yield chunk


def test_rm_asks_on_a_terminal(store: StateStore) -> None:
    before = snapshot(store.dir)
    code, text = _rm_on_a_terminal(store, b"n\n")
    assert code == 1 and "Stop tracking client_package.alice-10 (vcita id uid-alice)?" in text
    assert "cancelled" in text and snapshot(store.dir) == before
    code, text = _rm_on_a_terminal(store, b"y\n")
    assert code == 0, text
    assert "client_package.alice-10" not in store.load().resources


def test_rm_archives_and_rm_archived_erases(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--state", str(store.path)]
    assert run(["state", "rm", "client_package.alice-10", "-y", *args]) == 0
    after = store.load()
    assert "client_package.alice-10" not in after.resources
    record = after.archived["uid-alice"]
    assert (record.address, record.kind) == ("client_package.alice-10", "ClientPackage")
    assert "state rm" in record.reason
    capsys.readouterr()
    assert run(["state", "list", *args]) == 0
    assert "uid-alice  (archived " in capsys.readouterr().out
    before = snapshot(store.dir)
    assert run(["state", "rm", "--archived", "uid-nope", "-y", *args]) == 1  # all or nothing
    assert "not an archived vcita id" in capsys.readouterr().err and snapshot(store.dir) == before
    assert run(["state", "rm", "--archived", "uid-alice", "-y", *args]) == 0
    assert store.load().archived == {}


def test_mv_renames_a_tracked_object_and_its_pending_create(store: StateStore,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--state", str(store.path)]
    assert run(["state", "mv", "client_package.alice-10", "client_package.alice-2026", *args]) == 0
    after = store.load()
    assert after.resources["client_package.alice-2026"].id == "uid-alice"
    assert "client_package.alice-10" not in after.resources and after.serial == 2
    assert "nothing in vcita changed" in capsys.readouterr().out
    before = snapshot(store.dir)
    for bad in (["client_package.alice-2026", "catalog_package.x"],  # another kind
                ["client_package.nobody", "client_package.x"],  # not tracked
                ["client_package.alice-2026", "client_package.alice-2026"],  # already tracked
                ["Not An Address", "client_package.x"]):
        assert run(["state", "mv", *bad, *args]) != 0
        assert snapshot(store.dir) == before, bad
    err = capsys.readouterr().err
    assert "same kind" in err and "not tracked" in err and "already tracked" in err

"""The state lock, with real processes: one winner, holders named, stale locks reported not broken."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.errors import StateError, StateLockedError
from reconciler.state import StateLock, StateStore, read_lock, unlock

Spawn = Callable[..., "subprocess.Popen[str]"]


def test_lock_file_holds_the_holder_with_mode_0600(tmp_path: Path) -> None:
    with StateLock(tmp_path, operation="apply") as lock:
        path = tmp_path / "state.lock"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        holder = json.loads(path.read_text())
        assert holder["id"] == lock.id and holder["pid"] == os.getpid()
        assert holder["host"] == socket.gethostname() and holder["operation"] == "apply"
        assert set(holder) == {"id", "pid", "host", "user", "operation", "created_at"}
    assert not path.exists()


def test_second_taker_is_refused_with_the_holder(tmp_path: Path) -> None:
    with StateLock(tmp_path, operation="apply") as lock:
        with pytest.raises(StateLockedError) as e:
            StateLock(tmp_path, operation="plan").acquire()
        err = e.value
        assert err.lock_id == lock.id and err.holder["operation"] == "apply"
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in err.message and "'apply'" in err.message
    assert "stale" not in err.message
    assert f"reconciler state unlock {err.lock_id}" in (err.hint or "")


def test_two_processes_race_exactly_one_wins(tmp_path: Path, spawn: Spawn) -> None:
    go, release = tmp_path / "go", tmp_path / "release"
    procs = [spawn("race", str(tmp_path / "s"), str(go), str(release)) for _ in range(4)]
    go.touch()
    results = [json.loads(p.stdout.readline()) for p in procs]  # type: ignore[union-attr]
    release.touch()
    assert all(p.wait(timeout=15) == 0 for p in procs)
    winners = [r for r in results if r["won"]]
    assert len(winners) == 1
    for loser in (r for r in results if not r["won"]):
        assert loser["holder_pid"] == winners[0]["pid"] and loser["lock_id"] == winners[0]["lock_id"]
        assert f"pid {winners[0]['pid']}" in loser["message"]
    assert not (tmp_path / "s" / "state.lock").exists()  # the winner released it


def test_stale_lock_is_reported_not_broken(tmp_path: Path, spawn: Spawn) -> None:
    p = spawn("hold", str(tmp_path))
    lock_id = p.stdout.readline().strip()  # type: ignore[union-attr]
    with pytest.raises(StateLockedError) as live:
        StateLock(tmp_path).acquire()
    assert live.value.lock_id == lock_id and "stale" not in live.value.message  # alive: not stale
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    with pytest.raises(StateLockedError) as e:
        StateLock(tmp_path).acquire()
    assert "no longer running" in e.value.message and "stale" in e.value.message
    assert e.value.lock_id == lock_id and e.value.holder["pid"] == p.pid
    assert (tmp_path / "state.lock").exists()  # never broken on its own
    assert unlock(tmp_path, lock_id)["pid"] == p.pid
    with StateLock(tmp_path):
        pass


def test_lock_of_another_host_is_not_called_stale(tmp_path: Path) -> None:
    record = {"id": "abcd1234", "pid": 999999999, "host": "build-agent-7", "user": "ci",
              "operation": "apply", "created_at": "2025-01-31T09:30:00Z"}
    (tmp_path / "state.lock").write_text(json.dumps(record))
    with pytest.raises(StateLockedError) as e:
        StateLock(tmp_path).acquire()
    assert "stale" not in e.value.message and "build-agent-7" in e.value.message
    assert "since 2025-01-31T09:30:00Z" in e.value.message


def test_unlock_with_wrong_id_is_refused(tmp_path: Path) -> None:
    lock = StateLock(tmp_path).acquire()
    with pytest.raises(StateError, match="not the lock held now"):
        unlock(tmp_path, "deadbeef")
    assert read_lock(tmp_path / "state.lock") == (lock.id, json.loads((tmp_path / "state.lock").read_text()))
    assert lock.id is not None
    unlock(tmp_path, lock.id)
    assert not (tmp_path / "state.lock").exists()
    with pytest.raises(StateError, match="not locked"):
        unlock(tmp_path, lock.id)


def test_release_only_when_still_ours(tmp_path: Path) -> None:
    first = StateLock(tmp_path).acquire()
    assert first.id is not None
    unlock(tmp_path, first.id)  # someone broke it...
    second = StateLock(tmp_path).acquire()  # ...and someone else took it
    assert first.release() is False
    assert read_lock(tmp_path / "state.lock") is not None
    assert second.release() is True and not (tmp_path / "state.lock").exists()


def test_released_on_exception(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), StateLock(tmp_path):
        raise RuntimeError("boom")
    assert not (tmp_path / "state.lock").exists()


def test_damaged_lock_file_can_still_be_broken(tmp_path: Path) -> None:
    (tmp_path / "state.lock").write_bytes(b"")  # taker killed between O_EXCL and write
    with pytest.raises(StateLockedError, match="empty or damaged") as e:
        StateLock(tmp_path).acquire()
    assert e.value.lock_id.startswith("damaged-")
    unlock(tmp_path, e.value.lock_id)
    with StateLock(tmp_path):
        pass


def test_store_lock_uses_the_sibling_name(tmp_path: Path) -> None:
    with StateStore(tmp_path / "prod.json").lock("apply"):
        assert (tmp_path / "prod.lock").exists()
        with StateStore(tmp_path / "state.json").lock("apply"):  # another state: another lock
            assert (tmp_path / "state.lock").exists()

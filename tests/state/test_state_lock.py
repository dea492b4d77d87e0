"""The state lock, with real processes: one winner, holders named, and no lock outlives its process.

The lock is a flock: the kernel releases it when its holder ends, SIGKILL included.  Lock files of
older reconcilers (O_EXCL, no flock) are still honoured while their holder may be alive and broken
by id with ``unlock``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.core.errors import StateError, StateLockedError
from reconciler.state.lock import lock_status
from reconciler.state.store import StateLock, StateStore, read_lock, unlock

Spawn = Callable[..., "subprocess.Popen[str]"]


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _legacy(path: Path, pid: int, host: str | None = None) -> dict[str, object]:
    """A lock file as reconcilers before the flock lock wrote it (O_EXCL, no "lock" key)."""
    record = {"id": "abcd1234", "pid": pid, "host": host or socket.gethostname(), "user": "ci",
              "operation": "apply", "created_at": "2025-01-31T09:30:00Z"}
    path.write_text(json.dumps(record))
    return record


def test_lock_file_holds_the_holder_with_mode_0600(tmp_path: Path) -> None:
    with StateLock(tmp_path, operation="apply") as lock:
        path = tmp_path / "state.lock"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        holder = json.loads(path.read_text())
        assert holder["id"] == lock.id and holder["pid"] == os.getpid() and holder["lock"] == "flock"
        assert holder["host"] == socket.gethostname() and holder["operation"] == "apply"
        assert set(holder) == {"id", "pid", "host", "user", "operation", "created_at", "lock"}
        assert lock_status(path).held and lock_status(path).lock_id == lock.id
    assert not path.exists()  # removed on release: nothing left in a GitOps checkout
    assert not lock_status(path).held


def test_second_taker_is_refused_with_the_holder(tmp_path: Path) -> None:
    with StateLock(tmp_path, operation="apply") as lock:
        with pytest.raises(StateLockedError) as e:
            StateLock(tmp_path, operation="plan").acquire()
        err = e.value
        assert err.lock_id == lock.id and err.holder["operation"] == "apply"
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in err.message and "'apply'" in err.message
    assert f"(lock id {err.lock_id})" in err.message
    assert "released when its process ends" in (err.hint or "") and "unlock" not in (err.hint or "")


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


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_holder_leaves_no_lock_behind(tmp_path: Path, spawn: Spawn, sig: signal.Signals) -> None:
    p = spawn("hold", str(tmp_path))
    lock_id = p.stdout.readline().strip()  # type: ignore[union-attr]
    with pytest.raises(StateLockedError) as live:
        StateLock(tmp_path).acquire()
    assert live.value.lock_id == lock_id and live.value.holder["pid"] == p.pid
    p.send_signal(sig)
    p.wait(timeout=10)
    # Its record is still in the file (nothing ran to remove it), but it holds nothing:
    assert read_lock(tmp_path / "state.lock") is not None
    assert not lock_status(tmp_path / "state.lock").held
    result = unlock(tmp_path, lock_id)
    assert not result.broke and "Nothing to break" in result.message and "no longer held" in result.message
    with StateLock(tmp_path, operation="next") as lock:  # at once, without anyone breaking anything
        assert read_lock(tmp_path / "state.lock") == (lock.id, json.loads((tmp_path / "state.lock").read_text()))


def test_a_held_lock_cannot_be_unlocked(tmp_path: Path) -> None:
    lock = StateLock(tmp_path).acquire()
    assert lock.id is not None
    with pytest.raises(StateError, match="not the lock held now"):
        unlock(tmp_path, "deadbeef")
    with pytest.raises(StateError, match="held by a running process") as e:
        unlock(tmp_path, lock.id)
    assert "released when that process ends" in (e.value.hint or "")
    assert lock_status(tmp_path / "state.lock").held
    assert lock.release() is True
    result = unlock(tmp_path, lock.id)
    assert not result.broke and result.message.startswith("Nothing to break: the state is not locked")


def test_a_lock_file_removed_by_hand_is_released_all_the_same(tmp_path: Path) -> None:
    first = StateLock(tmp_path).acquire()
    (tmp_path / "state.lock").unlink()
    second = StateLock(tmp_path).acquire()  # a new file: a new lock (as removing a lock file always did)
    assert first.release() is False  # not ours any more: second's file is left alone
    assert lock_status(tmp_path / "state.lock").lock_id == second.id
    assert second.release() is True and not (tmp_path / "state.lock").exists()


def test_released_on_exception(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), StateLock(tmp_path):
        raise RuntimeError("boom")
    assert not (tmp_path / "state.lock").exists()


def test_empty_lock_file_is_free(tmp_path: Path) -> None:
    (tmp_path / "state.lock").write_bytes(b"")  # a taker killed before it wrote its record
    with StateLock(tmp_path):
        pass


def test_old_style_lock_of_a_live_process_is_honoured_and_broken_by_id(tmp_path: Path) -> None:
    record = _legacy(tmp_path / "state.lock", os.getpid())
    with pytest.raises(StateLockedError) as e:
        StateLock(tmp_path).acquire()
    assert e.value.lock_id == "abcd1234" and "since 2025-01-31T09:30:00Z" in e.value.message
    assert "older reconciler" in (e.value.hint or "") and "reconciler state unlock abcd1234" in (e.value.hint or "")
    assert json.loads((tmp_path / "state.lock").read_text()) == record  # a refused taker changes nothing
    with pytest.raises(StateError, match="not the lock held now"):
        unlock(tmp_path, "cafebabe")
    result = unlock(tmp_path, "abcd1234")
    assert result.broke and result.message.startswith("Broke lock abcd1234 (held by pid")
    with StateLock(tmp_path):
        pass


def test_old_style_lock_of_another_host_is_honoured(tmp_path: Path) -> None:
    _legacy(tmp_path / "state.lock", 999_999_999, host="build-agent-7")
    with pytest.raises(StateLockedError) as e:
        StateLock(tmp_path).acquire()
    assert "build-agent-7" in e.value.message and "stale" not in e.value.message


def test_old_style_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    _legacy(tmp_path / "state.lock", _dead_pid())
    assert not lock_status(tmp_path / "state.lock").held
    with StateLock(tmp_path) as lock:
        assert read_lock(tmp_path / "state.lock")[0] == lock.id  # type: ignore[index]


def test_damaged_old_style_lock_file_can_still_be_broken(tmp_path: Path) -> None:
    (tmp_path / "state.lock").write_bytes(b"{\"id\": \"trunc")
    with pytest.raises(StateLockedError, match="holds no record") as e:
        StateLock(tmp_path).acquire()
    assert e.value.lock_id.startswith("damaged-")
    assert unlock(tmp_path, e.value.lock_id).broke
    with StateLock(tmp_path):
        pass


def test_lock_path_that_is_a_link_or_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    (tmp_path / "state.lock").symlink_to(target)
    with pytest.raises(StateError, match="symbolic link"):
        StateLock(tmp_path).acquire()
    assert target.read_text() == "precious\n"
    (tmp_path / "state.lock").unlink()
    os.mkfifo(tmp_path / "state.lock")
    done: list[BaseException] = []

    def take() -> None:
        try:
            StateLock(tmp_path).acquire()
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            done.append(e)

    t = threading.Thread(target=take, daemon=True)
    t.start()
    t.join(timeout=10)
    assert not t.is_alive(), "taking a lock whose file is a FIFO blocked"
    assert isinstance(done[0], StateError) and "it is a FIFO" in str(done[0])
    with pytest.raises(StateError, match="it is a FIFO"):
        lock_status(tmp_path / "state.lock")


def test_store_lock_uses_the_sibling_name(tmp_path: Path) -> None:
    with StateStore(tmp_path / "prod.json").lock("apply"):
        assert (tmp_path / "prod.lock").exists()
        with StateStore(tmp_path / "state.json").lock("apply"):  # another state: another lock
            assert (tmp_path / "state.lock").exists()


def test_a_probe_does_not_make_a_taker_fail(tmp_path: Path) -> None:
    # state list probes the lock (a shared flock for an instant); a taker meeting the probe retries.
    stop = time.monotonic() + 1.0
    errors: list[BaseException] = []

    def probe() -> None:
        while time.monotonic() < stop:
            try:
                lock_status(tmp_path / "state.lock")
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

    t = threading.Thread(target=probe)
    t.start()
    try:
        for _ in range(100):
            with StateLock(tmp_path):
                pass
    finally:
        t.join()
    assert not errors

"""Files others may read or write, checked like ssh checks keys: token files and the state.

A token file writable by others is refused before anything is sent; one readable by others is
warned about; a state (file, journal, folder) writable by others is warned about.  The real CLI
against the served sandbox; warnings are ``Warning: ...`` lines on stderr, once per file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CLI = Callable[..., tuple[int, str, str]]


@pytest.fixture
def token_file(workdir: Path, demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("VCITA_STAFF_TOKEN")
    path = workdir / "staff.token"
    path.write_text(demo["tokens"]["staff"] + "\n")
    path.chmod(0o600)
    return path


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("Warning:")]


def test_private_token_file_and_state_say_nothing(token_file: Path, cli: CLI) -> None:
    code, _out, err = cli("plan", "--token-file", str(token_file))
    assert code == 0 and _warnings(err) == [], err


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602], ids=["0666", "group-writable", "world-writable"])
def test_token_file_writable_by_others_is_refused_before_anything_is_sent(
        token_file: Path, cli: CLI, operator: Callable[..., Any], demo: dict[str, Any], mode: int) -> None:
    token_file.chmod(mode)
    before = operator("GET", "/stats")
    code, out, err = cli("plan", "--token-file", str(token_file))
    assert code == 1 and "Traceback" not in err
    assert f"Error: staff token file {token_file} is writable by" in err and f"(mode {mode:04o})" in err
    assert f"chmod 600 {token_file}" in err
    assert demo["tokens"]["staff"] not in out + err
    assert operator("GET", "/stats") == before  # refused before a single request


def test_token_file_readable_by_others_is_warned_about_once(token_file: Path, cli: CLI, demo: dict[str, Any]) -> None:
    token_file.chmod(0o644)
    code, out, err = cli("-v", "plan", "--token-file", str(token_file))
    assert code == 0, err
    assert _warnings(err) == [f"Warning: staff token file {token_file} is readable by its group and everyone else "
                              f"(mode 0644): anyone who can read it can act as this business in vcita; make it "
                              f"private: chmod 600 {token_file}"]
    assert demo["tokens"]["staff"] not in out + err


def test_token_from_a_pipe_is_not_checked(workdir: Path, demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # --token-file /dev/stdin: a pipe, private by nature, whatever its mode bits say.
    monkeypatch.delenv("VCITA_STAFF_TOKEN")
    proc = subprocess.run([sys.executable, "-m", "reconciler", "plan", "--token-file", "/dev/stdin"],
                          input=demo["tokens"]["staff"] + "\n", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and _warnings(proc.stderr) == [], proc.stderr


def test_state_writable_by_others_is_warned_about(workdir: Path, cli: CLI) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    folder = Path("manifests") / ".reconciler"  # as the CLI names it: relative to the working directory
    assert (folder.stat().st_mode & 0o777) == 0o755
    folder.chmod(0o777)
    (folder / "state.json").chmod(0o660)
    code, _out, err = cli("state", "list")
    assert code == 0
    assert _warnings(err) == [
        f"Warning: the state folder {folder} is writable by its group and everyone else (mode 0777): whoever can "
        f"change it can make reconciler forget what it created and create it again; run: chmod go-w {folder}",
        f"Warning: the state file state.json in {folder} is writable by its group (mode 0660): whoever can change "
        f"it can make reconciler forget what it created and create it again; run: chmod go-w {folder / 'state.json'}",
    ]
    (folder / "state.json").chmod(0o644)  # readable is fine: the state holds no secrets, git checks it out 0644
    folder.chmod(0o755)
    assert _warnings(cli("state", "list")[2]) == []


def test_state_folder_is_created_0755_whatever_the_umask(workdir: Path, cli: CLI) -> None:
    old = os.umask(0o002)  # a user-private-group system: new folders would be group-writable
    try:
        assert cli("state", "rm", "client_package.nothing", "--yes")[0] == 1  # refused, nothing to lock
        code, _out, err = cli("apply", "--auto-approve")
    finally:
        os.umask(old)
    assert code == 0 and _warnings(err) == [], err
    assert ((workdir / "manifests" / ".reconciler").stat().st_mode & 0o777) == 0o755


def test_a_state_file_gone_beside_its_backup_is_warned_about_with_the_command_that_restores_it(
        workdir: Path, cli: CLI) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    code, _out, err = cli("plan")
    assert code == 0 and _warnings(err) == [], err  # a state and its backup: nothing to say
    folder = workdir / "manifests" / ".reconciler"
    assert (folder / "state.json.backup").exists()
    (folder / "state.json").rename(workdir / "elsewhere.json")
    code, out, err = cli("plan")
    assert code == 1 and "already exists in vcita" in out + err, out + err  # the second memory still holds
    (warning,) = _warnings(err)
    assert "there is no state file" in warning and "cp " in warning and "state.json.backup" in warning
    (folder / "state.json.backup").unlink()  # a deliberate fresh start: both gone, nothing to say
    code, _out, err = cli("plan")
    assert code == 1 and _warnings(err) == [], err

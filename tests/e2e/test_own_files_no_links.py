"""reconciler's own files are never reached through a symbolic link (issue 12, item 3).

A symlinked ``journal.jsonl`` once made apply truncate and overwrite its target (a 37-byte
configuration file became 4 KB of journal records, mode 0600), or create a file at a dangling
link's target.  The journal, the state, its backup, the lock and saved plans are opened without
following links and must be regular files: each planted link (or FIFO) is refused with one
clear error naming the path, exit 1, before anything is sent, and its target is untouched.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CLI = Callable[..., tuple[int, str, str]]
CONFIG = b"# a precious configuration file\nx=1\n"


def _client_packages(operator: Any, demo: dict[str, Any]) -> int:
    got = operator("GET", f"/client_packages?business_id={demo['business']['id']}")
    return len(got["client_packages"] if isinstance(got, dict) else got)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "elsewhere" / "app.conf"
    path.parent.mkdir()
    path.write_bytes(CONFIG)
    path.chmod(0o644)
    return path


def _untouched(victim: Path) -> None:
    assert victim.read_bytes() == CONFIG
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644


@pytest.mark.parametrize("name", ["journal.jsonl", "state.json", "state.json.backup", "state.lock"])
def test_a_link_in_place_of_a_state_file_is_refused_before_anything_is_sent(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any], victim: Path, name: str) -> None:
    folder = workdir / "manifests" / ".reconciler"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / name
    link.symlink_to(victim)
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err
    assert f"manifests/.reconciler/{name}" in err and "symbolic link" in err and "Traceback" not in err
    _untouched(victim)
    assert link.is_symlink()
    assert _client_packages(operator, demo) == 0


def test_a_dangling_journal_link_creates_nothing_at_its_target(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any], tmp_path: Path) -> None:
    folder = workdir / "manifests" / ".reconciler"
    folder.mkdir(parents=True)
    target = tmp_path / "elsewhere" / "created-by-a-link"
    target.parent.mkdir()
    (folder / "journal.jsonl").symlink_to(target)
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1 and "symbolic link" in err, out + err
    assert not target.exists()
    assert _client_packages(operator, demo) == 0


def test_a_fifo_in_place_of_the_journal_is_refused_without_blocking(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    folder = workdir / "manifests" / ".reconciler"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "journal.jsonl")
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1 and "FIFO" in err, out + err
    assert _client_packages(operator, demo) == 0


def test_saved_plans_are_neither_read_nor_written_through_a_link(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any], victim: Path) -> None:
    link = workdir / "plan.json"
    link.symlink_to(victim)
    code, out, err = cli("plan", "--out", str(link))
    assert code == 1 and "symbolic link" in err, out + err
    _untouched(victim)

    assert cli("plan", "--out", "real.json")[0] == 0
    link.unlink()
    link.symlink_to(workdir / "real.json")
    code, out, err = cli("apply", str(link))
    assert code == 1 and "symbolic link" in err and str(link) in err, out + err
    assert _client_packages(operator, demo) == 0

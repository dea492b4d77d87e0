"""Exit codes come from one table (reconciler/cli/exit_codes.py, the README's table); Ctrl-C is 130;
RECONCILER_DEBUG works like --debug; a saved plan of another format version is refused clearly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.cli import exit_codes, run

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_table_lists_exactly_the_codes_of_the_cli() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    listed = {int(m) for m in re.findall(r"^\| (\d+) \|", section, re.MULTILINE)}
    decided = {exit_codes.OK, exit_codes.ERROR, exit_codes.CHANGES, exit_codes.DRIFT, exit_codes.PENDING,
               exit_codes.UNRESOLVED, exit_codes.INTERRUPTED, exit_codes.TERMINATED}
    assert listed == decided == {0, 1, 2, 3, 4, 130, 143}


def test_created_outside_is_remote_drift_in_the_code_and_both_tables() -> None:
    from reconciler.drift.model import DRIFT_STATUSES, ObjectDrift, verdict_for

    outside = ObjectDrift(address="client_package.(untracked x)", kind="ClientPackage", name="x",
                          status="created_outside")
    assert "created_outside" in DRIFT_STATUSES
    assert exit_codes.for_drift(verdict_for([outside])) == exit_codes.DRIFT == 2
    readme = (ROOT / "README.md").read_text().split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in readme.splitlines() if line.startswith("| 2 |"))
    assert "created outside reconciler" in row
    assert "created_outside" in (exit_codes.__doc__ or "")


def test_no_exit_number_is_decided_outside_the_cli() -> None:
    for module in sorted([*(ROOT / "reconciler" / "fleet").glob("*.py"), *(ROOT / "reconciler" / "drift").glob("*.py")]):
        text = module.read_text()
        assert not re.search(r"exit_code\s*(==|=)\s*\d|EXIT_\w+\s*=|\bsys\.exit\b", text), module


@pytest.mark.parametrize("value,traceback", [("1", True), ("true", True), ("0", False), ("", False)])
def test_reconciler_debug_in_the_environment_works_like_the_flag(
        value: str, traceback: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECONCILER_DEBUG", value)
    assert run(["apply", "missing.json"]) == exit_codes.ERROR
    err = capsys.readouterr().err
    assert "Error: no plan file at missing.json" in err
    assert ("Traceback" in err) is traceback


@pytest.mark.parametrize("version,says", [(1, "format_version 1, made by an older reconciler"),
                                          (3, "format_version 3, made by a newer reconciler"),
                                          ("2", "it is not a reconciler plan (format_version '2')")])
def test_a_saved_plan_of_another_format_is_refused_saying_so(
        version: Any, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan.json").write_text(json.dumps({"format_version": version, "changes": []}))
    assert run(["apply", "plan.json"]) == exit_codes.ERROR
    err = capsys.readouterr().err
    assert says in err
    if isinstance(version, int):
        assert "this one reads format_version 2 only" in err
    assert "reconciler plan --out FILE" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]  # nothing else written


def test_ctrl_c_exits_130_and_releases_the_lock(workdir: Path, sandbox: Any, operator: Any) -> None:
    # Every request takes 4 s: the interrupt lands while apply waits for the refresh's answers.
    operator("POST", "/faults", json={"method": "*", "path": "*", "door": "*", "latency_ms": 4000})
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "apply", "--auto-approve"], cwd=workdir,
                            env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = workdir / "manifests" / ".reconciler" / "state.lock"
    deadline = time.monotonic() + 30
    while not lock.exists() and time.monotonic() < deadline:  # it is running, holding the lock
        time.sleep(0.05)
    assert lock.exists(), proc.communicate(timeout=30)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (proc.returncode, out, err)
    assert "Error: interrupted" in err and "Traceback" not in err
    assert not lock.exists()
    httpx.delete(sandbox.operator_url + "/faults", timeout=10).raise_for_status()
    done = subprocess.run([sys.executable, "-m", "reconciler", "apply", "--auto-approve"], cwd=workdir,
                          env=os.environ.copy(), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr

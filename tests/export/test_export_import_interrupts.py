"""SIGINT / SIGTERM during ``reconciler import --discover`` and ``reconciler export``.

Real processes against the served sandbox, slowed down so that the signal lands while the
command reads vcita (holding the state lock).  Whatever the moment: the documented exit code
(130 / 143), one clear error line, no traceback; the state file and the manifests are untouched
(or, when the signal came once the work was done, complete: never a half-written file); the lock
is released.  Before the fix, SIGTERM killed both commands on the spot (exit -15, no message).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

CLI = Callable[..., tuple[int, str, str]]
SIGNALS = [(signal.SIGINT, 130), (signal.SIGTERM, 143)]
IDS = ["SIGINT", "SIGTERM"]


def _start(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "reconciler", *args], cwd=cwd, env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _signal_while_it_holds_the_lock(proc: subprocess.Popen[str], lock: Path, sig: signal.Signals,
                                    after: float) -> tuple[str, str]:
    deadline = time.monotonic() + 60
    while not lock.exists() and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    assert lock.exists(), proc.communicate(timeout=30)
    time.sleep(after)  # in the middle of its (slow) reads
    proc.send_signal(sig)
    return proc.communicate(timeout=60)


def _one_clean_error(code: int, expected: int, out: str, err: str) -> None:
    assert code == expected, (code, out, err)
    assert "Traceback" not in out + err and "internal error" not in out + err, out + err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, err
    assert ("interrupted" if expected == 130 else "terminated") in errors[0], err


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "state.lock"}


@pytest.mark.parametrize("sig, code", SIGNALS, ids=IDS)
def test_a_signal_during_import_discover_leaves_the_state_untouched(
        workdir: Path, cli: CLI, operator: Any, sig: signal.Signals, code: int) -> None:
    state_dir = workdir / "manifests" / ".reconciler"
    assert cli("apply", "--auto-approve", "manifests/catalog-packages.yaml")[0] == 0
    older = workdir / "older"
    shutil.copytree(state_dir, older)
    assert cli("apply", "--auto-approve")[0] == 0
    shutil.rmtree(state_dir)
    shutil.copytree(older, state_dir)  # a state restored from before the client packages were sold
    before = _files(workdir / "manifests")
    operator("POST", "/faults", json={"path": "*", "latency_ms": 1500})  # every read is slow
    proc = _start(workdir, "import", "--discover")
    out, err = _signal_while_it_holds_the_lock(proc, state_dir / "state.lock", sig, after=0.8)
    _one_clean_error(proc.returncode, code, out, err)
    assert _files(workdir / "manifests") == before  # the state (and its backup) untouched, nothing left over
    assert not (state_dir / "state.lock").exists()
    operator("DELETE", "/faults")
    code2, out2, err2 = cli("import", "--discover")  # the lock is free and the state usable
    assert code2 == 0 and "8 client package(s) adopted in one state write" in out2, out2 + err2


@pytest.mark.parametrize("sig, code", SIGNALS, ids=IDS)
def test_a_signal_during_export_writes_nothing(business: dict[str, Any], cli: CLI, operator: Any,
                                               tmp_path: Path, sig: signal.Signals, code: int) -> None:
    operator("POST", "/bulk/client_packages", json={"business_id": business["business_id"],
                                                    "package_id": business["package_ids"][0], "count": 3})
    operator("POST", "/faults", json={"path": "*", "latency_ms": 1500})
    (tmp_path / "out").mkdir()
    proc = _start(tmp_path, "export", "--out", "out")
    out, err = _signal_while_it_holds_the_lock(proc, tmp_path / "out" / ".reconciler" / "state.lock", sig,
                                               after=0.8)
    _one_clean_error(proc.returncode, code, out, err)
    assert _files(tmp_path / "out") == {}  # no manifest, no state, no temporary file
    assert not (tmp_path / "schema").exists()
    operator("DELETE", "/faults")
    code2, out2, err2 = cli("export", "--out", "out")
    assert code2 == 0 and "Exported 50 catalog packages" in out2, out2 + err2


def _whole_export(files: dict[str, bytes]) -> bool:
    state = json.loads(files[".reconciler/state.json"])
    manifests = [n for n in files if n.endswith(".yaml")]
    assert len(manifests) == 51 and len(state["resources"]) == 53, sorted(files)
    for name in manifests:
        assert list(yaml.safe_load_all(files[name])), name  # each one whole
    return True


@pytest.mark.parametrize("delay", [0.0, 0.15, 0.3, 0.45, 0.6, 0.8])
def test_export_interrupted_at_any_moment_leaves_nothing_or_everything(
        business: dict[str, Any], operator: Any, tmp_path: Path, delay: float) -> None:
    """No latency: the signal lands anywhere in the run, reads or writes (the run takes about
    0.6 s once it holds the lock, here).  Either nothing of the export is on disk, or all of it:
    every manifest whole and the state recording them."""
    operator("POST", "/bulk/client_packages", json={"business_id": business["business_id"],
                                                    "package_id": business["package_ids"][0], "count": 3})
    (tmp_path / "out").mkdir()
    proc = _start(tmp_path, "export", "--out", "out")
    lock = tmp_path / "out" / ".reconciler" / "state.lock"
    deadline = time.monotonic() + 60
    while not lock.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    files = _files(tmp_path / "out")
    if proc.returncode != 0:
        _one_clean_error(proc.returncode, 143, out, err)
    assert files == {} or _whole_export(files), sorted(files)
    assert proc.returncode != 0 or files
    assert not lock.exists()

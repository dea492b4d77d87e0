"""Interrupts and failed state writes lose nothing and send nothing more (issue 14, flows 7-8).

Real processes: ``reconciler apply`` runs as a child against the served sandbox, slowed down so
that a signal lands in the middle of its creates.  SIGINT/SIGTERM: nothing more is sent, what
was in flight is recorded, creates never sent are *not* unknown outcomes, the lock is released,
and the exit code is 130/143.  A state that cannot be written (a file-size limit, the same
failure as a full disk): nothing more is sent, and every id vcita acknowledged but the state
could not record is printed with the command that records it.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
CREATE = "/platform/v1/payment/client_packages"


def _apply(workdir: Path, *extra: str, preexec: Any = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "reconciler", "apply", "--auto-approve", *extra],
                            cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=preexec)


def _state(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / "manifests/.reconciler/state.json").read_text())


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_sends_nothing_more_and_records_what_was_in_flight(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any], sig: signal.Signals, code: int) -> None:
    operator("POST", "/faults", json={"method": "POST", "path": CREATE, "latency_ms": 400})
    proc = _apply(workdir, "--concurrency", "1")
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until the first client package is done
        seen.append(line)
        if line.startswith("client_package.") and "created" in line:
            break
    time.sleep(0.1)  # the next create is in flight now
    proc.send_signal(sig)
    out = "".join(seen) + proc.stdout.read()
    proc.stdout.close()
    assert proc.wait(timeout=30) == code, out
    assert "Interrupted" in out and "not sent" in out and "unknown" not in out.split("Apply incomplete")[-1], out
    made = {cp["id"] for cp in client_packages(operator, demo)}
    state = _state(workdir)
    tracked = {r["id"] for a, r in state["resources"].items() if a.startswith("client_package.")}
    assert made == tracked and state["pending"] == {}  # every create sent is recorded; none left unknown
    assert 1 <= len(made) < 8
    assert not (workdir / "manifests/.reconciler/state.lock").exists()

    operator("DELETE", "/faults")
    code2, out2, err2 = cli("apply", "--auto-approve")
    assert code2 == 0, out2 + err2
    assert len(client_packages(operator, demo)) == 8


def _limit_file_size(limit: int) -> Callable[[], None]:
    def apply_limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply_limit


def test_a_state_that_cannot_be_written_stops_the_run_and_loses_no_acknowledged_id(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve", "manifests/catalog-packages.yaml")[0] == 0
    size = (workdir / "manifests/.reconciler/state.json").stat().st_size
    operator("POST", "/faults", json={"method": "POST", "path": CREATE, "latency_ms": 50})
    proc = _apply(workdir, "--concurrency", "2", preexec=_limit_file_size(size + 2000))  # pending records carry what was sent (issue 18)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    assert "Traceback" not in out and "internal error" not in out
    made = {cp["id"]: cp for cp in client_packages(operator, demo)}
    state = _state(workdir)
    tracked = {r["id"] for a, r in state["resources"].items() if a.startswith("client_package.")}
    assert len(made) < 8  # it stopped sending
    unrecorded = set(made) - tracked
    assert unrecorded, "the limit should have stopped at least one result from being recorded"
    for rid in unrecorded:  # each one printed with the command that records it
        assert f" {rid}" in out and "reconciler import client_package." in out

    operator("DELETE", "/faults")
    imports = {}
    for line in out.splitlines():
        parts = line.split("reconciler import ")
        if len(parts) == 2 and parts[1].split()[0].startswith("client_package."):
            address, rid = parts[1].split()[:2]
            imports[address] = rid.strip("'.")
    for address, rid in imports.items():
        if rid in unrecorded:
            code, o, e = cli("import", address, rid)
            assert code == 0, o + e
    code, o, e = cli("apply", "--auto-approve")
    assert code == 0, o + e
    assert len(client_packages(operator, demo)) == 8  # exactly one each


def test_a_second_signal_while_a_create_is_in_flight_ends_as_interrupted_and_sells_nothing_twice(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    # The second signal cancels what is in flight; its CancelledError used to leave the run as a
    # traceback and exit 1.  Now: exit 143 (the first signal), one line, the create in flight
    # still pending (an unknown outcome, never sent again), the lock released.
    operator("POST", "/faults", json={"method": "POST", "path": CREATE, "latency_ms": 1500})
    proc = _apply(workdir, "--concurrency", "1")
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("client_package.") and "created" in line:
            break
    time.sleep(0.2)  # the next create is in flight
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out = "".join(seen) + proc.stdout.read()
    proc.stdout.close()
    assert proc.wait(timeout=30) == 143, out
    assert "Traceback" not in out and "terminated (SIGTERM)" in out, out
    assert not (workdir / "manifests/.reconciler/state.lock").exists()
    state = _state(workdir)
    assert state["pending"]  # the create in flight (and those recorded with it): unknown outcomes, not sent again
    time.sleep(1.0)  # the sandbox finishes the request it got
    operator("DELETE", "/faults")
    cli("apply", "--auto-approve")
    made = client_packages(operator, demo)
    state = _state(workdir)
    tracked = {r["id"] for a, r in state["resources"].items() if a.startswith("client_package.")}
    assert {cp["id"] for cp in made} <= tracked  # whatever the cancelled create made is adopted, not made again
    assert len({(cp["client_id"], cp["package_id"]) for cp in made}) == len(made) <= 8

"""The CI-sized fault soak: ``bench/soak.py`` for 20 rounds against a served sandbox.

Random faults on every route (5xx, 429 with Retry-After, latency spikes, answers lost after
commit) and SIGKILLs of the apply process at random points; unknown outcomes resolved as a
person would.  At the end: no duplicate, nothing lost, and a final plan without changes.  The
full soak (``--rounds 200``) and the crash test (``--kill-only --rounds 50``) are run by hand;
their result lines are in the README.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROUNDS = int(os.environ.get("RECONCILER_SOAK_ROUNDS", "20"))


@pytest.mark.soak
def test_soak_under_faults_and_kills_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VCITA_", "RECONCILER_"))}
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "soak.py"), "--rounds", str(ROUNDS), "--json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) >= 2, proc.stdout + proc.stderr
    counts = json.loads(lines[-1])
    detail = f"{lines[0]}\n{json.dumps(counts)}\n{proc.stderr[-3000:]}"
    assert lines[0] == f"rounds={ROUNDS} duplicates=0 lost=0 final_changes=0 stale_locks=0", detail
    assert counts["locked_refusals"] == 0, detail  # a killed apply never leaves a lock that blocks the next
    assert counts["not_converged"] == [], detail
    assert proc.returncode == 0, detail
    assert counts["applies"] > ROUNDS and counts["fault_sets"] > 0, detail  # it did attack


PG_ROUNDS = int(os.environ.get("RECONCILER_SOAK_PG_ROUNDS", "6"))


@pytest.mark.soak
def test_soak_with_the_state_in_postgres(tmp_path: Path, pg_server: object) -> None:
    """The same soak with ``--state-backend postgres`` (its own throwaway server): killed applies
    leave their pending creates in the database and no lock behind (no lock error, nothing
    unlocked by hand).  ``pg_server`` only makes the test skip, or fail in CI, without the
    server binaries."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VCITA_", "RECONCILER_"))}
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "soak.py"), "--rounds", str(PG_ROUNDS), "--json",
                           "--state-backend", "postgres"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) >= 2, proc.stdout + proc.stderr
    counts = json.loads(lines[-1])
    detail = f"{lines[0]}\n{json.dumps(counts)}\n{proc.stderr[-3000:]}"
    assert lines[0] == f"rounds={PG_ROUNDS} duplicates=0 lost=0 final_changes=0 stale_locks=0", detail
    assert counts["state_backend"] == "postgres" and counts["unlocks"] == 0 and counts["locked_refusals"] == 0, detail
    assert counts["not_converged"] == [] and proc.returncode == 0, detail


SM_ROUNDS = int(os.environ.get("RECONCILER_SOAK_SM_ROUNDS", "8"))


@pytest.mark.soak
def test_soak_where_only_the_second_memory_resolves_and_rebuilds(tmp_path: Path) -> None:
    """``--second-memory`` (issue 18): no person looks in vcita (nothing is imported by hand); lost
    answers are resolved by the plan's discovery, and the state is deleted every 4 rounds and
    rebuilt with ``import --discover``; still no duplicate, nothing lost, no final change."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VCITA_", "RECONCILER_"))}
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "soak.py"), "--rounds", str(SM_ROUNDS), "--json",
                           "--second-memory"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) >= 2, proc.stdout + proc.stderr
    counts = json.loads(lines[-1])
    detail = f"{lines[0]}\n{json.dumps(counts)}\n{proc.stderr[-3000:]}"
    assert lines[0].startswith(f"rounds={SM_ROUNDS} duplicates=0 lost=0 final_changes=0 stale_locks=0 "), detail
    assert counts["imported"] == 0 and counts["rebuilds"] == SM_ROUNDS // 4, detail
    assert counts["rebuilt_adopted"] > 0, detail
    assert counts["not_converged"] == [] and proc.returncode == 0, detail

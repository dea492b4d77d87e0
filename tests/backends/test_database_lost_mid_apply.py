"""The state database goes away in the middle of an apply (its session ended by the server, as a
restart or a failover does), after vcita executed creates whose answers the state can no longer
record; then two runners apply again at the same time.

Held (pinned here): the first apply stops sending, names every package vcita acknowledged with the
command that records it, never shows the DSN's password; the lock ended with the session; of the
two re-runs one waits for the other's lock, the creates left pending are adopted through the
payment requests, and no client is billed twice.  Real PostgreSQL, served sandbox, the real CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sandbox_support import client_packages


def _cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "reconciler", *args, "--state-backend", "postgres"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _client_creates_pending(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            row = conn.execute("SELECT document::text FROM reconciler_state").fetchone()
        except psycopg.errors.UndefinedTable:
            return False
    return row is not None and any(p["kind"] == "ClientPackage" for p in json.loads(row[0])["pending"].values())


def test_a_state_database_lost_mid_apply_bills_nobody_twice(workdir: Path, pg_dsn: str, operator: Any,
                                                             demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_STATE_DSN", pg_dsn)
    password = dict(part.split("=", 1) for part in pg_dsn.split())["password"]
    operator("POST", "/faults", json={"path": "/platform/v1/payment/client_packages", "latency_ms": 1500})
    first = _cli("apply", "--auto-approve")
    deadline = time.monotonic() + 60
    while not _client_creates_pending(pg_dsn):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # the server ends the run's session
        ended = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                             "'reconciler' AND pid <> pg_backend_pid()").fetchall()
    assert ended
    out, err = first.communicate(timeout=120)
    said = out + err
    assert first.returncode == 1, said
    assert "Traceback" not in said and password not in said
    assert "the state could not record it" in said or "not sent: the state cannot be written" in said, said[-2000:]
    operator("DELETE", "/faults")

    again = [_cli("apply", "--auto-approve"), _cli("apply", "--auto-approve")]
    outputs = [p.communicate(timeout=120) for p in again]
    results = [(p.returncode, out, err) for p, (out, err) in zip(again, outputs, strict=True)]
    for code, out, err in results:  # one waits for the other's lock (or, on a slow machine, gives up saying so)
        assert code == 0 or (code == 1 and "locked by" in err), out + err
        assert "Traceback" not in err and password not in out + err
    assert sum("adopted" in out for _, out, _ in results) == 1, results  # the pending creates, adopted once
    final = _cli("plan", "--detailed-exitcode")
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, out + err
    sold = [(cp["client_id"], cp["package_id"]) for cp in client_packages(operator, demo)]
    assert len(sold) == 8 and len(set(sold)) == 8

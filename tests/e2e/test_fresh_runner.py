"""A fresh runner knows what an earlier run may have created (issue 14, flow 1).

An apply whose create answers are lost leaves pending creates.  GitOps runners start empty and
get only what the repository holds: the state file.  The pending records must be in it, so that
the next runner, with nothing else, neither creates those client packages again nor plans them
as plain creates.  State files of format 1 with a local journal are migrated: the journal's open
intents become pending records of the state.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
CREATE = "/platform/v1/payment/client_packages"


def test_a_fresh_runner_with_only_the_state_file_creates_nothing_twice(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any], tmp_path: Path,
        monkeypatch: Any) -> None:
    operator("POST", "/faults", json={"method": "POST", "path": CREATE, "drop_after_commit": True})
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1 and "8 unknown" in out, out + err
    assert len(client_packages(operator, demo)) == 8
    operator("DELETE", "/faults")

    state = json.loads((workdir / "manifests/.reconciler/state.json").read_text())
    assert len(state["pending"]) == 8 and state["format_version"] == 2
    assert not (workdir / "manifests/.reconciler/journal.jsonl").exists()  # nothing lives only locally

    # The next CI job: a clean checkout holding the manifests and the committed state file only.
    runner = tmp_path / "runner"
    shutil.copytree(workdir / "manifests", runner / "manifests",
                    ignore=shutil.ignore_patterns("*.lock", "*.backup", "journal.jsonl*"))
    monkeypatch.chdir(runner)
    # First on a target whose payment request list does not serve as a second memory: the state alone.
    operator("POST", "/faults", json={"path": "/business/payments/v1/payment_requests", "status": 404})
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err
    # one refused outcome per pending create (the plan printed before shows each of them too)
    refused = [line for line in out.splitlines()
               if line.startswith("client_package.") and "unknown outcome of an earlier create" in line]
    assert len(refused) == 8, out + err
    assert len(client_packages(operator, demo)) == 8  # not one created again
    code, out, err = cli("plan", "--detailed-exitcode")  # something to resolve, said by the exit code too
    assert code == 4 and out.count("reconciler import client_package.") >= 8, out + err
    # With the second memory (issue 18), the runner finds all eight through their payment requests.
    operator("DELETE", "/faults")
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert len(client_packages(operator, demo)) == 8  # adopted, not one created again
    assert json.loads((runner / "manifests/.reconciler/state.json").read_text())["pending"] == {}


def test_a_format_1_state_and_its_journal_are_migrated(workdir: Path, cli: CLI) -> None:
    folder = workdir / "manifests/.reconciler"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps(
        {"format_version": 1, "lineage": "a" * 32, "serial": 3, "target": None, "resources": {}}))
    (folder / "journal.jsonl").write_text(json.dumps(
        {"op": "open", "id": "0123456789abcdef", "address": "client_package.alice-piano", "kind": "ClientPackage",
         "request_digest": "sha256:00", "details": {"client_id": "ktsrl7f6h94run82"},
         "at": "2026-11-30T10:00:00Z"}) + "\n")
    code, out, err = cli("state", "list")
    assert code == 0 and "client_package.alice-piano" in err and "unknown outcome" in err, out + err

    code, out, err = cli("apply", "--auto-approve")  # writes the state: format 2, the intent in it
    assert code == 1, out + err
    assert "client_package.alice-piano: unknown outcome of an earlier create" in out + err
    state = json.loads((folder / "state.json").read_text())
    assert state["format_version"] == 2 and list(state["pending"]) == ["0123456789abcdef"]
    assert state["lineage"] == "a" * 32
    assert not (folder / "journal.jsonl").exists() and (folder / "journal.jsonl.migrated").exists()

    code, out, err = cli("state", "forget-intent", "alice-piano")
    assert code == 0, out + err
    assert json.loads((folder / "state.json").read_text())["pending"] == {}

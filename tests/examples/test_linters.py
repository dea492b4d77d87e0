"""The examples pass the linters their users run, and those linters have teeth here.

actionlint (with shellcheck on every ``run:`` script) and zizmor (offline, pedantic) on the
workflows, the composite action and the pre-commit files; yamllint (``.yamllint.yaml``) on the
repository's YAML; kubernetes-validate (strict, oldest and newest supported Kubernetes) on the
CronJob; shellcheck on the scripts, on the action's ``run:`` steps and on the CronJob's script;
hadolint on the Dockerfile; pre-commit's own checks on the hook files; systemd-analyze on the
units when the machine has systemd. Each linter is also shown a broken copy, so a linter that stopped
checking (shellcheck missing from actionlint's PATH, a wrong flag) fails a test.

The linters come from the ``lint`` extra (wheels that bundle their binaries). Without it the
tests skip and say so, except under CI (``CI`` set), where a missing linter is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
# Every file of a kind, so that a new example is linted without touching this module.
WORKFLOWS = sorted([*(EXAMPLES / "github-actions").glob("*.yml"), *(EXAMPLES / "github-actions").glob("*.yaml")])
ACTION = REPO / "action.yml"
CRONJOB = EXAMPLES / "kubernetes" / "cronjob.yaml"
KUBERNETES = sorted((EXAMPLES / "kubernetes").glob("*.yaml"))
PRE_COMMIT = [REPO / ".pre-commit-hooks.yaml", EXAMPLES / "pre-commit" / ".pre-commit-config.yaml"]
SCRIPTS = [EXAMPLES / "cron" / "reconciler-drift.sh", REPO / ".ci" / "run"]
K8S_VERSIONS = ("1.29.0", "1.37.0")  # backoffLimitPerIndex / FailIndex need 1.29


def tool(name: str) -> str:
    """The linter's executable: next to this Python (the venv), else on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        message = f"{name} is not installed: pip install '.[lint]'"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run every linter)")
        pytest.skip(message)
    return found


def lint(*argv: str, stdin: str | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), input=stdin, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def clean(p: subprocess.CompletedProcess[str]) -> None:
    assert p.returncode == 0, f"{p.args}\n{p.stdout}\n{p.stderr}"


# --- GitHub Actions -------------------------------------------------------------------------


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    # -shellcheck names the binary: without it on PATH, actionlint silently skips every script.
    return lint(tool("actionlint"), "-shellcheck", tool("shellcheck"), "-no-color", *map(str, files))


def zizmor(*files: Path) -> subprocess.CompletedProcess[str]:
    return lint(tool("zizmor"), "--offline", "--persona=pedantic", "--collect=all", "--no-progress", *map(str, files))


def test_workflows_pass_actionlint_and_its_shellcheck() -> None:
    assert {"plan.yml", "apply.yml", "drift.yml"} <= {f.name for f in WORKFLOWS}
    clean(actionlint(*WORKFLOWS))


def test_workflows_action_and_pre_commit_files_pass_zizmor_pedantic() -> None:
    p = zizmor(*WORKFLOWS, ACTION, *PRE_COMMIT)
    clean(p)
    assert "No findings" in p.stdout + p.stderr


def test_actionlint_and_zizmor_catch_what_the_issue_found(tmp_path: Path) -> None:
    """The findings of the first drift.yml: an exit code templated into the script (SC2242 and
    template injection), an unpinned action, the token in the job's environment."""
    bad = tmp_path / "bad.yml"
    bad.write_text("""name: bad
on: [workflow_dispatch]
permissions: {}
jobs:
  drift:
    name: drift
    runs-on: ubuntu-latest
    env:
      VCITA_STAFF_TOKEN: ${{ secrets.VCITA_STAFF_TOKEN }}
    steps:
      - uses: actions/checkout@v4
      - id: drift
        run: echo "exitcode=2" >> "$GITHUB_OUTPUT"
      - run: exit "${{ steps.drift.outputs.exitcode }}"
""")
    p = actionlint(bad)
    assert p.returncode != 0 and "SC2242" in p.stdout, p.stdout
    p = zizmor(bad)
    assert p.returncode != 0
    for finding in ("unpinned-uses", "template-injection"):
        assert finding in p.stdout + p.stderr, finding


def test_secrets_reach_only_the_steps_that_run_reconciler_against_vcita() -> None:
    for f in [*WORKFLOWS, ACTION]:
        doc = yaml.safe_load(f.read_text())
        jobs = doc["jobs"].values() if "jobs" in doc else [{"steps": doc["runs"]["steps"]}]
        for job in jobs:
            assert "secrets." not in str(job.get("env", "")), f"{f.name}: a secret in the job's environment"
            for step in job["steps"]:
                text = str(step)
                if "secrets." in text or "staff-token" in str(step.get("env", "")):
                    assert "uses" not in step, (f.name, step)
                    assert re.search(r"reconciler (plan|apply|drift)", step["run"]), (f.name, step.get("name"))
        assert "persist-credentials: false" in f.read_text() or f == ACTION


def test_every_action_is_pinned_to_a_commit() -> None:
    uses = [line.split("uses:", 1)[1].strip() for f in [*WORKFLOWS, ACTION]
            for line in f.read_text().splitlines() if line.strip().startswith(("uses:", "- uses:"))]
    assert uses
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}\s+# v\d+(\.\d+)*", ref), ref


def test_pre_commit_accepts_the_hook_manifest_and_the_example_config() -> None:
    clean(lint(tool("pre-commit"), "validate-manifest", str(PRE_COMMIT[0])))
    clean(lint(tool("pre-commit"), "validate-config", str(PRE_COMMIT[1])))


# --- YAML, Kubernetes -------------------------------------------------------------------------


def test_yaml_passes_yamllint_with_the_repository_config(tmp_path: Path) -> None:
    files = [str(EXAMPLES), str(REPO / "manifests"), *map(str, [ACTION, *PRE_COMMIT, REPO / ".yamllint.yaml"])]
    clean(lint(tool("yamllint"), "--strict", "-c", str(REPO / ".yamllint.yaml"), *files))
    bad = tmp_path / "bad.yaml"
    bad.write_text("key: value\nkey: again   \n")
    p = lint(tool("yamllint"), "--strict", "-c", str(REPO / ".yamllint.yaml"), str(bad))
    assert p.returncode != 0 and "duplication of key" in p.stdout and "trailing-spaces" in p.stdout


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_examples_pass_kubernetes_validate_strict(version: str, tmp_path: Path) -> None:
    assert CRONJOB in KUBERNETES
    clean(lint(tool("kubernetes-validate"), "--strict", "-k", version, *map(str, KUBERNETES)))
    bad = tmp_path / "bad.yaml"
    bad.write_text(CRONJOB.read_text().replace("backoffLimitPerIndex:", "backoffLimitPerIndx:"))
    assert lint(tool("kubernetes-validate"), "--strict", "-k", version, str(bad)).returncode != 0


def test_cronjob_fails_only_the_drifted_index_and_retries_errors() -> None:
    job = yaml.safe_load(CRONJOB.read_text())["spec"]["jobTemplate"]["spec"]
    assert "backoffLimit" not in job and job["backoffLimitPerIndex"] >= 1
    rules = job["podFailurePolicy"]["rules"]
    drift = next(r for r in rules if r["action"] == "FailIndex")
    assert drift["onExitCodes"] == {"containerName": "drift", "operator": "In", "values": [2]}
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"] is True
    for c in [*pod["initContainers"], *pod["containers"]]:
        assert c["securityContext"]["allowPrivilegeEscalation"] is False, c["name"]


def _pod_spec(doc: Any) -> Any:
    """The pod template of a CronJob, Job or Deployment-like document (None for other kinds)."""
    spec = (doc or {}).get("spec", {})
    spec = spec.get("jobTemplate", {}).get("spec", spec)
    return spec.get("template", {}).get("spec")


# --- shell --------------------------------------------------------------------------------------


def test_scripts_pass_shellcheck() -> None:
    clean(lint(tool("shellcheck"), *map(str, SCRIPTS)))


def test_embedded_scripts_pass_shellcheck() -> None:
    """The action's run: steps (actionlint checks only workflows) and the CronJob's script."""
    steps = yaml.safe_load(ACTION.read_text())["runs"]["steps"]
    scripts = [(s["run"], s["shell"]) for s in steps if "run" in s]
    assert len(scripts) >= 3
    for f in KUBERNETES:
        for doc in yaml.safe_load_all(f.read_text()):
            pod = _pod_spec(doc)
            for c in [*pod.get("initContainers", []), *pod.get("containers", [])] if pod else []:
                if c.get("command", [])[:2] in (["/bin/sh", "-c"], ["sh", "-c"]):
                    scripts.append((c["args"][0], "sh"))
    assert len(scripts) >= 4
    for script, shell in scripts:
        assert "${{" not in script, "an expression in a script: pass it through env:"
        clean(lint(tool("shellcheck"), "-s", shell, "-", stdin=script))
    p = lint(tool("shellcheck"), "-s", "sh", "-", stdin='cd $1\nexit "two"\n')
    assert p.returncode != 0 and "SC2086" in p.stdout


def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd-analyze is no PyPI wheel: used when the machine has systemd, skipped otherwise."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (it comes with systemd, not from PyPI)")
    cron = EXAMPLES / "cron"
    service = (cron / "reconciler-drift.service").read_text()
    # verify wants ExecStart to exist: point it at this checkout's script instead of /srv/...
    service = re.sub(r"(?m)^ExecStart=.*$", f"ExecStart={cron / 'reconciler-drift.sh'}", service)
    (tmp_path / "reconciler-drift.service").write_text(service)
    shutil.copy(cron / "reconciler-drift.timer", tmp_path)
    units = ["./reconciler-drift.service", "./reconciler-drift.timer"]
    p = lint(analyze, "verify", "--man=no", *units, cwd=tmp_path)
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr  # warnings too
    (tmp_path / "reconciler-drift.timer").write_text((cron / "reconciler-drift.timer").read_text()
                                                     .replace("OnCalendar=", "OnCalender="))
    p = lint(analyze, "verify", "--man=no", *units, cwd=tmp_path)
    assert "Unknown key 'OnCalender'" in p.stdout + p.stderr


# --- Dockerfile -----------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint_and_runs_as_non_root(tmp_path: Path) -> None:
    dockerfile = REPO / "Dockerfile"
    clean(lint(tool("hadolint"), "--no-color", str(dockerfile)))
    lines = [line.strip() for line in dockerfile.read_text().splitlines()]
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1] == "USER 10001:10001"
    run_as = yaml.safe_load(CRONJOB.read_text())["spec"]["jobTemplate"]["spec"]["template"]["spec"]["securityContext"]
    assert run_as["runAsUser"] == 10001
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install reconciler\nUSER root\n")
    p = lint(tool("hadolint"), "--no-color", str(bad))
    assert p.returncode != 0 and "DL3007" in p.stdout and "DL3002" in p.stdout


def test_dockerfile_builds_when_a_builder_is_available(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None or lint(docker, "info").returncode != 0:
        pytest.skip("no container builder here (no docker daemon): the Dockerfile is linted by hadolint instead")
    tag = "reconciler-test:latest"
    clean(lint(docker, "build", "-t", tag, "."))
    p = lint(docker, "run", "--rm", tag, "--version")
    assert p.returncode == 0 and p.stdout.startswith("reconciler, version")
    p = lint(docker, "run", "--rm", "--entrypoint", "id", tag, "-u")
    assert p.stdout.strip() == "10001"


def test_license_matches_pyproject() -> None:
    import tomllib

    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert meta["license"] == {"text": "MIT"}
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text
    assert "LICENSE" in (REPO / ".dockerignore").read_text()

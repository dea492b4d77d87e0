"""The GitOps examples work: every file parses, and their ``reconciler`` steps run against the
served sandbox (in a shell, as CI would run them), with the environment a CI secret store gives."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from reconciler.drift.render import MARKER as DRIFT_MARKER
from reconciler.render.apply_md import MARKER as APPLY_MARKER
from reconciler.render.markdown import MARKER as PLAN_MARKER

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
WORKFLOWS = EXAMPLES / "github-actions"


def reconciler_lines(script: str) -> list[str]:
    """The lines of a shell script that call reconciler."""
    return [line.strip() for line in script.splitlines() if line.strip().startswith("reconciler ")]


def workflow_steps(path: Path) -> list[str]:
    doc = yaml.safe_load(path.read_text())
    return [line for job in doc["jobs"].values() for step in job["steps"] for line in reconciler_lines(step.get("run", ""))]


@pytest.fixture
def shell(tmp_path: Path, sandbox: Any, demo: dict[str, Any]) -> Any:
    """Runs a shell command in ``tmp_path/work`` (a copy of the demo manifests) with the sandbox's
    VCITA_* variables and a ``reconciler`` on PATH; returns (exit code, stdout, stderr)."""
    work = tmp_path / "work"
    shutil.copytree(REPO / "manifests", work / "manifests")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "reconciler"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m reconciler "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VCITA_", "RECONCILER_"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", VCITA_GATEWAY_URL=sandbox.gateway_url,
               VCITA_FALLBACK_URL=sandbox.fallback_url, VCITA_BUSINESS_ID=demo["business"]["id"],
               VCITA_STAFF_TOKEN=demo["tokens"]["staff"])

    def run(command: str, extra: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> tuple[int, str, str]:
        e = {k: v for k, v in {**env, **(extra or {})}.items() if k not in drop}
        p = subprocess.run(["bash", "-c", command], cwd=work, env=e, capture_output=True, text=True, timeout=60, check=False)
        assert demo["tokens"]["staff"] not in p.stdout + p.stderr  # nothing prints a token
        return p.returncode, p.stdout, p.stderr

    run.work = work  # type: ignore[attr-defined]
    run.env = env  # type: ignore[attr-defined]
    return run


def test_every_example_file_parses() -> None:
    files = [*EXAMPLES.rglob("*.yml"), *EXAMPLES.rglob("*.yaml"), REPO / ".pre-commit-hooks.yaml"]
    assert len(files) == 8
    for f in files:
        assert list(yaml.safe_load_all(f.read_text())), f
    import tomllib

    for f in EXAMPLES.rglob("*.toml"):
        assert tomllib.loads(f.read_text()), f
    for unit in ("reconciler-drift.service", "reconciler-drift.timer"):
        parser = configparser.ConfigParser(strict=True)
        parser.read_string((EXAMPLES / "cron" / unit).read_text())
    for folder in ("github-actions", "cron", "kubernetes", "pre-commit", "fleet"):
        assert (EXAMPLES / folder / "README.md").is_file()


def test_workflows_keep_secrets_in_env_and_never_print_them() -> None:
    for f in WORKFLOWS.glob("*.yml"):
        text = f.read_text()
        for line in text.splitlines():
            if "secrets." in line:
                assert re.match(r"\s+(VCITA_[A-Z_]+|RECONCILER_STATE_DSN): \$\{\{ secrets\.[A-Z_]+ \}\}$", line), \
                    (f.name, line)
        assert "set -x" not in text and "echo $VCITA" not in text and "${VCITA_STAFF_TOKEN" not in text


def test_plan_then_apply_exactly_that_plan_then_drift(shell: Any, sandbox: Any, demo: dict[str, Any]) -> None:
    summary = shell.work / "step-summary.md"
    ci = {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(shell.work / "github-output")}
    plan_steps = workflow_steps(WORKFLOWS / "plan.yml")
    assert [s.split()[1] for s in plan_steps] == ["validate", "plan", "show"]
    code, out, err = shell(plan_steps[0])
    assert code == 0, err
    code, out, err = shell(plan_steps[1])
    assert code == 2, err  # changes to review (--detailed-exitcode)
    md = (shell.work / "plan.md").read_text()
    assert md.startswith(PLAN_MARKER) and "11 to create" in md
    assert PLAN_MARKER in (WORKFLOWS / "plan.yml").read_text()  # the comment is found again by it
    assert json.loads((shell.work / "plan.json").read_text())["format_version"] == 2
    code, _, err = shell(plan_steps[2], ci)  # the job summary, from the saved plan
    assert code == 0 and summary.read_text() == md.split("\n", 1)[1], err

    apply_steps = workflow_steps(WORKFLOWS / "apply.yml")
    assert apply_steps == ["reconciler apply plan.json manifests --format markdown > apply.md"]
    code, out, err = shell(apply_steps[0])
    assert code == 0, out + err
    report = (shell.work / "apply.md").read_text()
    assert report.startswith(APPLY_MARKER) and "**Apply complete: 11 done, 0 failed.**" in report
    assert "**Payment requests opened: 8**" in report and "Verified: a fresh plan shows no changes." in report
    assert "client_package.alice-piano: created" in err  # the run's log, apart from the report
    apply_yml = (WORKFLOWS / "apply.yml").read_text()
    assert APPLY_MARKER in apply_yml and "issue_number: Number(process.env.PR)" in apply_yml
    assert (shell.work / "manifests" / ".reconciler" / "state.json").is_file()
    assert "git add -f manifests/.reconciler/state.json" in apply_yml

    drift_steps = workflow_steps(WORKFLOWS / "drift.yml")
    assert drift_steps == ["reconciler drift manifests --format markdown --out drift.json > drift.md",
                           "reconciler drift manifests --write-back --format markdown > write-back.md"]
    code, _, err = shell(drift_steps[0])
    assert code == 0, err  # the workflow closes the drift issue on exactly this code
    state = json.loads((shell.work / "manifests" / ".reconciler" / "state.json").read_text())
    pid = state["resources"]["catalog_package.piano-10"]["id"]
    httpx.patch(f"{sandbox.operator_url}/objects/packages/{pid}", json={"price": "600.0"}).raise_for_status()
    code, _, _ = shell(drift_steps[0])
    assert code == 2  # the workflow opens the issue and fails on exactly this code
    drift_md = (shell.work / "drift.md").read_text()
    assert drift_md.startswith(DRIFT_MARKER) and "| `catalog_package.piano-10` | `price` | 540 | 600 | 540 |" in drift_md
    assert json.loads((shell.work / "drift.json").read_text())["exit_code"] == 2
    drift_yml = yaml.safe_load((WORKFLOWS / "drift.yml").read_text())
    steps = {s.get("name"): s for job in drift_yml["jobs"].values() for s in job["steps"]}
    assert steps["Open or update the drift issue"]["if"] == "steps.drift.outputs.exitcode == '2'"
    assert steps["Close the drift issue once in sync"]["if"] == "steps.drift.outputs.exitcode == '0'"
    assert drift_yml["jobs"]["write-back"]["if"] == "needs.drift.outputs.exitcode == '2' && inputs.write-back"
    # the write-back job: vcita's value into the manifest (what its pull request carries), then in sync
    code, _, err = shell(drift_steps[1])
    assert code == 0, err
    assert "price: 600" in (shell.work / "manifests" / "catalog-packages.yaml").read_text()
    assert "catalog_package.piano-10" in (shell.work / "write-back.md").read_text()
    code, _, err = shell(drift_steps[0])
    assert code == 0, err  # in sync: the next scheduled run closes the issue


def test_cron_script_reads_its_env_file(shell: Any, sandbox: Any) -> None:
    script = EXAMPLES / "cron" / "reconciler-drift.sh"
    env_file = shell.work / "vcita.env"
    env_file.write_text("".join(f"{k}={shell.env[k]}\n" for k in (
        "VCITA_GATEWAY_URL", "VCITA_FALLBACK_URL", "VCITA_BUSINESS_ID", "VCITA_STAFF_TOKEN")))
    env_file.chmod(0o600)
    extra = {"RECONCILER_REPO": str(shell.work), "RECONCILER_ENV": str(env_file)}
    only_file = ("VCITA_GATEWAY_URL", "VCITA_FALLBACK_URL", "VCITA_BUSINESS_ID", "VCITA_STAFF_TOKEN")
    code, out, err = shell(f"sh {script}", extra, drop=only_file)
    assert code == 3, out + err  # nothing applied yet: pending only, which cron/systemd treat as success
    assert shell("reconciler apply --auto-approve manifests")[0] == 0
    code, out, err = shell(f"sh {script}", extra, drop=only_file)
    assert code == 0 and "In sync" in out, out + err
    service = configparser.ConfigParser()
    service.read_string((EXAMPLES / "cron" / "reconciler-drift.service").read_text())
    assert service["Service"]["ExecStart"].endswith("examples/cron/reconciler-drift.sh")
    assert service["Service"]["SuccessExitStatus"] == "3"
    assert "examples/cron/reconciler-drift.sh" in (EXAMPLES / "cron" / "crontab").read_text()
    assert os.access(script, os.X_OK)


def test_pre_commit_hook_validates_the_manifests(shell: Any) -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "reconciler-validate")
    assert re.search(hook["files"], "manifests/catalog-packages.yaml") and hook["pass_filenames"] is False
    command = " ".join([hook["entry"], *hook.get("args", [])])
    code, out, _ = shell(command)
    assert code == 0 and "valid" in out
    broken = shell.work / "manifests" / "catalog-packages.yaml"
    broken.write_text(broken.read_text().replace("price: 540", "price: '540'"))
    code, _, err = shell(command)
    assert code == 1 and "catalog-packages.yaml:" in err
    config = yaml.safe_load((EXAMPLES / "pre-commit" / ".pre-commit-config.yaml").read_text())
    assert config["repos"][0]["hooks"][0]["id"] == hook["id"]


def test_apply_workflow_with_the_state_in_postgres(shell: Any, pg_dsn: str) -> None:
    steps = workflow_steps(WORKFLOWS / "apply-postgres.yml")
    assert steps == ["reconciler apply plan.json manifests --state-backend postgres"]
    doc = yaml.safe_load((WORKFLOWS / "apply-postgres.yml").read_text())
    apply_step = next(s for s in doc["jobs"]["apply"]["steps"] if s.get("name") == "Apply the saved plan")
    assert apply_step["env"]["RECONCILER_STATE_DSN"] == "${{ secrets.RECONCILER_STATE_DSN }}"  # that step only
    dsn = {"RECONCILER_STATE_DSN": pg_dsn}
    code, out, err = shell("reconciler plan --out plan.json --state-backend postgres manifests", dsn)
    assert code == 0, out + err
    code, out, err = shell(steps[0], dsn)
    assert code == 0 and "Apply complete: 11 done" in out, out + err
    assert not (shell.work / "manifests" / ".reconciler" / "state.json").exists()  # nothing to commit
    code, out, err = shell("reconciler plan --detailed-exitcode --state-backend postgres manifests", dsn)
    assert code == 0, out + err
    assert pg_dsn not in out + err


def _k8s_env(container: dict[str, Any], dsn: str) -> dict[str, str]:
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs == {"RECONCILER_STATE_DSN": {"name": "reconciler-state", "key": "dsn"}}  # the DSN from a Secret
    return {**env, "RECONCILER_STATE_DSN": dsn}


def test_kubernetes_cronjob_shards_cover_every_business_once(shell: Any, sandbox: Any, pg_dsn: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.cli import run

    doc = yaml.safe_load((EXAMPLES / "kubernetes" / "cronjob.yaml").read_text())
    job = doc["spec"]["jobTemplate"]["spec"]
    container = job["template"]["spec"]["containers"][0]
    env = _k8s_env(container, pg_dsn)
    assert job["completionMode"] == "Indexed" and job["completions"] == job["parallelism"] == int(env["SHARDS"])
    script = container["args"][0]
    assert reconciler_lines(script)[0].startswith("reconciler drift --all --shard")

    names = ["north", "south", "east", "west", "centre"]
    root = shell.work / "manifests"
    shutil.rmtree(root)
    for name in names:  # a fleet: one sandbox business per folder, adopted with export
        b = httpx.post(f"{sandbox.operator_url}/businesses", json={"name": name, "services": 1}).json()
        httpx.post(f"{sandbox.operator_url}/bulk/packages", json={"business_id": b["business_id"], "count": 2})
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "target.toml").write_text(
            f'gateway_url = "{sandbox.gateway_url}"\nfallback_url = "{sandbox.fallback_url}"\n'
            f'business_id = "{b["business_id"]}"\ntoken_file = "../../token-{name}"\n')
        (shell.work / f"token-{name}").write_text(b["staff_token"])
        with monkeypatch.context() as m:  # adopt it in-process (faster than a shell per business)
            m.chdir(shell.work)
            for k in ("VCITA_GATEWAY_URL", "VCITA_FALLBACK_URL"):
                m.setenv(k, shell.env[k])
            m.setenv("VCITA_BUSINESS_ID", b["business_id"])
            m.setenv("VCITA_STAFF_TOKEN", b["staff_token"])
            assert run(["export", "--out", f"manifests/{name}"]) == 0
            m.setenv("RECONCILER_STATE_DSN", pg_dsn)  # onboarding: the state into the database
            m.delenv("VCITA_BUSINESS_ID")
            m.delenv("VCITA_STAFF_TOKEN")
            for k in ("VCITA_GATEWAY_URL", "VCITA_FALLBACK_URL"):
                m.delenv(k)
            assert run(["state", "push", "--manifests", f"manifests/{name}", "--state-backend", "postgres"]) == 0
            shutil.rmtree(folder / ".reconciler")
    reports = shell.work / "reports"
    reports.mkdir()
    seen: list[str] = []
    for index in range(int(env["SHARDS"])):
        code, out, err = shell(script, {**env, "REPORT_DIR": str(reports), "JOB_COMPLETION_INDEX": str(index)})
        assert code == 0, out + err
        seen += [b["business"] for b in json.loads(out)["businesses"]]
    assert sorted(seen) == sorted(names)

    # the nightly fleet apply: every index applies its shard, from the same database
    doc = yaml.safe_load((EXAMPLES / "kubernetes" / "fleet-apply.yaml").read_text())
    job = doc["spec"]["jobTemplate"]["spec"]
    container = job["template"]["spec"]["containers"][0]
    env = _k8s_env(container, pg_dsn)
    assert job["completionMode"] == "Indexed" and job["completions"] == job["parallelism"] == int(env["SHARDS"])
    script = container["args"][0]
    assert reconciler_lines(script)[0].startswith("reconciler apply --all --auto-approve --shard")
    for name in names[:2]:  # two businesses get a new price
        f = next((root / name).glob("*.yaml"))
        text, n = re.subn(r"(?m)^(\s*)price: \d+(\.\d+)?$", r"\g<1>price: 77", f.read_text())
        assert n == 1
        f.write_text(text)
    applied: list[str] = []
    for index in range(int(env["SHARDS"])):
        code, out, err = shell(script, {**env, "JOB_COMPLETION_INDEX": str(index)})
        assert code == 0, out + err
        applied += [line.split()[0] for line in out.splitlines() if " applied " in f" {line} "]
    assert sorted(applied) == sorted(names[:2])
    assert not any((root / n / ".reconciler" / "state.json").exists() for n in names)


def test_pre_commit_hook_runs_for_a_folder_named_in_args() -> None:
    """The hook used to match only ^manifests/: with args naming another folder it never ran."""
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "reconciler-validate")
    for staged in ("infra/manifests/catalog.yaml", "manifests/a.yml", "deep/x/client-packages.yaml"):
        assert re.search(hook["files"], staged), staged
    assert not re.search(hook["files"], "README.md")


def _action_inputs(**given: str) -> dict[str, str]:
    declared = yaml.safe_load((REPO / "action.yml").read_text())["inputs"]
    return {name: given.get(name.replace("-", "_"), str(spec.get("default", ""))) for name, spec in declared.items()}


def _run_action_steps(shell: Any, inputs: dict[str, str], job_env: dict[str, str]) -> dict[str, str]:
    """Runs the composite action's shell steps as the runner would (expressions resolved into
    each step's env:, GITHUB_OUTPUT a file), skipping its install step; returns the outputs."""
    action = yaml.safe_load((REPO / "action.yml").read_text())
    out_file = shell.work / "github_output"
    out_file.write_text("")
    outputs: dict[str, str] = {}

    def resolve(value: str) -> str:
        value = value.replace("${{ github.action_path }}", str(REPO))
        return re.sub(r"\$\{\{ inputs\.([\w-]+) \}\}", lambda m: inputs[m.group(1)], value)

    for step in action["runs"]["steps"]:
        if "run" not in step or step.get("name") == "Install reconciler":
            continue
        if "if" in step and "steps.plan.outputs.exitcode == '1'" in step["if"] and outputs.get("exitcode") != "1":
            continue
        if "if" in step and "steps.plan.outputs.exitcode != '1'" in step["if"] and outputs.get("exitcode") == "1":
            continue
        env = {**job_env, **{k: resolve(str(v)) for k, v in step.get("env", {}).items()}, "GITHUB_OUTPUT": str(out_file),
               "GITHUB_STEP_SUMMARY": str(shell.work / "step-summary.md")}
        code, out, err = shell(step["run"], env, drop=tuple(k for k in ("VCITA_STAFF_TOKEN",) if k not in env))
        if step.get("name") == "Fail on a plan error":
            outputs["failed"] = str(code != 0).lower()
            continue
        assert code == 0, (step.get("name"), out, err)
        outputs.update(line.split("=", 1) for line in out_file.read_text().splitlines() if "=" in line)
    return outputs


def test_composite_action_plans_with_its_inputs_or_the_jobs_environment(shell: Any, demo: dict[str, Any]) -> None:
    token = demo["tokens"]["staff"]
    # The token given as an input, not in the job's environment:
    outputs = _run_action_steps(shell, _action_inputs(staff_token=token), {"VCITA_STAFF_TOKEN": ""})
    assert outputs["exitcode"] == "2" and "failed" not in outputs
    md = (shell.work / "plan.md").read_text()
    assert md.startswith(PLAN_MARKER) and "11 to create" in md
    assert (shell.work / "step-summary.md").read_text() == md.split("\n", 1)[1]  # the job summary
    from reconciler.plan.document import check_format_version

    assert check_format_version(json.loads((shell.work / "plan.json").read_text())) is None  # a plan apply reads
    # Inputs left empty keep what the job's environment holds:
    outputs = _run_action_steps(shell, _action_inputs(), {"VCITA_STAFF_TOKEN": token})
    assert outputs["exitcode"] == "2"
    # No token anywhere: an error the action reports (exit code 1), never a silent sandbox.
    outputs = _run_action_steps(shell, _action_inputs(), {"VCITA_STAFF_TOKEN": ""})
    assert outputs["exitcode"] == "1" and outputs["failed"] == "true"
    assert "VCITA_STAFF_TOKEN" in (shell.work / "plan.err").read_text()

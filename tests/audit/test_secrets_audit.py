"""Secrets audit: canary tokens never appear in any output, log or file the tool writes.

A business is made in the served sandbox whose staff token *is* the canary (the sandbox derives a
business's token from its id, ``sbx_staff_<id>``, and lets the operator choose the id), and one
of its own directory whose token is the second canary.  Then every command runs, in every output
format, at the most verbose log level (``-vv``): the happy path, a saved plan,
a lost answer (unknown outcome, pending create), import, forget-intent, drift, export, a stale
lock, ``--debug`` tracebacks, a wrong token and a token read from a file.  No canary may appear in
stdout, stderr or in any file under the working folder; the state (with its pending creates), its backup and
saved plans are created with mode 0600.

Most runs are in this process (``reconciler.cli.run``, the console script's own entry point, with
the environment and working folder of a fresh run; the secrets registry emptied first, as a new
process has it, so that a run cannot be masked by what an earlier run registered); their log
records are audited with their output.  A few run as fresh processes, as a user runs them (the
log handler on the real stderr, tracebacks under ``--debug``): marked ``fresh=True``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.cli import run
from reconciler.core import safetext

HERE = Path(__file__).resolve().parent


@contextlib.contextmanager
def _logging_restored() -> Iterator[None]:
    """The root logger as it was: ``-vv`` sets its level and filters its handlers for the life of
    a process; in this one, the tests that follow must not run at DEBUG."""
    root = logging.getLogger()
    level, handlers = root.level, {h: list(h.filters) for h in root.handlers}
    try:
        yield
    finally:
        root.setLevel(level)
        for h in root.handlers[:]:
            if h in handlers:
                h.filters[:] = handlers[h]
            else:
                root.removeHandler(h)


class Runner:
    """Runs ``reconciler -vv ARGS`` in ``work`` with ``env`` (in this process, or a fresh one);
    keeps each run's output (stdout, stderr and, in process, its log records) for the audit."""

    def __init__(self, work: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
        self.work, self.env = work, env
        self.monkeypatch, self.capsys, self.caplog = monkeypatch, capsys, caplog
        self.outputs: list[tuple[list[str], int, str]] = []
        self.registered = set(safetext._secrets)

    def __call__(self, *args: str, env_: dict[str, str] | None = None, fresh: bool = False) -> tuple[int, str]:
        env = env_ or self.env
        if fresh:
            proc = subprocess.run([sys.executable, "-m", "reconciler", "-vv", *args], cwd=self.work, env=env,
                                  capture_output=True, text=True, timeout=120)
            code, both = proc.returncode, proc.stdout + "\n" + proc.stderr
        else:
            with self.monkeypatch.context() as m:
                for key in [k for k in os.environ if k not in env]:
                    m.delenv(key)
                for key, value in env.items():
                    m.setenv(key, value)
                m.chdir(self.work)
                safetext._secrets.clear()  # as a new process starts
                self.capsys.readouterr()
                self.caplog.clear()
                with _logging_restored():
                    code = run(["-vv", *args])
                out, err = self.capsys.readouterr()
                both = out + "\n" + err + "\n" + self.caplog.text
        self.outputs.append((list(args), code, both))
        return code, both

    def restore(self) -> None:
        safetext._secrets.clear()
        safetext._secrets.update(self.registered)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
           caplog: pytest.LogCaptureFixture) -> Iterator[Any]:
    made: list[Runner] = []

    def make(work: Path, env: dict[str, str]) -> Runner:
        made.append(Runner(work, env, monkeypatch, capsys, caplog))
        return made[-1]

    yield make
    for r in made:
        r.restore()


@pytest.fixture
def canary_business(sandbox: Any) -> dict[str, Any]:
    business_id = "cnry" + secrets.token_hex(6)  # 16 characters, like a vcita uid
    made = httpx.post(sandbox.operator_url + "/businesses", timeout=10, json={
        "name": "Canary Studio", "id": business_id, "services": 2, "clients": 3, "products": 1,
        "directory": True}).json()
    assert made["staff_token"] == f"sbx_staff_{business_id}", made
    return made


def write_manifests(folder: Path, b: dict[str, Any], *, price: int = 100) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    s1, s2 = (s["id"] for s in b["services"])
    c1, c2, c3 = (c["id"] for c in b["clients"])
    (folder / "catalog.yaml").write_text(f"""apiVersion: reconciler/v1
kind: CatalogPackage
metadata:
  name: lessons
spec:
  name: Canary Lessons
  price: {price}
  currency: USD
  expiration: 6
  expiration_unit: M
  items:
    - total_bookings: 10
      services: [{s1}, {s2}]
  products: []
""")
    (folder / "clients.yaml").write_text(f"""apiVersion: reconciler/v1
kind: ClientPackage
metadata:
  name: first
spec:
  client: {c1}
  package: lessons
---
apiVersion: reconciler/v1
kind: ClientPackage
metadata:
  name: second
spec:
  client: {{email: {b['clients'][1]['email']}}}
  package: lessons
  booking_credits:
    - services: [{s1}, {s2}]
      total_bookings: 12
---
apiVersion: reconciler/v1
kind: ClientPackage
metadata:
  name: third
spec:
  client: {c3}
  package: lessons
""")
    del c2


def test_canary_tokens_never_leak(tmp_path: Path, sandbox: Any, canary_business: dict[str, Any],
                                  runner: Any) -> None:
    b = canary_business
    canaries = [b["staff_token"], b["directory_token"]]
    wrong = "canary-wrong-" + secrets.token_hex(12)
    file_token = tmp_path / "token.txt"
    file_token.write_text(b["staff_token"] + "\n")
    os.chmod(file_token, 0o600)
    work = tmp_path / "work"
    write_manifests(work / "manifests", b)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("VCITA_", "RECONCILER_"))}
    env = {**base_env, "VCITA_GATEWAY_URL": sandbox.gateway_url, "VCITA_FALLBACK_URL": sandbox.fallback_url,
           "VCITA_BUSINESS_ID": b["business_id"], "VCITA_STAFF_TOKEN": b["staff_token"],
           "VCITA_DIRECTORY_TOKEN": b["directory_token"], "RECONCILER_RETRY_BACKOFF_SECONDS": "0.01"}
    rc = runner(work, env)
    outputs = rc.outputs

    def op(method: str, path: str, body: Any = None) -> Any:
        r = httpx.request(method, sandbox.operator_url + path, json=body, timeout=10)
        r.raise_for_status()
        return r.json()

    # manifests and schema
    rc("validate")
    rc("validate", "--format", "json")
    rc("schema")
    # plans in every format, saved, applied
    for fmt in ("text", "markdown", "json"):
        rc("plan", "--format", fmt, "--rate", "1000")
    assert rc("plan", "--out", "plan.json", "--rate", "1000")[0] == 0
    code, text = rc("apply", "plan.json", "--rate", "1000", fresh=True)
    assert code == 0, text
    rc("apply", "plan.json")  # refused: applies once
    # an edit applied as a json event stream; then drift in every format
    write_manifests(work / "manifests", b, price=120)
    assert rc("apply", "--auto-approve", "--format", "json", "--rate", "1000")[0] == 0
    state = json.loads((work / "manifests/.reconciler/state.json").read_text())
    pkg_id = state["resources"]["catalog_package.lessons"]["id"]
    op("PATCH", f"/objects/packages/{pkg_id}", {"description": "edited in vcita"})
    for fmt in ("text", "markdown", "json"):
        rc("drift", "--format", fmt, "--rate", "1000")
    rc("drift", "--out", "drift.json", "--rate", "1000")
    rc("export", "--out", "exported", "--rate", "1000")
    # doctor in both formats; the list refusing staff tokens, so the directory token is sent
    for fmt in ("text", "json"):
        assert rc("doctor", "--format", fmt, "--rate", "1000")[0] == 0
    op("PUT", "/settings", {"list_refuses_staff": ["fallback"]})
    assert rc("plan", "--rate", "1000")[0] == 0
    assert rc("doctor", "--rate", "1000")[0] == 0
    op("PUT", "/settings", {"list_refuses_staff": []})
    # state commands, import
    rc("state", "list")
    rc("state", "show", "client_package.first")
    first_id = state["resources"]["client_package.first"]["id"]
    assert rc("state", "rm", "client_package.first", "--yes")[0] == 0
    assert rc("import", "client_package.first", first_id, "--rate", "1000")[0] == 0
    # a lost answer: unknown outcome, a pending create in the state, forget-intent
    (work / "manifests" / "more.yaml").write_text(
        f"apiVersion: reconciler/v1\nkind: ClientPackage\nmetadata:\n  name: fourth\nspec:\n"
        f"  client: {b['clients'][1]['id']}\n  package: lessons\n  repeat_purchase: true\n")  # as 'second'"
    op("POST", "/faults", {"method": "POST", "path": "/platform/v1/payment/client_packages",
                           "drop_after_commit": True, "times": 1})
    assert rc("apply", "--auto-approve", "--rate", "1000", fresh=True)[0] == 1
    rc("state", "list")
    # (the second memory would adopt it: a list that refuses keeps the outcome unknown, for forget-intent)
    op("POST", "/faults", {"path": "/business/payments/v1/payment_requests", "status": 404})
    rc("apply", "--auto-approve", "--rate", "1000")  # refused: unknown outcome of an earlier create
    assert rc("state", "forget-intent", "fourth", "--force")[0] == 0  # just recorded: --force
    op("DELETE", "/faults")
    # a stale lock (a killed run), then unlock
    lock = work / "manifests/.reconciler/state.lock"
    lock.write_text(json.dumps({"id": "0badc0de", "pid": 999_999_999, "host": "elsewhere", "user": "x",
                                "operation": "apply", "created_at": "2026-01-01T00:00:00Z"}))
    rc("apply", "--auto-approve")
    rc("state", "unlock", "0badc0de")
    # error paths: a wrong token, with and without --debug; a token from a file; a server error
    bad = {**env, "VCITA_STAFF_TOKEN": wrong, "VCITA_DIRECTORY_TOKEN": wrong}
    for args in (["plan"], ["--debug", "plan"], ["apply", "--auto-approve"], ["drift"], ["--debug", "drift"],
                 ["import", "client_package.first", first_id], ["export", "--out", "exported2"], ["doctor"],
                 ["doctor", "--format", "json"]):
        code, text = rc(*args, "--rate", "1000", env_=bad, fresh=args == ["--debug", "plan"])
        assert code == 1, text
    no_token = {k: v for k, v in env.items() if k not in ("VCITA_STAFF_TOKEN", "VCITA_DIRECTORY_TOKEN")}
    # (exit 1: 'fourth' was created by the lost answer and its intent forgotten; the second memory
    # finds it and refuses to sell that repeat again)
    assert rc("plan", "--token-file", str(file_token), "--rate", "1000", env_=no_token, fresh=True)[0] == 1
    op("POST", "/faults", {"path": "*", "status": 500})
    rc("--debug", "plan", "--rate", "1000", fresh=True)
    rc("apply", "--auto-approve", "--rate", "1000")
    op("DELETE", "/faults")

    # the audit
    leaks = [(args, canary) for args, _, text in outputs for canary in [*canaries, wrong] if canary in text]
    assert not leaks, f"tokens in the output of: {leaks}"
    assert any("DEBUG" in text for _, _, text in outputs), "no -vv log output was produced"
    assert sum(1 for _ in outputs) > 40, "the audit ran fewer commands than it lists"
    files = [p for p in work.rglob("*") if p.is_file()]
    assert len(files) > 8, files
    for p in files:
        data = p.read_bytes()
        for canary in [*canaries, wrong]:
            assert canary.encode() not in data, f"{canary[:14]}... found in {p}"
    private = [work / "manifests/.reconciler/state.json", work / "manifests/.reconciler/state.json.backup",
               work / "plan.json", work / "exported/.reconciler/state.json"]
    for p in private:
        assert p.exists(), p
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == 0o600, f"{p} has mode {oct(mode)}"


def test_state_dsn_and_its_password_never_leak(tmp_path: Path, sandbox: Any, canary_business: dict[str, Any],
                                               pg_server: Any, runner: Any) -> None:
    """The postgres backend's DSN (its password a canary) in every command, at -vv, on the
    happy path and on every error path (wrong password, unreachable, TLS required, a held lock,
    --debug): neither the DSN nor its password appears in any output or file."""
    b = canary_business
    password = "canary-pg-" + secrets.token_hex(12)
    wrong = "canary-pgwrong-" + secrets.token_hex(12)
    role = "audit_" + secrets.token_hex(4)
    from psycopg import sql

    pg_server.admin(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
    pg_server.admin(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(role), sql.Identifier(role)))
    pg_server.admin(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(role)), dbname=role)
    dsn = pg_server.dsn(role, user=role, password=password)
    url = f"postgresql://{role}:{password}@127.0.0.1:{pg_server.port}/{role}"
    work = tmp_path / "work"
    write_manifests(work / "manifests", b)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("VCITA_", "RECONCILER_"))}
    env = {**base_env, "VCITA_GATEWAY_URL": sandbox.gateway_url, "VCITA_FALLBACK_URL": sandbox.fallback_url,
           "VCITA_BUSINESS_ID": b["business_id"], "VCITA_STAFF_TOKEN": b["staff_token"],
           "RECONCILER_STATE_DSN": dsn, "TEAM_DSN": url, "RECONCILER_RETRY_BACKOFF_SECONDS": "0.01"}
    (work / "reconciler.toml").write_text('state = "postgres"\n')
    rc = runner(work, env)
    outputs = rc.outputs

    assert rc("plan", "--out", "plan.json", "--rate", "1000", fresh=True)[0] == 0
    assert rc("apply", "plan.json", "--rate", "1000", fresh=True)[0] == 0
    assert rc("plan", "--format", "json", "--state-dsn-env", "TEAM_DSN")[0] == 0
    for args in (("state", "list"), ("state", "show", "client_package.first"), ("state", "businesses"),
                 ("state", "pull"), ("state", "push"), ("--debug", "drift")):
        code, text = rc(*args)
        assert code == 0, (args, text)
    # a held lock (held by this process): an apply meets it, and unlock refuses to break it
    from reconciler.remote.target import Secret
    from reconciler.state.backends.postgres import PostgresStateStore
    from reconciler.state.store import TargetRef

    holder = PostgresStateStore(Secret(dsn), TargetRef(gateway_url=sandbox.gateway_url, business_id=b["business_id"]))
    with holder.lock("audit"):
        assert rc("--debug", "apply", "--auto-approve", fresh=True)[0] == 1
        assert rc("state", "unlock", "00000000")[0] == 1
    bad_password = {**env, "RECONCILER_STATE_DSN": dsn.replace(password, wrong)}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    unreachable = {**env, "RECONCILER_STATE_DSN": dsn.replace(f"port={pg_server.port}", f"port={closed}")}
    tls = {**env, "RECONCILER_STATE_DSN": dsn + " sslmode=require"}
    url_wrong = {**env, "RECONCILER_STATE_DSN": url.replace(password, wrong)}
    for bad in (bad_password, unreachable, tls, url_wrong):
        for args in (["plan"], ["--debug", "apply", "--auto-approve"]):
            code, text = rc(*args, env_=bad, fresh=bad is bad_password and args[0] == "--debug")
            assert code == 1, (args, text)
    leaks = [(args, c) for args, _, text in outputs for c in (password, wrong, dsn, url) if c in text]
    assert not leaks, f"the DSN or its password in the output of: {leaks}"
    for p in (p for p in work.rglob("*") if p.is_file()):
        for c in (password, wrong):
            assert c.encode() not in p.read_bytes(), f"{c[:14]}... found in {p}"

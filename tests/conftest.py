"""Fixtures shared by every test folder: the sandbox (served on loopback, or in-process) and the
shared reference folder.

- `sandbox_server` (session): one sandbox served by uvicorn on 127.0.0.1 in a background thread,
  on a database in a temporary folder, with the operator API on.
- `sandbox` (function): the same server, reset to the demo business before the test (data,
  faults, stats, gateway table and clock); yields the `ServedSandbox` (`base_url`,
  `gateway_url`, `fallback_url`, `operator_url`).
- `sandbox_app_factory`: builds in-process apps (`create_app`) on fresh database files, for
  `httpx.ASGITransport`.
- `demo`: the demo business fixture (`DEMO`).
- `pg_server` (session): a throwaway PostgreSQL server (``tests/support/pg_cluster.py``) on a
  free loopback port, for the postgres state backend; `pg_dsn` (function): a fresh database of
  it, owned by a fresh role, as a DSN.  Without the server binaries the tests using them are
  skipped, saying why, except in CI (``CI`` set), where that is a failure: ``.ci/run`` installs it.
- `shared_reference`: the folder of the official vcita specs and recipes (`../shared/reference/
  vcita` beside the repository, or `$RECONCILER_SHARED/reference/vcita`); skips when absent.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from reconciler.cli import run
from reconciler.sandbox import DEMO, ServedSandbox, create_app, serve_in_thread

REPO = Path(__file__).resolve().parent.parent


def shared_root() -> Path:
    """Where the shared folder is: `$RECONCILER_SHARED`, else `../shared` beside the repo."""
    env = os.environ.get("RECONCILER_SHARED")
    return Path(env) if env else REPO.parent / "shared"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """reconciler runs on asyncio (the applier, refresh and the HTTP client use it directly): anyio's
    pytest plugin (4.12 and later) would also run every `@pytest.mark.anyio` test on trio when trio
    happens to be installed, and those runs can only fail."""
    return "asyncio"


@pytest.fixture(scope="session")
def shared_reference() -> Path:
    folder = shared_root() / "reference" / "vcita"
    if not (folder / "legacy_v1_sales.json").is_file():
        pytest.skip(f"the vcita reference folder is absent ({folder}); set RECONCILER_SHARED")
    return folder


@pytest.fixture(scope="session")
def shared_seeds() -> Path:
    folder = shared_root() / "seeds"
    if not folder.is_dir():
        pytest.skip(f"the seeds folder is absent ({folder}); set RECONCILER_SHARED")
    return folder


@pytest.fixture(autouse=True)
def short_list_lag(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox's list does not lag unless a test sets it to (``list_lag_seconds``), so the
    recovery of an interrupted catalog create need not wait the real API's 20 s + margins
    (``reconciler.core.listlag``); creates must still leave within 5 s of their pending record.  The
    list-lag tests set their own values."""
    monkeypatch.setenv("RECONCILER_LIST_LAG_SECONDS", "0")
    monkeypatch.setenv("RECONCILER_CLOCK_SKEW_SECONDS", "0")
    monkeypatch.setenv("RECONCILER_CREATE_SEND_WINDOW_SECONDS", "5")


@pytest.fixture(autouse=True)
def no_retry_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries follow each other at once (``RECONCILER_RETRY_BACKOFF_SECONDS=0``), in this process
    and in the CLI runs it starts: a test of a 5xx need not wait out 0.5 + 1 + 2 s of back-off.  The
    retry rules are the same; a server's Retry-After is still waited.  Tests of the back-off itself
    build their RetryPolicy with an explicit ``base_delay``.  (With no wait at all, reads that a
    failed refresh left running used to outlive the client: ``reconciler/core/aio.py`` ends them.)"""
    monkeypatch.setenv("RECONCILER_RETRY_BACKOFF_SECONDS", "0")


@pytest.fixture(scope="session")
def demo() -> dict[str, Any]:
    return DEMO


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedSandbox]:
    db = tmp_path_factory.mktemp("sandbox") / "sandbox.db"
    with serve_in_thread(db, operator=True) as served:
        yield served


@pytest.fixture
def sandbox(sandbox_server: ServedSandbox) -> ServedSandbox:
    response = httpx.post(sandbox_server.operator_url + "/reset", timeout=10)
    response.raise_for_status()
    return sandbox_server


@pytest.fixture
def sandbox_app_factory(tmp_path: Path) -> Iterator[Callable[..., Starlette]]:
    """Builds in-process apps; their SQLite connections are closed after the test (the ASGI
    transport sends no lifespan events, so the app cannot close them itself)."""
    apps: list[Starlette] = []

    def make(**options: Any) -> Starlette:
        options.setdefault("operator", True)
        app = create_app(tmp_path / f"inprocess-{len(apps)}.db", **options)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.state.sandbox.store.close()


# --- driving the CLI against the served sandbox (e2e, drift, export, fleet tests) ---------------

@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Any, demo: dict[str, Any]) -> Path:
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VCITA_GATEWAY_URL", sandbox.gateway_url)
    monkeypatch.setenv("VCITA_FALLBACK_URL", sandbox.fallback_url)
    monkeypatch.setenv("VCITA_BUSINESS_ID", demo["business"]["id"])
    monkeypatch.setenv("VCITA_STAFF_TOKEN", demo["tokens"]["staff"])
    for var in ("VCITA_DIRECTORY_TOKEN", "RECONCILER_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = run(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def operator(sandbox: Any) -> Callable[..., Any]:
    def call(method: str, path: str, **kw: Any) -> Any:
        r = httpx.request(method, sandbox.operator_url + path, timeout=30, **kw)
        r.raise_for_status()
        return r.json()

    return call


# --- a real PostgreSQL server (the postgres state backend) ------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    from pg_cluster import PgCluster, find_bindir

    if find_bindir() is None:
        if os.environ.get("CI"):
            pytest.fail("no PostgreSQL server binaries on this CI machine; .ci/run should have installed them")
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl, postgres) on this machine: apt-get install postgresql")
    with PgCluster(fsync=False, max_connections=300) as cluster:
        yield cluster


@pytest.fixture
def pg_dsn(pg_server: Any, request: pytest.FixtureRequest) -> str:
    import re
    import secrets

    name = "t_" + re.sub(r"[^a-z0-9]", "_", request.node.name.lower())[:40] + "_" + secrets.token_hex(3)
    return str(pg_server.new_database(name))

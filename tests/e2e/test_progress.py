"""Progress everywhere it takes more than a second: the library reports each read of a refresh and
each business of a fleet run as it ends; the CLI draws a spinner on stderr only when stderr is a
terminal (never on stdout, never in a log), and the apply bar counts what is in flight and names
the last object finished."""

from __future__ import annotations

import asyncio
import io
import os
import pty
import select
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from reconciler.applier import Applier
from reconciler.cli.progress import ApplyBar, spinner_text
from reconciler.core.progress import Progress
from reconciler.fleet import businesses as fleet
from reconciler.manifest.load import load_manifests
from reconciler.refresh.full import make_plan, target_ref
from reconciler.remote import ClientSettings, VcitaClient, resolve_target
from reconciler.state.store import StateStore

REPO = Path(__file__).resolve().parents[2]


class Reads(httpx.AsyncBaseTransport):
    """Counts the GETs the sandbox answers."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.gets = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.gets += request.method == "GET"
        return await self.inner.handle_async_request(request)


@pytest.mark.anyio
async def test_a_refresh_reports_every_read_as_it_ends(tmp_path: Path, sandbox_app_factory: Callable[..., Starlette]) -> None:
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    target = resolve_target(flags={}, env={}, cwd=tmp_path)
    desired = load_manifests([tmp_path / "manifests"])
    store = StateStore.locate([tmp_path / "manifests"])
    state = store.load().for_target(target_ref(target))
    reads = Reads(httpx.ASGITransport(app=sandbox_app_factory()))
    async with VcitaClient(target, transport=reads, settings=ClientSettings(rate=None)) as api:
        plan = await make_plan(api, desired, state, target=target)
        result = await Applier(api, store, state, target_ref(target)).apply(plan)
        assert result.ok and result.state is not None
    # Pages of 2: the demo's 3 catalog packages come in 2 pages and an empty one, 3 reads where one was counted.
    async with VcitaClient(target, transport=reads, settings=ClientSettings(rate=None, per_page=2)) as api:
        events: list[Progress] = []
        reads.gets = 0
        again = await make_plan(api, desired, result.state, target=target, progress=events.append, phase="verifying")
    assert not again.has_changes
    tracked_clients = sum(1 for a in result.state.resources if a.startswith("client_package."))
    emails = 2  # the demo's two clients named by e-mail
    assert events[0] == Progress("verifying", 0, 1 + tracked_clients + emails + 1)  # the total, before any read
    assert events[-1] == Progress("checking payment requests", 0, None)  # the second memory: named, not counted
    assert spinner_text(events[-1]) == "checking payment requests..."
    events = [e for e in events if e.phase == "verifying"]
    steps = [e for e in events if e.done and e.last]
    assert [e.done for e in steps] == list(range(1, len(steps) + 1))  # one event per read, in order
    assert events[-1].done == events[-1].total  # ... and it ends at the total
    pages = [e for e in steps if e.last.startswith("catalog packages: ")]
    assert [e.last for e in pages] == ["catalog packages: 2 listed", "catalog packages: 3 listed",
                                       "catalog packages: 3 listed"]
    assert events[-1].total == len(pages) + tracked_clients + emails + 1
    assert reads.gets >= events[-1].total  # (a look-up by e-mail may read more than one page: one unit)
    assert {e.last for e in events} >= {"services", "client_package.alice-piano"}


@pytest.mark.anyio
async def test_a_fleet_run_reports_each_business_as_it_ends(tmp_path: Path) -> None:
    names = [f"b{i}" for i in range(7)]
    businesses = [fleet.Business(name=n, path=tmp_path / n) for n in names]

    async def work(b: fleet.Business) -> fleet.Outcome:
        await asyncio.sleep(0.01 * (len(b.name) % 3))
        if b.name == "b3":
            raise RuntimeError("boom")
        return fleet.Outcome(b.name, str(b.path), status="in_sync")

    events: list[Progress] = []
    outcomes = await fleet.run_all(businesses, work, jobs=3, progress=events.append, phase="drift --all")
    assert [o.status for o in outcomes].count("error") == 1
    assert events[0] == Progress("drift --all", 0, 7)
    assert [e.done for e in events] == list(range(8))
    assert sorted(e.last for e in events[1:]) == sorted(f"{n}: {'error' if n == 'b3' else 'in_sync'}" for n in names)
    assert spinner_text(events[3]).startswith("drift --all: 3/7 businesses (last: ")


def test_the_apply_bar_counts_in_flight_and_names_the_last_finished() -> None:
    from rich.console import Console as Rich

    screen = io.StringIO()
    bar = ApplyBar(enabled=True, console=Rich(file=screen, force_terminal=True, width=200))
    printed: list[str] = []
    with bar.running(4):
        bar.started("catalog_package.a")
        bar.started("catalog_package.b")
        bar.started("client_package.c")
        bar.finished("catalog_package.b", "done", "catalog_package.b: created", "green", lambda: printed.append("b"))
        assert bar.in_flight == 2 and bar.last == "last: catalog_package.b done"
        bar.finished("client_package.d", "skipped", "client_package.d: skipped", None, lambda: printed.append("d"))
        assert bar.in_flight == 2 and bar.last == "last: client_package.d skipped"  # never started: not in flight
        task = bar._progress.tasks[0]
        assert task.completed == 2 and task.fields == {"in_flight": 2, "last": "last: client_package.d skipped"}
    assert not printed  # on a terminal the lines go above the bar, through rich
    assert "catalog_package.b: created" in screen.getvalue()
    plain = ApplyBar(enabled=False)  # not a terminal: plain lines, no bar
    with plain.running(1):
        plain.started("x")
        plain.finished("x", "done", "x: created", None, lambda: printed.append("x"))
    assert printed == ["x"]


def _run_with_stderr_on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """Run the CLI with stdout a pipe and stderr a pseudo-terminal; (code, stdout, the terminal's bytes)."""
    main, child = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "reconciler", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                         stderr=child, stdin=subprocess.DEVNULL)
    os.close(child)
    seen = b""
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        if not ready:
            p.kill()
            p.wait()
            pytest.fail("the CLI wrote nothing for 60 s")
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    assert p.stdout is not None
    with p.stdout:
        out = p.stdout.read().decode()
    os.close(main)
    return p.wait(), out, seen.decode(errors="replace")


def test_the_spinner_is_on_the_terminal_only_never_on_stdout(workdir: Path) -> None:
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    code, out, terminal = _run_with_stderr_on_a_terminal(["plan", "--format", "json"], workdir, env)
    assert code == 0, terminal
    piped = subprocess.run([sys.executable, "-m", "reconciler", "plan", "--format", "json"], cwd=workdir, env=env,
                           capture_output=True, text=True, check=False)
    assert piped.returncode == 0 and piped.stderr == ""  # not a terminal: no spinner, not even a plain line

    def body(text: str) -> str:
        return "\n".join(line for line in text.splitlines()
                         if '"created_at"' not in line and '"state_lineage"' not in line)  # new on each run

    assert body(out) == body(piped.stdout)  # stdout is the plan, byte for byte, spinner or not
    assert "refreshing" in terminal  # the spinner was drawn on the terminal (counts: when a phase outlasts a frame)
    code, _, terminal = _run_with_stderr_on_a_terminal(["plan", "-q"], workdir, env)
    assert code == 0 and "refreshing" not in terminal  # -q: no spinner either

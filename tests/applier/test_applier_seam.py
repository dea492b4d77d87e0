"""The applier against the in-process sandbox, attacked at the transport seam
(``httpx.AsyncBaseTransport``): nothing of reconciler is replaced, the sandbox executes every
request it receives.

- A create whose answer is lost after the sandbox executed it: sent once, never repeated, its
  outcome unknown and its pending record kept in the state (the next run resolves it); the other
  creates are done and recorded.
- The state moves on behind the run's back (another writer) while a create is in flight: the
  write recording it fails, no create goes out after that, and each id vcita acknowledged is
  reported as unrecorded, its pending record on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from reconciler.applier import Applier
from reconciler.applier.run import Result
from reconciler.core.errors import PlanFileError
from reconciler.manifest.load import load_manifests
from reconciler.refresh.full import make_plan, target_ref
from reconciler.remote import ClientSettings, VcitaClient, resolve_target
from reconciler.sandbox import DEMO
from reconciler.state.store import StateStore

pytestmark = pytest.mark.anyio

SERVICE = DEMO["services"][0]["id"]
CREATE_PATH = "/platform/v1/payment/packages"


def _catalog(name: str) -> str:
    return (f"apiVersion: reconciler/v1\nkind: CatalogPackage\nmetadata: {{name: {name}}}\n"
            f"spec: {{name: {name.title()} Lessons, price: 100, currency: USD, expiration: 6, "
            f"expiration_unit: M, items: [{{total_bookings: 10, services: [{SERVICE}]}}]}}\n---\n")


class Seam(httpx.AsyncBaseTransport):
    """Forwards every request to the sandbox; ``after_create(n, request)`` runs once the sandbox
    has executed the n-th catalog create (1-based), and may raise to lose its answer."""

    def __init__(self, inner: httpx.AsyncBaseTransport,
                 after_create: Callable[[int, httpx.Request], None] = lambda n, r: None) -> None:
        self.inner = inner
        self.after_create = after_create
        self.creates: list[bytes] = []  # bodies of the creates the sandbox received
        #: whether the run's state had failed to be written: asked as each create goes out
        self.failed: Callable[[], bool] = lambda: False
        self.sent_after_failure = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        create = request.method == "POST" and request.url.path.endswith(CREATE_PATH)
        if create and self.failed():
            self.sent_after_failure += 1
        response = await self.inner.handle_async_request(request)
        if create:
            self.creates.append(await request.aread())
            await response.aread()
            self.after_create(len(self.creates), request)
        return response


@pytest.fixture
def world(tmp_path: Path, sandbox_app_factory: Callable[..., Starlette]) -> dict[str, Any]:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "m.yaml").write_text(_catalog("piano") + _catalog("guitar") + _catalog("drums"))
    target = resolve_target(flags={}, env={}, cwd=tmp_path)  # the embedded target's doors and tokens
    return {"app": sandbox_app_factory(), "target": target, "folder": folder}


async def _apply(world: dict[str, Any], seam: Seam) -> tuple[Result, StateStore]:
    store = StateStore.locate([world["folder"]])
    state = store.load().for_target(target_ref(world["target"]))
    async with VcitaClient(world["target"], transport=seam, settings=ClientSettings(rate=None, concurrency=1)) as api:
        plan = await make_plan(api, load_manifests([world["folder"]]), state, target=world["target"],
                               today=date(2026, 1, 1))
        assert [op.op for op in plan.operations] == ["create_catalog_package"] * 3, plan.operations
        applier = Applier(api, store, state, target_ref(world["target"]))
        seam.failed = lambda: getattr(applier, "commit", None) is not None and applier.commit.failed is not None
        result = await applier.apply(plan)
    return result, store


async def test_a_create_whose_answer_is_lost_is_sent_once_and_stays_pending(world: dict[str, Any]) -> None:
    lost: list[bytes] = []

    def lose_the_second(n: int, request: httpx.Request) -> None:
        if n == 2:
            lost.append(request.content)
            raise httpx.ReadError("connection reset after the request was executed", request=request)

    seam = Seam(httpx.ASGITransport(app=world["app"]), lose_the_second)
    result, store = await _apply(world, seam)

    assert len(seam.creates) == 3 and seam.creates.count(lost[0]) == 1  # never repeated
    statuses = sorted(e.status or "" for e in result.outcomes.values())
    assert statuses == ["done", "done", "unknown"], result.outcomes
    unknown = next(a for a, e in result.outcomes.items() if e.status == "unknown")
    state = store.load()
    assert [pc.address for pc in state.pending.values()] == [unknown]  # the next run resolves it
    assert unknown not in state.resources
    assert {a for a, e in result.outcomes.items() if e.status == "done"} == set(state.resources)


async def test_a_state_that_moved_on_stops_the_run_and_reports_what_it_could_not_record(
        world: dict[str, Any]) -> None:
    store = StateStore.locate([world["folder"]])

    def another_writer(n: int, request: httpx.Request) -> None:
        if n == 1:  # while the first create's answer is on its way back
            other = store.load()
            store.write(other.replace(resources={}), expected_serial=other.serial)

    seam = Seam(httpx.ASGITransport(app=world["app"]), another_writer)
    result, _ = await _apply(world, seam)

    assert seam.sent_after_failure == 0, "a create was sent after the state could not be written"
    assert not result.ok
    # Each create that reached vcita is reported with the id vcita gave it, its outcome unknown
    # to the state, and its pending record is on disk (written before it was sent).
    sent = {a for a, e in result.outcomes.items() if e.status == "unknown"}
    assert len(sent) == len(seam.creates) == len(result.unrecorded) >= 1
    assert {a for a, rid in result.unrecorded if rid} == sent
    assert {pc.address for pc in store.load().pending.values()} == sent
    assert result.count("skipped") == 3 - len(sent) >= 1  # the rest: not sent


async def test_a_plan_with_errors_is_refused_by_the_library_too_and_sends_nothing(world: dict[str, Any]) -> None:
    # check_plan (the CLI's path) refuses a plan with errors; a library caller that goes straight
    # to Applier.apply (a script, a benchmark) must meet the same refusal, before any request.
    alice = DEMO["clients"][0]["id"]

    def sale(name: str) -> str:
        return (f"apiVersion: reconciler/v1\nkind: ClientPackage\nmetadata: {{name: {name}}}\n"
                f"spec: {{client: {alice}, package: piano}}\n---\n")

    (world["folder"] / "m.yaml").write_text(_catalog("piano") + sale("alice-piano") + sale("alice-piano-copy"))
    seam = Seam(httpx.ASGITransport(app=world["app"]))
    store = StateStore.locate([world["folder"]])
    state = store.load().for_target(target_ref(world["target"]))
    async with VcitaClient(world["target"], transport=seam, settings=ClientSettings(rate=None)) as api:
        plan = await make_plan(api, load_manifests([world["folder"]]), state, target=world["target"],
                               today=date(2026, 1, 1))
        assert [p.address for p in plan.errors] == ["client_package.alice-piano-copy"], plan.errors
        assert plan.operations  # the catalog package and the first sale would be created
        with pytest.raises(PlanFileError, match="error"):
            await Applier(api, store, state, target_ref(world["target"])).apply(plan)
    assert seam.creates == []
    assert not store.path.exists() or not store.load().resources

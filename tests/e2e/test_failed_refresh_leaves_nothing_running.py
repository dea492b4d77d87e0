"""A refresh that fails stops everything it started: when the catalog list fails, the reads of
client packages started beside it are cancelled and ended before the error reaches the caller, so
no request is in flight, or sent, after the command has given up and closed its client (with
asyncio.gather they ran on, and reopened a connection pool that nobody closed)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from reconciler.applier import Applier
from reconciler.core.errors import ReconcilerError
from reconciler.manifest.load import load_manifests
from reconciler.refresh.full import make_plan, target_ref
from reconciler.remote import ClientSettings, VcitaClient, resolve_target
from reconciler.state.store import StateStore

REPO = Path(__file__).resolve().parents[2]


class SlowReadsFailingList(httpx.AsyncBaseTransport):
    """The sandbox, except that (once armed) the catalog list answers 400 after a short wait and
    each client package read takes 0.2 s; it counts what is in flight and what starts late."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.armed = False
        self.in_flight = 0
        self.started = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.armed:
            return await self.inner.handle_async_request(request)
        self.started += 1
        self.in_flight += 1
        try:
            if "/payment/packages" in request.url.path and request.method == "GET" and "/client" not in request.url.path:
                await asyncio.sleep(0.05)
                return httpx.Response(400, json={"status": "Error", "error": "refused"}, request=request)
            if "client_packages" in request.url.path or "client_package" in request.url.path:
                await asyncio.sleep(0.2)
            return await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1


@pytest.mark.anyio
async def test_a_failed_catalog_read_cancels_the_client_package_reads_before_it_raises(
        tmp_path: Path, sandbox_app_factory: Callable[..., Starlette]) -> None:
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    target = resolve_target(flags={}, env={}, cwd=tmp_path)
    desired = load_manifests([tmp_path / "manifests"])
    store = StateStore.locate([tmp_path / "manifests"])
    state = store.load().for_target(target_ref(target))
    wire = SlowReadsFailingList(httpx.ASGITransport(app=sandbox_app_factory()))
    async with VcitaClient(target, transport=wire, settings=ClientSettings(rate=None)) as api:
        plan = await make_plan(api, desired, state, target=target)
        result = await Applier(api, store, state, target_ref(target)).apply(plan)
        assert result.ok and result.state is not None
    assert any(a.startswith("client_package.") for a in result.state.resources)
    wire.armed = True
    with pytest.raises(ReconcilerError):
        async with VcitaClient(target, transport=wire, settings=ClientSettings(rate=None)) as api:
            await make_plan(api, desired, result.state, target=target)
    assert wire.in_flight == 0  # every read the refresh started has ended when the error arrives
    started = wire.started
    await asyncio.sleep(0.5)
    assert wire.started == started and wire.in_flight == 0  # ... and none starts afterwards

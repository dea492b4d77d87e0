"""The request a plan shows is the request apply sends: method, door, path and body bytes.

The plan is made and applied by the library against the in-process sandbox, through a transport
that records every request at the seam (``httpx.AsyncBaseTransport``).  Every write kind is
covered: catalog create / update / adopt-and-update, client create (with a package id known and
known only after apply), its booking credits, update, replace.  Values known only after apply
are compared once substituted by the ids the state recorded; everything else byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from reconciler.applier import Applier, request_digest
from reconciler.applier.run import sent_digest
from reconciler.manifest.load import load_manifests
from reconciler.plan.document import Plan
from reconciler.plan.operations import (
    KNOWN_AFTER_APPLY,
    CreateCatalogPackage,
    CreateClientPackage,
    IdOf,
    Operation,
    SetBookingCredits,
)
from reconciler.refresh.full import make_plan, target_ref
from reconciler.remote import ClientSettings, VcitaClient, encode_body, resolve_target
from reconciler.sandbox import DEMO
from reconciler.state.store import State, StateStore

SERVICES = [s["id"] for s in DEMO["services"]]
CLIENTS = [c["id"] for c in DEMO["clients"]]
DOOR_PREFIX = {"gateway": "/apigw", "fallback": "/api2"}


class Recorder(httpx.AsyncBaseTransport):
    """Records (method, path, body bytes) of every request, then lets the sandbox answer it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[tuple[str, str, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.method, request.url.path, await request.aread()))
        return await self.inner.handle_async_request(request)


def _catalog(name: str, title: str, price: float, service: str, extra: str = "") -> str:
    return (f"apiVersion: reconciler/v1\nkind: CatalogPackage\nmetadata: {{name: {name}}}\n"
            f"spec: {{name: {title}, price: {price}, currency: USD, expiration: 6, expiration_unit: M,\n"
            f"       items: [{{total_bookings: 10, services: [{service}]}}]{extra}}}\n---\n")


def _client(name: str, client: str, package: str, extra: str = "") -> str:
    return (f"apiVersion: reconciler/v1\nkind: ClientPackage\nmetadata: {{name: {name}}}\n"
            f"spec: {{client: {client}, package: {package}{extra}}}\n---\n")


@pytest.fixture
def world(tmp_path: Path, sandbox_app_factory: Callable[..., Starlette]) -> dict[str, Any]:
    app = sandbox_app_factory()
    target = resolve_target(flags={}, env={}, cwd=tmp_path)  # the embedded target's doors and tokens
    return {"app": app, "target": target, "folder": tmp_path / "manifests"}


async def _plan_and_apply(world: dict[str, Any], text: str, *, allow_replace: bool = False) -> tuple[Plan, Recorder, State]:
    folder: Path = world["folder"]
    folder.mkdir(exist_ok=True)  # noqa: ASYNC240 - a test's setup, before anything runs
    (folder / "m.yaml").write_text(text)
    desired = load_manifests([folder])
    store = StateStore.locate([folder])
    state = store.load().for_target(target_ref(world["target"]))
    recorder = Recorder(httpx.ASGITransport(app=world["app"]))
    async with VcitaClient(world["target"], transport=recorder, settings=ClientSettings(rate=None)) as api:
        plan = await make_plan(api, desired, state, target=world["target"], allow_replace=allow_replace,
                               today=date(2026, 1, 1))
        assert not plan.errors, plan.errors
        recorder.sent.clear()
        result = await Applier(api, store, state, target_ref(world["target"])).apply(plan)
    assert result.ok, [(e.address, e.message) for e in result.outcomes.values()]
    assert result.state is not None
    return plan, recorder, result.state


def _expected(op: Operation, state: State) -> list[tuple[str, str, str, Any]]:
    """(method, door, path, body) of each planned request, known-after-apply values substituted."""
    rs = state.resources[op.address]
    out = []
    for r in op.requests:
        path, body = r.path, r.body
        if isinstance(op, CreateClientPackage) and isinstance(op.package_id, IdOf):
            assert body is not None and body["package_id"] == KNOWN_AFTER_APPLY
            body = {**body, "package_id": state.resources[op.package_id.id_of].id}
        if isinstance(op, SetBookingCredits):
            path = path.replace(KNOWN_AFTER_APPLY, rs.id)
            ids = [rs.booking_credit_ids[",".join(sorted(c.services))] for c in op.credits]
            assert body is not None
            credits = body["client_package"]["booking_credits"]
            assert [c["id"] for c in credits] == [KNOWN_AFTER_APPLY] * len(ids)
            body = {"client_package": {"booking_credits": [{**c, "id": i} for c, i in zip(credits, ids, strict=False)]}}
        assert KNOWN_AFTER_APPLY not in json.dumps(body) + path, (op, body)
        out.append((r.method, r.door, path, body))
    return out


def _check(plan: Plan, recorder: Recorder, state: State) -> int:
    writes = [(m, p, b) for m, p, b in recorder.sent if m != "GET"]
    expected = [e for op in plan.operations for e in _expected(op, state)]
    assert len(writes) == len(expected), (writes, expected)  # nothing sent that the plan did not show
    for method, door, path, body in expected:
        assert door in DOOR_PREFIX, door  # described with the door the client chose
        wire = (method, DOOR_PREFIX[door] + path, encode_body(body))
        assert wire in writes, (wire, writes)
    for op in plan.operations:  # a create's pending record names the very body the plan shows
        if isinstance(op, (CreateCatalogPackage, CreateClientPackage)):
            (method, _, _, body), = _expected(op, state)
            assert sent_digest(op.bound(state.resources)) == request_digest(body)
    return len(expected)


@pytest.mark.anyio
async def test_every_write_is_sent_exactly_as_the_plan_shows_it(world: dict[str, Any]) -> None:
    piano = _catalog("piano", "Piano Ten", 540.5, SERVICES[0], extra=", description: ''")
    guitar = _catalog("guitar", "Guitar Five", 280, SERVICES[1])
    first = (piano + guitar
             + _client("alice", CLIENTS[0], "piano", f", valid_until: 2027-05-31, booking_credits: "
                                                     f"[{{services: [{SERVICES[0]}], total_bookings: 14}}]")
             + _client("ben", CLIENTS[1], "guitar", ", price: 250.25, tax_uids: [t1], valid_from: 2026-02-01"))
    plan, recorder, state = await _plan_and_apply(world, first)
    kinds = {op.op for op in plan.operations}
    assert kinds == {"create_catalog_package", "create_client_package", "set_booking_credits"}
    assert _check(plan, recorder, state) == 5

    # Adopt: a package made outside reconciler, with the name of a new manifest, and another price.
    async with VcitaClient(world["target"], transport=httpx.ASGITransport(app=world["app"])) as api:
        await api.create_catalog_package({"name": "Drums Four", "price": 99, "currency": "USD", "expiration": 1,
                                          "expiration_unit": "M", "items": [{"total_bookings": 4,
                                                                             "services": [{"id": SERVICES[2]}]}]})
    second = (_catalog("piano", "Piano Ten", 560, SERVICES[0], extra=", description: 'now described'")
              + guitar + _catalog("drums", "Drums Four", 120, SERVICES[2])
              + _client("alice", CLIENTS[0], "piano", f", valid_until: 2027-06-30, booking_credits: "
                                                      f"[{{services: [{SERVICES[0]}], total_bookings: 16}}]")
              + _client("ben", CLIENTS[1], "guitar", ", price: 260, tax_uids: [t1], valid_from: 2026-02-01"))
    plan, recorder, state = await _plan_and_apply(world, second, allow_replace=True)
    assert {(op.address, op.action) for op in plan.operations} == {
        ("catalog_package.piano", "update"), ("catalog_package.drums", "import"),
        ("client_package.alice", "update"), ("client_package.ben", "replace")}
    assert _check(plan, recorder, state) == 4


@pytest.mark.anyio
async def test_a_value_known_only_after_apply_is_never_sent_unbound(world: dict[str, Any]) -> None:
    op = CreateClientPackage(address="client_package.x", client_id=CLIENTS[0], package_id=IdOf("catalog_package.y"))
    recorder = Recorder(httpx.ASGITransport(app=world["app"]))
    async with VcitaClient(world["target"], transport=recorder) as api:
        assert api.describe(op)[0].body == {"client_id": CLIENTS[0], "package_id": KNOWN_AFTER_APPLY}
        with pytest.raises(ValueError, match="not bound"):
            await api.execute(op)
        with pytest.raises(ValueError, match="not bound"):
            await api.execute(SetBookingCredits(address="client_package.x", credits=()).as_update())
    assert recorder.sent == []


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

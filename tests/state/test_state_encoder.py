"""The state file's text written incrementally (state_json.StateEncoder) is exactly State.to_json().

The encoder reuses the text of each record object it encoded before; these tests check the bytes
over random sequences of changes (one encoder across them, as a store keeps it), through real
store writes, and after a whole apply against the in-process sandbox: the state the apply ends
with, encoded afresh, is the file it wrote (a record changed in place after it was written would
show here as a difference).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from reconciler.state.encoder import StateEncoder
from reconciler.state.store import ArchivedResource, PendingCreate, ResourceState, State, StateStore, TargetRef

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_json = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), _text),
                     lambda inner: st.one_of(st.lists(inner, max_size=3),
                                             st.dictionaries(_text, inner, max_size=3)), max_leaves=8)
_name = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)


@st.composite
def _resource(draw: st.DrawFn) -> tuple[str, ResourceState]:
    kind = draw(st.sampled_from(["CatalogPackage", "ClientPackage"]))
    address = ("catalog_package." if kind == "CatalogPackage" else "client_package.") + draw(_name)
    return address, ResourceState(kind=kind, id=draw(_name), fingerprint="sha256:" + draw(_name),
                                  applied=draw(st.dictionaries(_text, _json, max_size=4)),
                                  booking_credit_ids=draw(st.dictionaries(_text, _name, max_size=2)),
                                  updated_at="2026-11-20T10:00:00Z")


_step = st.one_of(
    st.tuples(st.just("put"), _resource()),
    st.tuples(st.just("drop"), st.integers(0, 50)),
    st.tuples(st.just("open"), _name, _text),
    st.tuples(st.just("close"), st.integers(0, 50)),
    st.tuples(st.just("archive"), st.integers(0, 50), _text),
    st.tuples(st.just("serial"), st.integers(0, 10**6)),
)


def _apply_step(state: State, step: tuple[Any, ...]) -> State:
    what = step[0]
    if what == "put":
        address, rs = step[1]
        return state.with_resource(address, rs)
    if what == "drop" and state.resources:
        return state.without(sorted(state.resources)[step[1] % len(state.resources)])
    if what == "open":
        pc = PendingCreate(id=step[1], address=f"client_package.{step[1]}", kind="ClientPackage",
                           request_digest="sha256:x", details={"note": step[2]}, opened_at="2026-11-20T10:00:00Z")
        return state.replace(pending={**state.pending, pc.id: pc})
    if what == "close" and state.pending:
        gone = sorted(state.pending)[step[1] % len(state.pending)]
        return state.replace(pending={k: v for k, v in state.pending.items() if k != gone})
    if what == "archive" and state.resources:
        return state.archive(sorted(state.resources)[step[1] % len(state.resources)], step[2])
    if what == "serial":
        return state.model_copy(update={"serial": step[1]})
    return state


@settings(max_examples=150, deadline=None)
@given(st.lists(_step, max_size=25), st.booleans())
def test_every_state_of_a_sequence_encodes_to_its_to_json(steps: list[tuple[Any, ...]], targeted: bool) -> None:
    encoder = StateEncoder()
    state = State.new(TargetRef(gateway_url="https://x.example/apigw", business_id="b") if targeted else None)
    assert encoder.encode(state) == state.to_json().encode("utf-8")
    for step in steps:
        state = _apply_step(state, step)
        assert encoder.encode(state) == state.to_json().encode("utf-8")


def test_unsorted_maps_and_archived_records_encode_like_to_json() -> None:
    rs = {a: ResourceState(kind="ClientPackage", id=a[-1], fingerprint="f", applied={"b": 1, "a": "é\u0001"},
                           updated_at="2026-11-20T10:00:00Z") for a in ("client_package.z", "client_package.a")}
    ar = ArchivedResource(kind="CatalogPackage", id="q\"\\id", address="catalog_package.old", identity={"name": "Ω"},
                          applied={}, archived_at="2026-11-20T10:00:00Z")
    state = State.new().replace(resources=rs, archived={ar.id: ar})
    encoder = StateEncoder()
    for _ in range(2):  # encoded, then reused
        assert encoder.encode(state) == state.to_json().encode("utf-8")


def test_store_writes_are_the_canonical_text(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    state = State.new()
    for i in range(30):
        rs = ResourceState(kind="CatalogPackage", id=f"id{i}", fingerprint="f", applied={"i": i},
                           updated_at="2026-11-20T10:00:00Z")
        state = store.write(state.with_resource(f"catalog_package.p{i % 7}", rs), expected_serial=state.serial)
        on_disk = (tmp_path / "state.json").read_bytes()
        assert on_disk == state.to_json().encode("utf-8")
        assert StateStore(tmp_path / "state.json").load() == state


def test_after_a_whole_apply_the_file_is_the_final_state_encoded_afresh(
        tmp_path: Path, sandbox_app_factory: Callable[..., Starlette]) -> None:
    import httpx

    from reconciler.applier import Applier
    from reconciler.manifest.load import load_manifests
    from reconciler.refresh.full import make_plan, target_ref
    from reconciler.remote import ClientSettings, VcitaClient, resolve_target
    from reconciler.sandbox import DEMO

    app = sandbox_app_factory()
    target = resolve_target(flags={}, env={}, cwd=tmp_path)
    folder = tmp_path / "manifests"
    folder.mkdir()
    svc = DEMO["services"][0]["id"]
    docs = [f"apiVersion: reconciler/v1\nkind: CatalogPackage\nmetadata: {{name: p{i}}}\n"
            f"spec: {{name: P{i}, price: {10 + i}, currency: USD, expiration: 6, expiration_unit: M,\n"
            f"       items: [{{total_bookings: 10, services: [{svc}]}}]}}\n" for i in range(3)]
    docs += [f"apiVersion: reconciler/v1\nkind: ClientPackage\nmetadata: {{name: c{i}}}\n"
             f"spec: {{client: {c['id']}, package: p{i % 3},\n"
             f"       booking_credits: [{{services: [{svc}], total_bookings: {i + 11}}}]}}\n"
             for i, c in enumerate(DEMO["clients"])]
    (folder / "m.yaml").write_text("---\n".join(docs))

    async def go() -> State:
        desired = load_manifests([folder])
        store = StateStore.locate([folder])
        state = store.load().for_target(target_ref(target))
        async with VcitaClient(target, transport=httpx.ASGITransport(app=app), settings=ClientSettings(rate=None)) as api:
            plan = await make_plan(api, desired, state, target=target, today=date(2026, 1, 1))
            assert not plan.errors, plan.errors
            result = await Applier(api, store, state, target_ref(target)).apply(plan)
        assert result.ok and result.state is not None and result.state_writes > 2
        return result.state

    final = asyncio.run(go())
    assert len(final.resources) == 3 + len(DEMO["clients"])
    assert (folder / ".reconciler" / "state.json").read_bytes() == StateEncoder().encode(final)
    assert StateEncoder().encode(final) == final.to_json().encode("utf-8")

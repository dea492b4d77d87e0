"""The applier's group commit (``reconciler/applier/commit.py``) writes states that load back.

Each write builds the new State from the previous one and the records of its batch, checking
those records alone (address against kind) rather than validating every record again: a record
whose kind does not match its address is refused, nothing is written, and nothing more may be
written or sent after it; what is written loads back through the full validation.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from state_helpers import TARGET, resource

from reconciler.applier.commit import Committer
from reconciler.core.errors import StateError
from reconciler.state.store import StateStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_batch_is_written_whole_and_loads_back_validated(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    state = store.load().for_target(TARGET)
    async with Committer(store, state) as commit:
        intent = await commit.open_intent("client_package.a", "ClientPackage", "sha256:x", {"client_id": "c1"})
        assert store.load().pending[intent].address == "client_package.a"  # durable before any send
        await commit.put("client_package.a", resource(rid="cp1"), settles=intent)
        await commit.put("catalog_package.p", resource(kind="CatalogPackage", rid="pk1"))
    loaded = store.load()
    assert loaded == commit.state
    assert {a: r.id for a, r in loaded.resources.items()} == {"client_package.a": "cp1", "catalog_package.p": "pk1"}
    assert loaded.pending == {}


@pytest.mark.parametrize("address, kind", [("catalog_package.p", "ClientPackage"), ("not an address", "ClientPackage")])
async def test_a_record_whose_kind_does_not_match_its_address_is_never_written(
        tmp_path: Path, address: str, kind: str) -> None:
    store = StateStore(tmp_path / "state.json")
    state = store.load().for_target(TARGET)
    async with Committer(store, state) as commit:
        await commit.put("client_package.ok", resource(rid="cp1"))
        before = (tmp_path / "state.json").read_bytes()
        with pytest.raises(StateError, match="resources"):
            await commit.put(address, resource(kind=kind, rid="cp2"))
        with pytest.raises(StateError):  # nothing more after a refused write
            await commit.open_intent("client_package.b", "ClientPackage", "sha256:x", {})
    assert (tmp_path / "state.json").read_bytes() == before
    assert commit.unrecorded == [(address, "cp2")]


async def test_a_pending_create_whose_kind_does_not_match_its_address_is_never_opened(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    state = store.load().for_target(TARGET)
    async with Committer(store, state) as commit:
        with pytest.raises(StateError, match="pending"):
            await commit.open_intent("client_package.a", "CatalogPackage", "sha256:x", {})
    assert not (tmp_path / "state.json").exists()

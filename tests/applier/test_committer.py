"""The committer (reconciler/applier/commit.py) on a real state file: a pending create is on disk
before open_intent returns, a result and the pending record it settles go in one write, a
second create of one address is refused while the first is pending, results that arrive together
share writes, and a write that fails (another run wrote the state meanwhile) stops everything,
keeping what vcita acknowledged and no write could record."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from reconciler.applier.commit import Committer
from reconciler.core.errors import StateError
from reconciler.state.store import ResourceState, State, StateStore, utc_now

pytestmark = pytest.mark.anyio


def _record(rid: str) -> ResourceState:
    return ResourceState(kind="CatalogPackage", id=rid, fingerprint="sha256:" + rid, applied={"name": rid},
                         updated_at=utc_now())


def _on_disk(store: StateStore) -> dict:  # type: ignore[type-arg]
    return json.loads(store.path.read_text())


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state.json")


async def test_a_pending_create_is_on_disk_before_open_intent_returns(store: StateStore) -> None:
    async with Committer(store, store.load()) as commit:
        intent = await commit.open_intent("catalog_package.a", "CatalogPackage", "sha256:x", {"name": "A"})
        pending = _on_disk(store)["pending"]
        assert list(pending) == [intent]
        assert pending[intent]["address"] == "catalog_package.a"
        assert pending[intent]["details"] == {"name": "A"}
        # A second create of the same address is refused while the first one's outcome is unknown.
        with pytest.raises(StateError, match="already pending"):
            await commit.open_intent("catalog_package.a", "CatalogPackage", "sha256:x", {})
        # The result and the pending record it settles: one write, both on disk when put returns.
        writes = commit.writes
        await commit.put("catalog_package.a", _record("pkg1"), settles=intent)
        disk = _on_disk(store)
        assert disk["pending"] == {}
        assert disk["resources"]["catalog_package.a"]["id"] == "pkg1"
        assert commit.writes == writes + 1
    # What the committer holds is what is on disk (a fresh load sees the same).
    assert store.load().resources["catalog_package.a"].id == "pkg1"


async def test_results_that_arrive_together_share_writes(store: StateStore) -> None:
    async with Committer(store, store.load()) as commit:
        await asyncio.gather(*(commit.put(f"catalog_package.p{i}", _record(f"id{i}")) for i in range(50)))
        assert commit.writes < 50
    assert sorted(r.id for r in store.load().resources.values()) == sorted(f"id{i}" for i in range(50))


async def test_a_failed_write_stops_everything_and_keeps_what_it_could_not_record(store: StateStore) -> None:
    state = store.write(State.new(), expected_serial=0)
    async with Committer(store, state) as commit:
        await commit.put("catalog_package.a", _record("first"))
        # Another run writes the state meanwhile (it did not hold the lock: a broken setup).
        other = StateStore(store.path)
        other.write(other.load().replace(resources={}), expected_serial=other.load().serial)
        with pytest.raises(StateError):
            await commit.put("catalog_package.b", _record("second"))
        assert commit.failed is not None
        # Nothing more is opened (no create may be sent), and what vcita acknowledged is kept.
        with pytest.raises(StateError):
            await commit.open_intent("catalog_package.c", "CatalogPackage", "sha256:y", {})
        with pytest.raises(StateError):
            await commit.put("catalog_package.d", _record("third"))
        assert commit.unrecorded == [("catalog_package.b", "second"), ("catalog_package.d", "third")]
    # The other run's state was not overwritten.
    assert store.load().resources == {}


async def test_a_pending_create_is_found_wherever_it_is_queued_written_or_moved(store: StateStore) -> None:
    """The committer finds an address's pending records through an index of the state's: a record
    queued for the next write or in the write under way (not refused before: it was in neither the
    state nor the queue), one on disk, one a move carried to another address, and none once it is
    settled or closed."""
    def again(address: str) -> asyncio.Task[str]:
        return asyncio.ensure_future(commit.open_intent(address, "CatalogPackage", "sha256:z", {}))

    async with Committer(store, store.load()) as commit:
        first = asyncio.ensure_future(commit.open_intent("catalog_package.a", "CatalogPackage", "sha256:x", {}))
        await asyncio.sleep(0)  # queued, its write not yet done
        with pytest.raises(StateError, match="already pending"):
            await again("catalog_package.a")
        intent = await first  # on disk now
        with pytest.raises(StateError, match="already pending"):
            await again("catalog_package.a")
        await commit.put("catalog_package.a", _record("pkg1"))  # tracked, its create still pending
        await commit.record(lambda st: st.move("catalog_package.a", "catalog_package.b"))
        assert [pc.address for pc in commit.state.pending.values()] == ["catalog_package.b"]
        with pytest.raises(StateError, match="already pending"):
            await again("catalog_package.b")
        await again("catalog_package.a")  # no longer pending there: opened
        await commit.settle_intent(intent)
        later = await again("catalog_package.b")  # settled: a new create of b may be recorded
        commit.close_intent(later, "failed")
        await commit.record(lambda st: st)
        assert {pc.address for pc in store.load().pending.values()} == {"catalog_package.a"}

"""The state file: models, round trip, serial and lineage checks, atomicity, modes, damaged files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError
from state_helpers import OTHER, TARGET, resource

from reconciler.core.errors import StateError
from reconciler.state.store import ResourceState, State, StateStore, TargetRef, state_dir_for


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / ".reconciler" / "state.json")


def written(store: StateStore) -> State:
    """A state with two resources, written once (serial 1)."""
    st = (State.new(TARGET)
          .with_resource("catalog_package.piano-10", resource("CatalogPackage", "cp1", name="Piano 10"))
          .with_resource("client_package.alice-10", resource()))
    return store.write(st, expected_serial=0)


# --- models -----------------------------------------------------------------------------------


def test_new_state_is_empty_with_fresh_lineage() -> None:
    a, b = State.new(), State.new(TARGET)
    assert a.serial == 0 and a.resources == {} and a.target is None and b.target == TARGET
    assert a.lineage != b.lineage and len(a.lineage) == 32


def test_helpers_return_new_objects() -> None:
    st = State.new()
    st2 = st.with_resource("client_package.a", resource())
    assert st.resources == {} and list(st2.resources) == ["client_package.a"]
    assert st2.without("client_package.a").resources == {} and "client_package.a" in st2.resources
    assert st2.without("client_package.nope") == st2
    with pytest.raises(ValidationError):
        st.serial = 3


@pytest.mark.parametrize("address", ["client_package.A", "package.a", "client_package.", "catalog_package.a"])
def test_addresses_are_validated_against_kind(address: str) -> None:
    with pytest.raises(ValidationError):
        State.new().with_resource(address, resource("ClientPackage"))


@pytest.mark.parametrize("bad", [{"price": float("nan")}, {"when": object()}, {"price": {1: 2}}])
def test_applied_must_be_plain_json(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ResourceState(kind="ClientPackage", id="x", fingerprint="f", applied=bad, updated_at="2025-01-01T00:00:00Z")


@pytest.mark.parametrize("when", ["2025-01-01T00:00:00", "yesterday", "2025-01-01T01:00:00+01:00"])
def test_updated_at_must_be_utc_iso(when: str) -> None:
    with pytest.raises(ValidationError):
        ResourceState(kind="ClientPackage", id="x", fingerprint="f", applied={}, updated_at=when)


def test_for_target_binds_once() -> None:
    st = State.new().for_target(TARGET)
    assert st.target == TARGET and st.for_target(TARGET) is st
    assert TargetRef(gateway_url=TARGET.gateway_url + "/", business_id="biz1") == TARGET
    with pytest.raises(StateError, match=r"belongs to business biz1 .* this run targets business biz2"):
        st.for_target(OTHER)


# --- locating ---------------------------------------------------------------------------------


def test_state_dir_for(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.yaml").write_text("")
    assert state_dir_for([]) == Path("manifests/.reconciler")
    assert state_dir_for([tmp_path / "m"]) == tmp_path / "m" / ".reconciler"
    assert state_dir_for([str(tmp_path / "m" / "a.yaml"), str(tmp_path)]) == tmp_path / "m" / ".reconciler"
    assert state_dir_for(["not-there/x.yml"]) == Path("not-there/.reconciler")
    assert StateStore.locate([], "elsewhere/prod.json").path == Path("elsewhere/prod.json")


def test_sibling_names_follow_the_state_file(tmp_path: Path) -> None:
    default = StateStore(tmp_path / "state.json")
    assert (default.lock_path.name, default.journal_path.name, default.backup_path.name) == (
        "state.lock", "journal.jsonl", "state.json.backup")
    prod = StateStore(tmp_path / "prod.json")
    assert (prod.lock_path.name, prod.journal_path.name) == ("prod.lock", "prod.journal.jsonl")


# --- load and write ---------------------------------------------------------------------------


def test_missing_file_loads_empty_and_writes_nothing(store: StateStore) -> None:
    st = store.load()
    assert st.serial == 0 and st.resources == {}
    assert not store.dir.exists()


def test_round_trip(store: StateStore) -> None:
    st = written(store)
    assert store.load() == st
    assert st.serial == 1


def test_file_is_stable_json(store: StateStore) -> None:
    """The same state always gives the same text, whatever order its resources were added in."""
    st = written(store)
    text = store.path.read_text()
    assert json.loads(text)["serial"] == 1 and text.endswith("}\n")
    assert text.index('"catalog_package.piano-10"') < text.index('"client_package.alice-10"')
    shuffled = st.model_copy(update={"resources": dict(reversed(list(st.resources.items())))})
    assert shuffled.to_json() == st.to_json()
    store.write(store.load(), expected_serial=1)
    assert store.path.read_text() == text.replace('"serial": 1', '"serial": 2')
    assert st.lineage in text


def test_serial_grows_and_backup_keeps_previous(store: StateStore) -> None:
    st = written(store)
    first = store.path.read_bytes()
    st2 = store.write(st.without("client_package.alice-10"), expected_serial=st.serial)
    assert st2.serial == 2 and store.load().serial == 2
    assert store.backup_path.read_bytes() == first
    st3 = store.write(st2, expected_serial=2)
    assert st3.serial == 3 and json.loads(store.backup_path.read_text())["serial"] == 2


def test_modes_are_0600(store: StateStore) -> None:
    st = written(store)
    store.write(st, expected_serial=1)
    assert mode(store.path) == 0o600 and mode(store.backup_path) == 0o600


def test_atomic_write_leaves_no_temp_files(store: StateStore) -> None:
    st = written(store)
    for _ in range(5):
        st = store.write(st, expected_serial=st.serial)
    assert sorted(p.name for p in store.dir.iterdir()) == ["state.json", "state.json.backup"]


def test_write_refused_when_someone_else_wrote(store: StateStore) -> None:
    st = written(store)
    store.write(st, expected_serial=1)  # another run
    before = store.path.read_bytes()
    with pytest.raises(StateError, match=r"changed since it was read \(serial 2 on disk, expected 1\)"):
        store.write(st, expected_serial=1)
    other = State.new()
    with pytest.raises(StateError, match="is another state"):
        store.write(other, expected_serial=2)
    assert store.path.read_bytes() == before


def test_a_store_rereads_a_file_changed_behind_its_back(store: StateStore) -> None:
    # The store remembers what it wrote (to skip re-parsing it); a file another process or a
    # person changed since must still be read and refused.
    st = store.write(written(store), expected_serial=1)
    other = StateStore(store.path)
    other.write(other.load(), expected_serial=2)  # another run, another store
    with pytest.raises(StateError, match=r"serial 3 on disk, expected 2"):
        store.write(st, expected_serial=2)
    store.path.write_text(store.path.read_text().replace(st.lineage, "0" * len(st.lineage)))
    with pytest.raises(StateError, match="is another state"):
        store.write(st, expected_serial=3)


def test_write_refused_when_file_vanished(store: StateStore) -> None:
    st = written(store)
    store.path.unlink()
    with pytest.raises(StateError, match="has disappeared"):
        store.write(st, expected_serial=1)
    assert not store.path.exists()


def test_first_write_refused_when_a_file_appeared(store: StateStore) -> None:
    mine = State.new(TARGET)
    written(store)  # someone else created the state meanwhile
    with pytest.raises(StateError, match="another state"):
        store.write(mine, expected_serial=0)


def test_check_target(store: StateStore) -> None:
    st = written(store)
    store.check_target(st, TARGET)
    store.check_target(State.new(), OTHER)  # no target yet: fits any
    with pytest.raises(StateError) as e:
        store.check_target(st, OTHER)
    assert str(store.path) in e.value.message and "biz1" in e.value.message and "biz2" in e.value.message
    assert "--state" in (e.value.hint or "")


# --- damaged files ----------------------------------------------------------------------------

VALID = {"format_version": 1, "lineage": "0" * 32, "serial": 1, "target": None, "resources": {}}

DAMAGED = [
    pytest.param(b"", "empty", id="empty"),
    pytest.param(b'{"format_version": 1, "lineage": "00', "not valid JSON .* line 1 column", id="truncated"),
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not UTF-8 text .* binary", id="binary"),
    pytest.param(b"[1, 2]", "JSON list, not an object", id="list"),
    pytest.param(json.dumps({**VALID, "format_version": 3}).encode(), "newer reconciler", id="newer"),
    pytest.param(json.dumps({**VALID, "format_version": "1"}).encode(), "'1' is not supported", id="version-str"),
    pytest.param(json.dumps({**VALID, "format_version": True}).encode(), "True is not supported", id="version-bool"),
    pytest.param(json.dumps({k: v for k, v in VALID.items() if k != "format_version"}).encode(),
                 "no format_version", id="no-version"),
    pytest.param(json.dumps({**VALID, "serial": -1}).encode(), "serial: Input should be greater", id="serial"),
    pytest.param(json.dumps({**VALID, "extra": 1}).encode(), "extra: Extra inputs", id="extra-field"),
    pytest.param(json.dumps({**VALID, "resources": {"client_package.a": {"kind": "ClientPackage"}}}).encode(),
                 r"resources.client_package.a.id: Field required", id="resource-missing-fields"),
    pytest.param(json.dumps({**VALID, "resources": {"client_package.a": resource("CatalogPackage").model_dump()}})
                 .encode(), "kind CatalogPackage does not match", id="kind-mismatch"),
]


@pytest.mark.parametrize(("data", "message"), DAMAGED)
def test_damaged_files_are_refused_and_left_alone(store: StateStore, data: bytes, message: str) -> None:
    store.dir.mkdir(parents=True)
    store.path.write_bytes(data)
    with pytest.raises(StateError, match=message) as e:
        store.load()
    assert str(store.path) in e.value.message and e.value.hint
    with pytest.raises(StateError):  # a write over a damaged file is refused too
        store.write(State.new(), expected_serial=1)
    assert store.path.read_bytes() == data
    assert sorted(os.listdir(store.dir)) == ["state.json"]


def test_damaged_file_hint_points_at_backup(store: StateStore) -> None:
    st = written(store)
    store.write(st, expected_serial=1)
    store.path.write_bytes(store.path.read_bytes()[:40])
    with pytest.raises(StateError) as e:
        store.load()
    assert "state.json.backup" in (e.value.hint or "")


def test_state_path_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="is a directory"):
        StateStore(tmp_path).load()


def test_unwritable_places_are_state_errors(tmp_path: Path) -> None:
    from reconciler.state.journal import Journal
    from reconciler.state.store import StateLock, unlock

    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StateError, match="cannot read the state file"):
        StateStore(tmp_path / "file" / "state.json").write(State.new(), expected_serial=0)
    with pytest.raises(StateError, match="cannot create the folder of the state lock"):
        StateLock(tmp_path / "file").acquire()
    with pytest.raises(StateError, match="cannot read the journal"):
        Journal(tmp_path / "file").open_intent("client_package.a", "ClientPackage", "d", {})
    with pytest.raises(StateError, match="cannot read the state lock"):
        unlock(tmp_path / "file", "abcd")


def test_a_backup_left_without_its_state_is_moved_aside_never_overwritten(store: StateStore) -> None:
    # The state file is lost; whoever writes a new state there (a library caller, 'state pull'
    # into the missing file) must not let the new state's second write link over the backup, the
    # last record of what the lost state tracked.
    first = written(store)
    store.write(first.with_resource("client_package.bob-10", resource(rid="cp9")), expected_serial=1)
    lost = store.backup_path.read_bytes()
    assert b"alice-10" in lost
    store.path.unlink()
    fresh = StateStore(store.path)
    new = fresh.write(State.new(TARGET), expected_serial=0)
    fresh.write(new.with_resource("catalog_package.piano-10", resource("CatalogPackage", "cp1", name="Piano 10")),
                expected_serial=1)
    kept = sorted(store.path.parent.glob("state.json.backup.orphaned-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == lost
    assert store.backup_path.read_bytes() != lost  # the new state's own backup, beside the kept one
    assert fresh.load().lineage == new.lineage


def test_a_first_write_without_a_backup_sets_nothing_aside(store: StateStore) -> None:
    written(store)
    assert not list(store.path.parent.glob("*orphaned*")) and not store.backup_path.exists()

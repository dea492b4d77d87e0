"""The write-ahead journal: intents, torn lines, corruption, kill -9 mid-append, forget, compaction."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.core.errors import StateError
from reconciler.state.journal import Intent, Journal
from reconciler.state.store import StateStore

Spawn = Callable[..., "subprocess.Popen[str]"]
DETAILS = {"client_email": "alice@example.com", "client_id": "c1", "package_name": "Piano 10", "package_id": "p1"}


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / ".reconciler")


def test_open_and_close(journal: Journal) -> None:
    assert journal.open_intents() == [] and not journal.path.exists()  # reading creates nothing
    a = journal.open_intent("client_package.alice-10", "ClientPackage", "sha256:aa", DETAILS)
    b = journal.open_intent("catalog_package.piano-10", "CatalogPackage", "sha256:bb", {"name": "Piano 10"})
    [ia, ib] = journal.open_intents()
    assert (ia.id, ia.address, ia.kind, ia.request_digest, ia.details) == (
        a, "client_package.alice-10", "ClientPackage", "sha256:aa", DETAILS)
    assert ib.id == b and ia.opened_at.endswith("Z")
    journal.close_intent(a, "created", "uid-1")
    assert [i.id for i in journal.open_intents()] == [b]
    journal.close_intent(b, "failed")
    assert journal.open_intents() == []
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    lines = [json.loads(x) for x in journal.path.read_text().splitlines()]
    assert [r["op"] for r in lines] == ["open", "open", "close", "close"] and lines[2]["remote_id"] == "uid-1"


def test_journal_sits_beside_its_state(tmp_path: Path) -> None:
    assert Journal.for_state(StateStore(tmp_path / "state.json")).path == tmp_path / "journal.jsonl"
    assert Journal.for_state(StateStore(tmp_path / "prod.json")).path == tmp_path / "prod.journal.jsonl"


def test_second_intent_for_same_address_is_refused(journal: Journal) -> None:
    journal.open_intent("client_package.a", "ClientPackage", "d", DETAILS)
    with pytest.raises(StateError, match="already pending") as e:
        journal.open_intent("client_package.a", "ClientPackage", "d", DETAILS)
    assert "forget-intent" in (e.value.hint or "") and "reconciler import" in (e.value.hint or "")


def test_close_unknown_or_closed_intent_is_refused(journal: Journal) -> None:
    i = journal.open_intent("client_package.a", "ClientPackage", "d", DETAILS)
    journal.close_intent(i, "created", "u")
    with pytest.raises(StateError, match=r"not open|no open intent"):
        journal.close_intent(i, "created", "u")
    with pytest.raises(StateError):
        journal.close_intent("nope", "failed")


@pytest.mark.parametrize("details", [{"staff_token": "x"}, {"Authorization": "Bearer x"}, {"when": object()}])
def test_details_never_hold_credentials_or_non_json(journal: Journal, details: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        journal.open_intent("client_package.a", "ClientPackage", "d", details)
    assert not journal.path.exists()


def test_address_must_match_kind(journal: Journal) -> None:
    with pytest.raises(ValueError):
        journal.open_intent("catalog_package.a", "ClientPackage", "d", {})


def test_torn_last_line_is_ignored_then_cut(journal: Journal) -> None:
    a = journal.open_intent("client_package.a", "ClientPackage", "d", DETAILS)
    good = journal.path.read_bytes()
    journal.path.write_bytes(good + b'{"op":"open","id":"torn","address":"client_pa')
    assert [i.id for i in journal.open_intents()] == [a]
    b = journal.open_intent("client_package.b", "ClientPackage", "d", DETAILS)  # cuts the torn tail
    assert journal.path.read_bytes().startswith(good) and b"torn" not in journal.path.read_bytes()
    assert [i.id for i in journal.open_intents()] == [a, b]


def test_whole_record_without_newline_counts_as_torn(journal: Journal) -> None:
    journal.open_intent("client_package.a", "ClientPackage", "d", DETAILS)
    journal.path.write_bytes(journal.path.read_bytes().rstrip(b"\n"))
    assert journal.open_intents() == []  # its append never returned: its create was never sent


@pytest.mark.parametrize(("middle", "message"), [
    (b"garbage\n", "line 2: it is not a JSON record"),
    (b'{"op":"delete","id":"x"}\n', 'line 2: it is not an "open" or "close" record'),
    (b'{"op":"close","id":"nobody","outcome":"created","remote_id":null,"at":"t"}\n', "line 2: .*not open"),
    (b'{"op":"close","id":"x","outcome":"maybe","at":"t"}\n', "line 2: outcome"),
])
def test_corruption_in_the_middle_is_refused(journal: Journal, middle: bytes, message: str) -> None:
    journal.open_intent("client_package.a", "ClientPackage", "d", DETAILS)
    first = journal.path.read_bytes()
    journal.open_intent("client_package.b", "ClientPackage", "d", DETAILS)
    data = first + middle + journal.path.read_bytes()[len(first):]
    journal.path.write_bytes(data)
    with pytest.raises(StateError, match=message) as e:
        journal.open_intents()
    assert str(journal.path) in e.value.message and e.value.hint
    with pytest.raises(StateError):
        journal.open_intent("client_package.c", "ClientPackage", "d", DETAILS)
    with pytest.raises(StateError):
        journal.compact()
    assert journal.path.read_bytes() == data


def test_survives_kill_9_mid_append(tmp_path: Path, spawn: Spawn) -> None:
    folder = tmp_path / ".reconciler"
    p = spawn("journal-loop", str(folder), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while not (folder / "journal.jsonl").exists() or (folder / "journal.jsonl").stat().st_size < 200_000:
        assert time.monotonic() < deadline and p.poll() is None, "the writer did not get going"
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    intents = Journal(folder).open_intents()
    numbers = [int(i.address.removeprefix("client_package.c")) for i in intents]
    assert numbers and numbers == sorted(numbers)
    # Even intents stay open by design; an odd one only if the kill fell between its open and close.
    assert all(n % 2 == 0 for n in numbers[:-1])
    assert len(intents) >= 10
    # The journal is still writable after the crash, and consistent.
    Journal(folder).open_intent("client_package.after", "ClientPackage", "d", DETAILS)
    assert Journal(folder).open_intents()[-1].address == "client_package.after"


def test_forget(journal: Journal) -> None:
    a = journal.open_intent("client_package.a", "ClientPackage", "d", DETAILS)
    forgotten = journal.forget("client_package.a")
    assert isinstance(forgotten, Intent) and forgotten.id == a and forgotten.details == DETAILS
    assert journal.open_intents() == []
    assert json.loads(journal.path.read_text().splitlines()[-1])["outcome"] == "forgotten"
    with pytest.raises(StateError, match=r"no pending create of client_package\.a"):
        journal.forget("client_package.a")


def test_compact_keeps_only_open_intents(journal: Journal) -> None:
    ids = [journal.open_intent(f"client_package.n{i}", "ClientPackage", f"d{i}", {"i": i}) for i in range(4)]
    journal.close_intent(ids[0], "created", "u0")
    journal.close_intent(ids[2], "imported", "u2")
    before = journal.open_intents()
    journal.compact()
    assert journal.open_intents() == before and len(journal.path.read_text().splitlines()) == 2
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    journal.close_intent(ids[1], "failed")
    journal.close_intent(ids[3], "created", "u3")
    journal.compact()
    assert journal.path.read_bytes() == b"" and journal.open_intents() == []
    assert sorted(p.name for p in journal.path.parent.iterdir()) == ["journal.jsonl"]  # no temp files left


def test_compact_without_a_journal_creates_nothing(journal: Journal) -> None:
    journal.compact()
    assert not journal.path.parent.exists()


def test_each_instance_sees_what_another_wrote(journal: Journal) -> None:
    other = Journal(journal.path.parent)
    a = journal.open_intent("client_package.a", "ClientPackage", "d", DETAILS)
    assert [i.id for i in other.open_intents()] == [a]
    other.close_intent(a, "created", "u")
    assert journal.open_intents() == []
    b = other.open_intent("client_package.b", "ClientPackage", "d", DETAILS)
    other.compact()
    assert [i.id for i in journal.open_intents()] == [b]



def test_open_many_and_close_many_are_all_or_nothing(journal: Journal) -> None:
    reqs = [{"address": f"client_package.n{i}", "kind": "ClientPackage", "request_digest": f"d{i}",
             "details": {"i": i}} for i in range(3)]
    ids = journal.open_many(reqs)
    assert [i.id for i in journal.open_intents()] == ids and len(set(ids)) == 3
    data = journal.path.read_bytes()
    with pytest.raises(StateError, match=r"client_package\.n1 is already pending"):
        journal.open_many([{**reqs[0], "address": "client_package.new"}, reqs[1]])
    with pytest.raises(StateError, match=r"client_package\.x is already pending"):
        journal.open_many([{**reqs[0], "address": "client_package.x"}] * 2)
    with pytest.raises(StateError, match="no open intent nope"):
        journal.close_many([(ids[0], "created", "u0"), ("nope", "failed", None)])
    with pytest.raises(ValueError):
        journal.close_many([(ids[0], "maybe", None)])
    assert journal.path.read_bytes() == data
    journal.close_many([(ids[0], "created", "u0"), (ids[2], "failed", None)])
    assert [i.id for i in journal.open_intents()] == [ids[1]]

"""The second memory end to end (issue 18): vcita's payment requests find the client packages the
state does not know, against the served sandbox through the CLI.

* a state restored from an older copy of the same lineage (apply the catalog, keep that state,
  apply everything, put the older state back) plans no client package twice: the plan refuses and
  names ``reconciler import --discover``, which adopts all eight in one write;
* a create whose answer was lost is adopted by the next plan, no request sent; when it cannot be
  found (a package of price 0 that opened no payment request, a list that lags) the plan says
  where and since when it searched, and nothing is created until a person decides.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
CREATE = "/platform/v1/payment/client_packages"
LIST = "/business/payments/v1/payment_requests"
CP_GET = "/business/payments/v1/client_packages/{uid}"


def _state_file(workdir: Path) -> Path:
    return workdir / "manifests" / ".reconciler" / "state.json"


def _one_each(operator: Any, demo: dict[str, Any]) -> int:
    pairs = Counter((cp["client_id"], cp["package_id"]) for cp in client_packages(operator, demo))
    assert max(pairs.values(), default=1) == 1, f"a client was billed twice: {pairs.most_common(3)}"
    return sum(pairs.values())


def _hits(stats: dict[str, Any], route: str) -> int:
    return sum(r["count"] for r in stats["requests"] if r["route"] == route)


def _list_hits(operator: Any) -> int:
    rows = operator("GET", "/stats")["requests"]
    return sum(r["count"] for r in rows if r["route"] == LIST)


def test_a_state_restored_from_an_older_copy_never_bills_twice(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve", "manifests/catalog-packages.yaml")[0] == 0
    older = workdir / "older-state.json"
    shutil.copy(_state_file(workdir), older)
    assert cli("apply", "--auto-approve")[0] == 0
    assert _one_each(operator, demo) == 8
    shutil.copy(older, _state_file(workdir))  # the older copy comes back (a rejected git push)

    code, out, err = cli("plan")
    assert code == 1, out + err
    assert "already exists in vcita as" in out + err and "would bill the client a second time" in out + err
    assert "reconciler import --discover" in out + err
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err
    assert _one_each(operator, demo) == 8  # nothing created

    code, out, err = cli("import", "--discover")
    assert code == 0, out + err
    assert "8 client package(s) adopted" in out
    state = json.loads(_state_file(workdir).read_text())
    assert len([a for a in state["resources"] if a.startswith("client_package.")]) == 8
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 0, out + err
    assert _one_each(operator, demo) == 8


def test_a_deliberate_second_sale_is_still_possible_with_repeat_purchase(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    clients = workdir / "manifests" / "client-packages.yaml"
    alice = clients.read_text().split("\n---\n")[0].replace("name: alice-piano", "name: alice-piano-renewal")
    clients.write_text(clients.read_text() + "\n---\n" + alice.rstrip("\n") + "\n  repeat_purchase: true\n")
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert len(client_packages(operator, demo)) == 9


def test_a_lost_answer_is_adopted_by_the_next_plan_without_a_request(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    operator("POST", "/faults", json={"method": "POST", "path": CREATE, "door": "*", "drop_after_commit": True,
                                      "times": 2})
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1 and "2 unknown" in out, out + err
    made = len(client_packages(operator, demo))
    assert made == 8  # the two lost answers were executed

    code, out, err = cli("plan", "--detailed-exitcode", "--format", "json")
    assert code == 2, out + err
    ops = json.loads(out)["operations"]
    adopted = [op for op in ops if op["op"] == "resolve_pending_create"]
    assert [op["resolution"] for op in adopted] == ["adopt", "adopt"]
    assert all(op["requests"] == [] for op in adopted)
    assert not [op for op in ops if op["op"] == "create_client_package"]
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert cli("plan", "--detailed-exitcode")[0] == 0
    assert _one_each(operator, demo) == 8
    assert json.loads(_state_file(workdir).read_text())["pending"] == {}


def test_a_free_package_that_opened_no_request_is_reported_not_recreated(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    operator("PUT", "/settings", json={"free_packages_open_no_request": True})
    clients = workdir / "manifests" / "client-packages.yaml"
    first = clients.read_text().split("\n---\n")[0]
    clients.write_text(first.rstrip("\n") + "\n  price: 0\n")  # only alice-piano, given away
    operator("POST", "/faults", json={"method": "POST", "path": CREATE, "door": "*", "drop_after_commit": True,
                                      "times": 1})
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err
    assert len(client_packages(operator, demo)) == 1
    code, out, err = cli("plan")
    assert code == 4, out + err
    assert "not found in vcita's payment requests (searched 0 of client" in out
    assert "Absence is only evidence" in out and "reconciler state forget-intent client_package.alice-piano" in out
    assert cli("apply", "--auto-approve")[0] == 1
    assert len(client_packages(operator, demo)) == 1  # never created again on its own
    # the person checks vcita, finds it, and imports it (the sandbox's operator stands in for the vcita UI)
    [cp] = client_packages(operator, demo)
    code, out, err = cli("import", "client_package.alice-piano", cp["id"])
    assert code == 0, out + err
    assert cli("plan", "--detailed-exitcode")[0] == 0


def test_a_lagging_list_finds_the_lost_package_once_it_caught_up(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    operator("PUT", "/settings", json={"payment_request_lag_seconds": 2})
    operator("POST", "/faults", json={"method": "POST", "path": CREATE, "door": "*", "drop_after_commit": True,
                                      "times": 1})
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err
    code, out, err = cli("plan")
    assert code == 4 and "not found in vcita's payment requests" in out, out + err
    time.sleep(2.1)
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 2 and "adopted" in out, out + err
    assert cli("apply", "--auto-approve")[0] == 0
    assert _one_each(operator, demo) == 8


def test_a_target_whose_list_refuses_falls_back_to_the_state_and_says_so(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    operator("POST", "/faults", json={"path": LIST, "door": "*", "status": 404})
    code, out, err = cli("plan")
    assert code == 0, out + err
    assert "checked against the state alone" in out + err
    assert "payment requests could not serve as a second memory" in out + err
    operator("DELETE", "/faults")
    operator("DELETE", "/stats")
    assert cli("plan")[0] == 0
    assert _list_hits(operator) == 1  # one business-wide walk for the eight creates (one short page)


SPRING = ("\n---\napiVersion: reconciler/v1\nkind: ClientPackageSet\nmetadata:\n  name: spring\nspec:\n"
          "  package: piano-10\n  valid_from: 2027-03-01\n  valid_for: 3M\n  clients:\n"
          "    - {email: isla.novak@example.com, booking_credits: [{services: [bop374z43h5xezh3], total_bookings: 12}]}\n")


def test_what_the_guard_adds_to_a_plan_is_counted_exactly(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    """A plan that creates a client package walks the business's client-package payment requests
    (pages of 100) and reads each package listed that the state does not track; a plan without
    such a create reads none of it."""
    assert cli("apply", "--auto-approve")[0] == 0
    # 150 packages assigned outside reconciler (the vcita UI), of a catalog package no manifest declares
    business = demo["business"]["id"]
    other = operator("POST", "/bulk/packages", json={"business_id": business, "count": 1})["ids"][0]
    operator("POST", "/bulk/client_packages", json={"business_id": business, "package_id": other, "count": 150})
    operator("DELETE", "/stats")
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 0, out + err
    stats = operator("GET", "/stats")
    assert (_list_hits(operator), _hits(stats, CP_GET)) == (0, 8)  # the refresh's reads of the tracked

    clients = workdir / "manifests" / "client-packages.yaml"
    clients.write_text(clients.read_text() + SPRING)  # one create, for isla
    operator("DELETE", "/stats")
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 2, out + err
    stats = operator("GET", "/stats")
    # 158 payment requests: pages of 100, 58 and 0 (58 is not shorter than 25, the spec's default
    # page size, which may be the server's own maximum); 8 tracked, read by the refresh and not
    # again; the 150 others read once each, to learn whose they are
    assert (_list_hits(operator), _hits(stats, CP_GET)) == (3, 8 + 150)


def test_a_lost_state_is_refused_then_rebuilt_by_import_discover(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    tracked = json.loads(_state_file(workdir).read_text())["resources"]
    # someone assigns a package no manifest declares in the vcita UI (the operator stands in for it)
    other = operator("POST", "/bulk/packages", json={"business_id": demo["business"]["id"], "count": 1})["ids"][0]
    outside = operator("POST", "/bulk/client_packages", json={"business_id": demo["business"]["id"],
                                                              "package_id": other, "count": 1})["ids"][0]
    shutil.rmtree(workdir / "manifests" / ".reconciler")  # a new clone without the state
    code, out, err = cli("plan")
    assert code == 1 and "the state does not know this business's past" in out + err, out + err
    assert "reconciler import --discover" in out + err
    code, out, err = cli("import", "--discover")
    assert code == 0, out + err
    assert "8 client package(s) adopted, 3 catalog package(s) in one state write" in out
    assert f"1 client package(s) in vcita match no manifest object (left alone):\n  {outside}:" in out
    rebuilt = json.loads(_state_file(workdir).read_text())["resources"]
    assert {a: r["id"] for a, r in rebuilt.items()} == {a: r["id"] for a, r in tracked.items()}
    assert cli("plan", "--detailed-exitcode")[0] == 0
    code, out, err = cli("import", "--discover")  # again: nothing left to adopt, nothing written
    assert code == 0 and "0 client package(s) adopted; the state was not changed" in out, out + err


def test_import_discover_leaves_an_identity_with_more_packages_than_objects_to_a_person(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    tracked = json.loads(_state_file(workdir).read_text())["resources"]
    alice = tracked["client_package.alice-piano"]["applied"]["client_id"]
    operator("POST", "/bulk/client_packages", json={"business_id": demo["business"]["id"], "client_ids": [alice],
                                                    "package_id": tracked["catalog_package.piano-10"]["id"], "count": 1})
    shutil.rmtree(workdir / "manifests" / ".reconciler")
    code, out, err = cli("import", "--discover")
    assert code == 0, out + err
    assert "client_package.alice-piano: 2 client packages match" in out and "not adopted" in out
    assert "7 client package(s) adopted, 3 catalog package(s) in one state write" in out
    code, out, err = cli("plan")  # alice's create is refused: two of her piano packages exist in vcita
    assert code == 1 and "2 client packages of the client" in out + err, out + err


def test_import_discover_refuses_arguments_and_a_target_without_the_list(
        workdir: Path, cli: CLI, operator: Any) -> None:
    code, out, err = cli("import", "--discover", "client_package.alice-piano", "x")
    assert code == 1 and "--discover takes no ADDRESS" in out + err
    operator("POST", "/faults", json={"path": LIST, "door": "*", "status": 404})
    code, out, err = cli("import", "--discover")
    assert code == 1 and "payment request list cannot be read as the spec describes it" in out + err
    assert not _state_file(workdir).exists() or json.loads(_state_file(workdir).read_text())["resources"] == {}

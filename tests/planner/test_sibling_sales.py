"""The second-sale rule between the new manifest objects of one plan (``planner/siblings.py``).

A copy of a client-package manifest (a new name, the same client and catalog package, nothing that
tells them apart, no ``repeat_purchase``) used to be created along with the original on a first
plan, and refused on a plan resumed after the original was created.  Each case here plans the
same manifests against the states an apply may leave behind, and checks the verdicts agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from plancases import run_case

from reconciler.plan.operations import CreateClientPackage

CATALOG = """apiVersion: reconciler/v1
kind: CatalogPackage
metadata: {name: piano}
spec: {name: Piano, price: 540, currency: USD, expiration: 6, expiration_unit: M,
       items: [{total_bookings: 10, services: [svc1]}]}
"""
PIANO = {"id": "pkg1", "name": "Piano", "price": "540", "currency": "USD", "expiration": "6", "expiration_unit": "m",
         "products": [], "items": [{"total_bookings": "10", "services": [{"id": "svc1"}]}]}
PIANO_STATE = {"id": "pkg1"}


def cp(name: str, client: str = "cli1", package: str = "piano", **spec: Any) -> str:
    """A ClientPackage document (``package`` a manifest name, or ``{id: ...}`` text)."""
    extra = "".join(f", {k}: {v}" for k, v in spec.items())
    return (f"apiVersion: reconciler/v1\nkind: ClientPackage\nmetadata: {{name: {name}}}\n"
            f"spec: {{client: {client}, package: {package}{extra}}}\n")


def docs(*texts: str) -> str:
    return "---\n".join(texts)


def remote_cp(rid: str, client: str = "cli1", package: str = "pkg1", valid_from: str = "2026-11-01",
              price: str = "540") -> dict[str, Any]:
    return {"id": rid, "active": "true", "amount": price, "client_id": client, "package_id": package,
            "currency": "USD", "valid_from": valid_from, "valid_until": "2027-05-01", "booking_credits": []}


def applied(client: str = "cli1", package: str = "pkg1", valid_from: str = "2026-11-01",
            price: str = "540") -> dict[str, Any]:
    """What a record's ``applied`` holds of a client package (its identity's fields)."""
    return {"client_id": client, "package_id": package, "valid_from": valid_from, "price": price}


def plan_of(tmp_path: Path, manifests: str | dict[str, str], *, state: dict[str, Any] | None = None,
            client_packages: dict[str, Any] | None = None, catalog_tracked: bool = True, **case: Any) -> Any:
    state = {**({"catalog_package.piano": PIANO_STATE} if catalog_tracked else {}), **(state or {})}
    remote = {"catalog_packages": [PIANO], "client_packages": client_packages or {}, "service_ids": ["svc1"],
              **case.pop("remote", {})}
    return run_case({"manifests": manifests, "state": state, "remote": remote, **case}, tmp_path)


def creates(p: Any) -> list[str]:
    return [op.address for op in p.operations if isinstance(op, CreateClientPackage)]


def second_sales(p: Any) -> dict[str, str]:
    """address -> message of each error that refuses a second sale."""
    return {pr.address: pr.message for pr in p.problems
            if pr.severity == "error" and "a second sale of this package to this client" in pr.message}


def test_a_copy_of_a_new_manifest_is_refused_located_and_the_first_is_the_sale(tmp_path: Path) -> None:
    p = plan_of(tmp_path, {"catalog.yaml": CATALOG, "alice-lessons.yaml": cp("alice-lessons"),
                           "alice-lessons-2.yaml": cp("alice-lessons-2", booking_credits="[{services: [svc1], "
                                                                                         "total_bookings: 12}]")})
    assert creates(p) == ["client_package.alice-lessons"]
    refused = second_sales(p)
    assert list(refused) == ["client_package.alice-lessons-2"]
    message = refused["client_package.alice-lessons-2"]
    assert message.startswith(f"declared at {tmp_path / 'alice-lessons-2.yaml'}:1: the same client cli1 and "
                              "catalog package pkg1 as client_package.alice-lessons "
                              f"({tmp_path / 'alice-lessons.yaml'}:1), also new in this plan: a second sale"), message
    hint = next(pr.hint for pr in p.problems if pr.address == "client_package.alice-lessons-2")
    assert "repeat_purchase: true" in hint and "valid_from" in hint and "remove the copy" in hint
    # nothing is planned for the copy: no create, no credits, no payment request
    assert [op.address for op in p.operations if op.address == "client_package.alice-lessons-2"] == []
    assert p.payment_requests.count == 1
    assert p.errors  # apply refuses a plan with errors
    assert type(p).from_json(p.to_json()) == p


def test_the_verdict_does_not_depend_on_which_copy_an_interrupted_apply_created(tmp_path: Path) -> None:
    manifests = docs(CATALOG, cp("alice-lessons"), cp("alice-lessons-2"))
    fresh = plan_of(tmp_path, manifests)
    assert list(second_sales(fresh)) == ["client_package.alice-lessons-2"]
    for done in ("client_package.alice-lessons", "client_package.alice-lessons-2"):
        resumed = plan_of(tmp_path, manifests, state={done: {"id": "cp1", "applied": applied()}},
                          client_packages={"cp1": remote_cp("cp1")})
        assert creates(resumed) == [], done
        assert len(second_sales(resumed)) == 1 and resumed.errors, done


def test_three_copies_one_sale_two_refusals(tmp_path: Path) -> None:
    p = plan_of(tmp_path, docs(CATALOG, cp("c"), cp("a"), cp("b")))
    assert creates(p) == ["client_package.a"]
    refused = second_sales(p)
    assert sorted(refused) == ["client_package.b", "client_package.c"]
    assert all("as client_package.a (" in m for m in refused.values())


@pytest.mark.parametrize("flagged", ["alice-a", "alice-b"])
def test_one_copy_flagged_is_a_declared_second_sale_in_every_order(tmp_path: Path, flagged: str) -> None:
    """The unflagged one is the sale, the flagged one a repeat: both are created, on a first plan
    and on a plan resumed after either was created."""
    other = "alice-b" if flagged == "alice-a" else "alice-a"
    manifests = docs(CATALOG, cp(flagged, repeat_purchase="true"), cp(other))
    fresh = plan_of(tmp_path, manifests)
    assert sorted(creates(fresh)) == ["client_package.alice-a", "client_package.alice-b"] and not fresh.errors
    assert fresh.payment_requests.count == 2
    for done, left in ((flagged, other), (other, flagged)):
        resumed = plan_of(tmp_path, manifests, state={f"client_package.{done}": {"id": "cp1", "applied": applied()}},
                          client_packages={"cp1": remote_cp("cp1")})
        assert creates(resumed) == [f"client_package.{left}"] and not resumed.errors, (done, resumed.problems)


def test_a_second_unflagged_copy_beside_a_tracked_repeat_is_still_refused(tmp_path: Path) -> None:
    """One sale without repeat_purchase, whatever the state holds: the tracked original (unflagged)
    refuses a new unflagged copy even when a flagged repeat is tracked too."""
    manifests = docs(CATALOG, cp("alice-a"), cp("alice-b", repeat_purchase="true"), cp("alice-c"))
    p = plan_of(tmp_path, manifests,
                state={"client_package.alice-a": {"id": "cp1", "applied": applied()},
                       "client_package.alice-b": {"id": "cp2", "applied": applied()}},
                client_packages={"cp1": remote_cp("cp1"), "cp2": remote_cp("cp2")})
    assert creates(p) == [] and list(second_sales(p)) == ["client_package.alice-c"]
    assert "client_package.alice-a (cp1)" in second_sales(p)["client_package.alice-c"]
    # and on a first plan: a is the sale, b a repeat, c refused
    fresh = plan_of(tmp_path, manifests)
    assert creates(fresh) == ["client_package.alice-a", "client_package.alice-b"]
    assert list(second_sales(fresh)) == ["client_package.alice-c"]


def test_two_flagged_copies_are_two_sales_as_declared(tmp_path: Path) -> None:
    p = plan_of(tmp_path, docs(CATALOG, cp("a", repeat_purchase="true"), cp("b", repeat_purchase="true")))
    assert creates(p) == ["client_package.a", "client_package.b"] and not p.errors
    assert p.payment_requests.count == 2


def test_a_declared_valid_from_or_price_tells_copies_apart_and_one_left_out_does_not(tmp_path: Path) -> None:
    apart = plan_of(tmp_path, docs(CATALOG, cp("a", valid_from="2027-01-01", price=500),
                                   cp("b", valid_from="2027-02-01"), cp("c", valid_from="2027-01-01", price=450)))
    assert creates(apart) == ["client_package.a", "client_package.b", "client_package.c"]
    assert not apart.errors
    # a price declared by one and a valid_from by the other: nothing both declare differs
    crossed = plan_of(tmp_path, docs(CATALOG, cp("a", valid_from="2027-01-01"), cp("b", price=450)))
    assert list(second_sales(crossed)) == ["client_package.b"]
    vague = plan_of(tmp_path, docs(CATALOG, cp("a", valid_from="2027-01-01"), cp("b")))
    assert creates(vague) == ["client_package.a"] and list(second_sales(vague)) == ["client_package.b"]
    priced = plan_of(tmp_path, docs(CATALOG, cp("a"), cp("b", price=500)))
    assert list(second_sales(priced)) == ["client_package.b"]


def test_compatibility_is_not_transitive_and_the_kept_sales_never_match_each_other(tmp_path: Path) -> None:
    """No valid_from is compatible with two different ones that are not compatible with each other."""
    first = plan_of(tmp_path, docs(CATALOG, cp("a"), cp("b", valid_from="2027-01-01"),
                                   cp("c", valid_from="2027-02-01")))
    assert creates(first) == ["client_package.a"] and sorted(second_sales(first)) == ["client_package.b",
                                                                                     "client_package.c"]
    last = plan_of(tmp_path, docs(CATALOG, cp("z"), cp("b", valid_from="2027-01-01"),
                                  cp("c", valid_from="2027-02-01")))
    assert creates(last) == ["client_package.b", "client_package.c"]
    assert list(second_sales(last)) == ["client_package.z"]
    assert "as client_package.b (" in second_sales(last)["client_package.z"]
    assert "client_package.c (" in second_sales(last)["client_package.z"]


def test_other_clients_and_other_packages_are_not_copies(tmp_path: Path) -> None:
    p = plan_of(tmp_path, docs(CATALOG, cp("a"), cp("b", client="cli2"), cp("c", package="{id: pkg2}")),
                remote={"catalog_packages": [PIANO, {**PIANO, "id": "pkg2", "name": "Other"}]})
    assert creates(p) == ["client_package.a", "client_package.b", "client_package.c"] and not p.errors


def test_a_package_named_and_the_same_package_by_id_are_copies(tmp_path: Path) -> None:
    p = plan_of(tmp_path, docs(CATALOG, cp("a"), cp("b", package="{id: pkg1}")))
    assert creates(p) == ["client_package.a"] and list(second_sales(p)) == ["client_package.b"]


def test_a_client_by_email_and_the_same_client_by_id_are_copies(tmp_path: Path) -> None:
    p = plan_of(tmp_path, docs(CATALOG, cp("a", client="{email: Alice@Example.com}"), cp("b")),
                remote={"clients_by_email": {"alice@example.com": "cli1"}})
    assert creates(p) == ["client_package.a"] and list(second_sales(p)) == ["client_package.b"]


def test_copies_of_a_catalog_package_created_by_the_same_plan(tmp_path: Path) -> None:
    """The catalog package is new too (no id yet): its manifest reference identifies it."""
    p = plan_of(tmp_path, docs(CATALOG, cp("a"), cp("b"), cp("c", repeat_purchase="true")),
                catalog_tracked=False, remote={"catalog_packages": []})
    assert [op.address for op in p.operations if op.action == "create"] == [
        "catalog_package.piano", "client_package.a", "client_package.c"]
    assert list(second_sales(p)) == ["client_package.b"]
    assert "catalog package catalog_package.piano" in second_sales(p)["client_package.b"]


def test_a_renamed_object_is_the_sale_and_its_copy_is_refused(tmp_path: Path) -> None:
    """The original's manifest renamed *and* copied in one change: one takes the record over (a
    move, no request), the other would be a second sale."""
    p = plan_of(tmp_path, docs(CATALOG, cp("alice-new"), cp("alice-copy")),
                state={"client_package.alice": {"id": "cp1", "applied": applied()}},
                client_packages={"cp1": remote_cp("cp1")})
    moves = [op for op in p.operations if op.action == "move"]
    assert len(moves) == 1 and creates(p) == []
    refused = second_sales(p)
    (copy,) = refused
    assert copy != moves[0].address
    assert f"{moves[0].address} (" in refused[copy] and "which takes over cp1 (renamed from client_package.alice)" \
        in refused[copy]
    # after the move is applied, the same manifests refuse the copy again
    after = plan_of(tmp_path, docs(CATALOG, cp("alice-new"), cp("alice-copy")),
                    state={moves[0].address: {"id": "cp1", "applied": applied()}},
                    client_packages={"cp1": remote_cp("cp1")})
    assert creates(after) == [] and list(second_sales(after)) == [copy]


def test_a_renamed_object_beside_a_flagged_copy_is_a_move_and_a_create(tmp_path: Path) -> None:
    p = plan_of(tmp_path, docs(CATALOG, cp("alice-new"), cp("alice-copy", repeat_purchase="true")),
                state={"client_package.alice": {"id": "cp1", "applied": applied()}},
                client_packages={"cp1": remote_cp("cp1")})
    assert [op.address for op in p.operations if op.action == "move"] == ["client_package.alice-new"]
    assert creates(p) == ["client_package.alice-copy"] and not p.errors


def test_a_re_adopted_object_is_the_sale_and_its_copy_is_refused(tmp_path: Path) -> None:
    archived = {"cp9": {"address": "client_package.alice-old", "identity": applied()}}
    p = plan_of(tmp_path, docs(CATALOG, cp("alice"), cp("alice-2")), archived=archived)
    assert [(op.address, op.action) for op in p.operations] == [("client_package.alice", "readopt")]
    refused = second_sales(p)
    assert list(refused) == ["client_package.alice-2"]
    assert "which re-adopts cp9 (archived as client_package.alice-old)" in refused["client_package.alice-2"]


def test_a_copy_of_an_object_whose_create_is_of_unknown_outcome(tmp_path: Path) -> None:
    """The earlier create may have happened: it is never the one refused as a second sale; the
    copy waits until a person has settled it (the pending rule of ``identity.py``)."""
    pending = [{"id": "i1", "address": "client_package.b", "kind": "ClientPackage",
                "details": {"client_id": "cli1", "package_id": "pkg1"}}]
    p = plan_of(tmp_path, docs(CATALOG, cp("a"), cp("b")), pending=pending)
    assert creates(p) == []
    assert second_sales(p) == {}
    assert [pr.address for pr in p.errors] == ["client_package.a"]
    assert "as the pending create of client_package.b, whose outcome is unknown" in p.errors[0].message


def test_a_set_member_and_a_client_package_are_copies_located_at_the_set(tmp_path: Path) -> None:
    members = ("apiVersion: reconciler/v1\nkind: ClientPackageSet\nmetadata: {name: spring}\n"
               "spec: {package: piano, clients: [cli1, cli2]}\n")
    p = plan_of(tmp_path, {"catalog.yaml": CATALOG, "set.yaml": members, "one.yaml": cp("alice")})
    # in address order 'client_package.' comes before 'client_package_set.': alice is the sale
    assert creates(p) == ["client_package.alice", 'client_package_set.spring["cli2"]']
    refused = second_sales(p)
    assert list(refused) == ['client_package_set.spring["cli1"]']
    assert refused['client_package_set.spring["cli1"]'].startswith(
        f"declared at {tmp_path / 'set.yaml'}:1: the same client cli1 and catalog package pkg1 as "
        f"client_package.alice ({tmp_path / 'one.yaml'}:1), also new in this plan")


def test_a_plan_over_some_paths_checks_the_copies_it_holds(tmp_path: Path) -> None:
    """A partial plan (some paths, --only) sees only the objects it plans: copies inside it are
    refused; a copy outside it, once created, is a record outside the paths, which refuses it."""
    inside = plan_of(tmp_path, docs(CATALOG, cp("a"), cp("b")), partial=True)
    assert creates(inside) == ["client_package.a"] and list(second_sales(inside)) == ["client_package.b"]
    outside = plan_of(tmp_path, docs(CATALOG, cp("b")), partial=True,
                      state={"client_package.a": {"id": "cp1", "applied": applied()}},
                      client_packages={"cp1": remote_cp("cp1")})
    assert creates(outside) == []
    (refused,) = outside.errors
    assert "tracked outside the paths of this plan" in refused.message and refused.hint is not None
    assert "repeat_purchase: true" in refused.hint


def test_a_tracked_original_still_refuses_a_new_copy(tmp_path: Path) -> None:
    """Today's rule, unchanged: a new copy of an object tracked at another address."""
    p = plan_of(tmp_path, docs(CATALOG, cp("a"), cp("b")),
                state={"client_package.a": {"id": "cp1", "applied": applied()}},
                client_packages={"cp1": remote_cp("cp1")})
    assert creates(p) == [] and "client_package.a (cp1): a second sale" in second_sales(p)["client_package.b"]
    assert second_sales(p)["client_package.b"].startswith(f"declared at {tmp_path / 'm.yaml'}:")  # located too


def test_a_create_of_unknown_outcome_is_kept_as_the_sale_when_nothing_else_catches_the_copy(tmp_path: Path) -> None:
    """Defensive: the pending rule of ``identity.py`` compares with what was sent, which needs the
    catalog package's id; for a catalog package this plan creates (no id yet) the copy reaches the
    sibling rule, which keeps the create of unknown outcome as the sale and refuses the copy."""
    pending = [{"id": "i1", "address": "client_package.a", "kind": "ClientPackage",
                "details": {"client_id": "cli1", "package_id": "gone"}}]
    p = plan_of(tmp_path, docs(CATALOG, cp("a"), cp("b")), pending=pending, catalog_tracked=False,
                remote={"catalog_packages": []})
    assert creates(p) == []
    assert list(second_sales(p)) == ["client_package.b"]
    assert "client_package.a (" in second_sales(p)["client_package.b"]
    assert "whose earlier create's outcome is unknown" in second_sales(p)["client_package.b"]


# --- the indexed rule agrees with the rule as written -------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from reconciler.planner.siblings import NewObject, compatible, refusals  # noqa: E402

_field = st.one_of(st.none(), st.sampled_from(["2027-01-01", "2027-02-01"]))  # None: left out
_obj = st.tuples(st.sampled_from(["cli1", "cli2"]), _field, st.one_of(st.none(), st.sampled_from(["500", "450"])),
                 st.booleans())


def _naive(new: list[NewObject], kept: list[NewObject]) -> set[str]:
    """The rule as the docstring states it, pair by pair."""
    sales = list(kept)
    refused = set()
    for obj in sorted((o for o in new if not o.repeat), key=lambda o: o.address):
        if any(s.key == obj.key and compatible(s.want, obj.want) for s in sales):
            refused.add(obj.address)
        else:
            sales.append(obj)
    return refused


@settings(max_examples=300, deadline=None)
@given(objs=st.lists(_obj, max_size=9), kept=st.lists(_obj, max_size=2))
def test_the_indexed_rule_refuses_exactly_what_the_pairwise_rule_does(
        objs: list[Any], kept: list[Any]) -> None:
    def made(i: int, prefix: str, c: str, vf: str | None, price: str | None, repeat: bool, note: str = "") -> NewObject:
        want = {"client_id": c, "package_id": "pkg1",
                **({"valid_from": vf} if vf else {}), **({"price": price} if price else {})}
        if note:  # a record's identity: every field present, None when unknown
            want = {"valid_from": vf, "price": price, **want}
        return NewObject(f"client_package.{prefix}{i}", (c, "pkg1"), want, repeat and not note, note)
    new = [made(i, "n", *o) for i, o in enumerate(objs)]
    held = [made(i, "k", *o, note="which takes over a record in this plan") for i, o in enumerate(kept)]
    got = {p.address for p in refusals(new, held, lambda a: None)}
    assert got == _naive(new, held)


def test_a_replacement_is_the_sale_of_its_new_identity(tmp_path: Path) -> None:
    """alice's package moves to 2027-02-01 (replace required: a new client package) and a copy
    declares 2027-02-01 too: once the replacement is applied its record refuses the copy, so the
    first plan refuses it as well."""
    manifests = docs(CATALOG, cp("alice", valid_from="2027-02-01"), cp("alice-copy", valid_from="2027-02-01"))
    tracked = {"client_package.alice": {"id": "cp1", "applied": applied(valid_from="2027-01-01")}}
    p = plan_of(tmp_path, manifests, state=tracked, client_packages={"cp1": remote_cp("cp1", valid_from="2027-01-01")},
                allow_replace=True)
    assert creates(p) == ["client_package.alice"]  # the replacement
    refused = second_sales(p)
    assert list(refused) == ["client_package.alice-copy"]
    assert "which replaces cp1 with a new client package in this plan" in refused["client_package.alice-copy"]
    after = plan_of(tmp_path, manifests, state={"client_package.alice": {"id": "cp2", "applied": applied(
        valid_from="2027-02-01")}}, client_packages={"cp2": remote_cp("cp2", valid_from="2027-02-01")})
    assert creates(after) == [] and list(second_sales(after)) == ["client_package.alice-copy"]
    # a replacement that says repeat_purchase is a repeat, not the sale: the copy is
    flagged = plan_of(tmp_path, docs(CATALOG, cp("alice", valid_from="2027-02-01", repeat_purchase="true"),
                                     cp("alice-copy", valid_from="2027-02-01")),
                      state=tracked, client_packages={"cp1": remote_cp("cp1", valid_from="2027-01-01")},
                      allow_replace=True)
    assert creates(flagged) == ["client_package.alice", "client_package.alice-copy"] and not flagged.errors

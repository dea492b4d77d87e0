"""The pure drift comparison, table by table: applied (state) x remote (refresh) x desired."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.drift import compare, render_drift
from reconciler.drift.model import DriftReport
from reconciler.manifest.load import load_manifests
from reconciler.plan.document import PlanTarget, fingerprint
from reconciler.planner.actual import Actual, RemoteObject
from reconciler.state.store import ResourceState

CATALOG = """\
apiVersion: reconciler/v1
kind: CatalogPackage
metadata: {name: piano}
spec:
  name: Piano
  price: 100
  currency: usd
  expiration: 6
  expiration_unit: m
  items:
    - {total_bookings: 10, services: [s1]}
---
apiVersion: reconciler/v1
kind: ClientPackage
metadata: {name: alice}
spec:
  client: c1
  package: piano
  booking_credits:
    - {services: [s1], total_bookings: 12}
"""

PIANO = {"name": "Piano", "price": "100", "currency": "USD", "expiration": 6, "expiration_unit": "M",
         "items": {"s1": 10}, "products": {}, "description": None, "image_path": None,
         "discount_amount": "0", "discount_unit": "F", "online_payment_enabled": False}
ALICE = {"client_id": "c1", "package_id": "P1", "price": "100", "valid_from": "2026-01-01",
         "valid_until": "2026-07-01", "matter_uid": "m1", "booking_credits": {"s1": 12, "s2": 3}}
TARGET = PlanTarget(gateway_url="https://x/apigw", business_id="b1")


@pytest.fixture
def desired(tmp_path: Path) -> Any:
    (tmp_path / "m.yaml").write_text(CATALOG)
    return load_manifests([tmp_path])


def rs(kind: str, rid: str, view: dict[str, Any]) -> ResourceState:
    return ResourceState(kind=kind, id=rid, fingerprint=fingerprint(view), applied=view,  # type: ignore[arg-type]
                         updated_at="2026-01-01T00:00:00Z")


def run(desired: Any, state: dict[str, Any], piano: dict[str, Any] | None = PIANO,
        alice: dict[str, Any] | None = ALICE, **extra: Any) -> DriftReport:
    catalog = {"P1": RemoteObject(id="P1", view=piano, **extra)} if piano is not None else {}
    actual = Actual(catalog_packages=catalog,
                    client_packages={"A1": RemoteObject(id="A1", view=alice) if alice is not None else None})
    return compare(desired, state, actual, target=TARGET, created_at="2026-01-01T00:00:00Z",
                   state_lineage="0" * 32, state_serial=1)


def tracked() -> dict[str, Any]:
    return {"catalog_package.piano": rs("CatalogPackage", "P1", PIANO),
            "client_package.alice": rs("ClientPackage", "A1", ALICE)}


def test_in_sync(desired: Any) -> None:
    report = run(desired, tracked())
    assert report.verdict == "in_sync" and report.objects == ()
    assert report.summary.in_sync == 2 and report.summary.objects == 2
    assert "In sync" in render_drift(report, "text")


@pytest.mark.parametrize("remote", [
    {"price": "120"},
    {"currency": "EUR"},
    {"items": {"s1": 10, "s9": 1}},  # an item added in vcita: a catalog package manages all its items
    {"products": {"p1": 2}},
])
def test_managed_catalog_changes_in_vcita_are_drift(desired: Any, remote: dict[str, Any]) -> None:
    report = run(desired, tracked(), piano={**PIANO, **remote})
    assert report.verdict == "drift" and report.objects[0].status == "drift"
    assert all(f.remote_drift and f.managed and not f.pending for f in report.objects[0].fields)


def test_a_field_the_manifest_leaves_out_is_informational(desired: Any) -> None:
    report = run(desired, tracked(), piano={**PIANO, "description": "set in vcita"})
    obj = report.objects[0]
    assert report.verdict == "in_sync" and obj.status == "unmanaged_drift"
    assert [(f.path, f.managed, f.desired) for f in obj.fields] == [("description", False, None)]
    assert report.summary.in_sync == 2 and report.summary.unmanaged_drift == 1


def test_client_credits_are_managed_per_key(desired: Any) -> None:
    # s1 is in the manifest, s2 is not: a change to s2 is informational, to s1 is drift.
    report = run(desired, tracked(), alice={**ALICE, "booking_credits": {"s1": 12, "s2": 5}})
    obj = report.objects[0]
    assert (obj.status, obj.fields[0].path, obj.fields[0].managed) == ("unmanaged_drift", "booking_credits[s2]", False)
    report = run(desired, tracked(), alice={**ALICE, "booking_credits": {"s1": 13, "s2": 3}})
    assert report.verdict == "drift"
    f = report.objects[0].fields[0]
    assert (f.path, f.applied, f.remote, f.desired) == ("booking_credits[s1]", 12, 13, 12)


def test_pending_when_the_manifest_moved_on(desired: Any) -> None:
    old = {**ALICE, "booking_credits": {"s1": 11, "s2": 3}}
    state = {**tracked(), "client_package.alice": rs("ClientPackage", "A1", old)}
    report = run(desired, state, alice=old)
    f = report.objects[0].fields[0]
    assert report.verdict == "pending" and report.objects[0].status == "pending"
    assert (f.applied, f.remote, f.desired, f.remote_drift, f.pending) == (11, 11, 12, False, True)


def test_same_change_on_both_sides_is_drift_without_conflict(desired: Any) -> None:
    old = {**ALICE, "booking_credits": {"s1": 11, "s2": 3}}
    state = {**tracked(), "client_package.alice": rs("ClientPackage", "A1", old)}
    report = run(desired, state)  # remote is 12, like the manifest
    f = report.objects[0].fields[0]
    assert report.objects[0].status == "drift_and_pending" and f.remote == f.desired and not f.conflict
    assert "changed in vcita to the manifest's value" in render_drift(report, "text")


def test_vanished_untracked_and_removed(desired: Any) -> None:
    state = {"client_package.alice": rs("ClientPackage", "A1", ALICE),
             "catalog_package.gone": rs("CatalogPackage", "P9", PIANO)}
    report = run(desired, state, alice=None)
    statuses = {o.address: o.status for o in report.objects}
    assert statuses == {"catalog_package.piano": "untracked", "catalog_package.gone": "removed",
                        "client_package.alice": "vanished"}
    assert report.verdict == "drift" and report.summary.vanished == 1
    piano = next(o for o in report.objects if o.address == "catalog_package.piano")
    assert piano.remote_id == "P1" and "plan adopts it" in piano.notes[0]  # same name in vcita


def test_only_pending_when_nothing_is_tracked(desired: Any) -> None:
    report = run(desired, {}, piano=None)
    assert report.verdict == "pending" and {o.status for o in report.objects} == {"untracked"}


def test_deactivated_package_is_noted(desired: Any) -> None:
    report = run(desired, tracked(), active=False)
    assert report.verdict == "in_sync" and "deactivated" in report.objects[0].notes[0]


def test_json_is_stable_and_round_trips(desired: Any) -> None:
    report = run(desired, tracked(), piano={**PIANO, "price": "120"})
    assert DriftReport.from_json(report.to_json()) == report
    data = report.model_dump(mode="json")
    assert list(data) == ["format_version", "created_at", "target", "manifest_digest", "state_lineage",
                          "state_serial", "exit_code", "verdict", "summary", "objects", "write_back",
                          "second_memory"]  # fields are added at the end, never renamed
    assert list(data["objects"][0]["fields"][0]) == ["path", "applied", "remote", "desired", "managed",
                                                    "remote_drift", "pending"]


def test_markdown_stays_under_the_comment_limit(desired: Any) -> None:
    from reconciler.drift.render import render_markdown

    report = run(desired, tracked(), piano={**PIANO, "items": {f"s{i}": i for i in range(3000)}})
    text = render_markdown(report, limit=20_000)
    assert len(text) <= 20_000 and "rows were left out" in text

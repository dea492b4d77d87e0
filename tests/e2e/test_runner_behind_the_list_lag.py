"""A runner with an older copy of the state (here: none) applies right after another runner's
apply created catalog packages and sold them, while vcita's catalog list still hides the new
catalog packages (it lags behind creation, API-NOTES §8).  Planned from the list, the second
runner would create each catalog package a second time and sell it to every client again; the
identity rule cannot see it (the catalog package it would create has no id yet).  The client
packages the first runner sold are in the payment requests, with the catalog package's name and
an id the list does not show: the plan refuses, nothing is sent.  Served sandbox, through the CLI.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sandbox_support import client_packages


@pytest.fixture
def lagging(operator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("RECONCILER_LIST_LAG_SECONDS", "300")  # the tool knows the lag as it is
    lag = operator("GET", "/settings")["list_lag_seconds"]
    operator("PUT", "/settings", json={"list_lag_seconds": 300})
    yield
    operator("PUT", "/settings", json={"list_lag_seconds": lag})


def test_a_fresh_apply_right_after_another_runners_is_refused_while_the_list_hides_its_catalog(
        workdir: Path, cli: Any, operator: Any, demo: dict[str, Any], lagging: Any) -> None:
    runner_b = workdir / "runner-b" / "manifests"
    shutil.copytree(workdir / "manifests", runner_b)  # a checkout made before runner A's state commit
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    sold = sorted(cp["id"] for cp in client_packages(operator, demo))
    assert len(sold) == 8

    operator("DELETE", "/stats")
    code, out, err = cli("apply", "--auto-approve", str(runner_b))
    said = out + err
    assert code == 1, said
    assert "Traceback" not in said
    assert ("client ktsrl7f6h94run82 was sold a package named '10 Piano Lessons' moments ago" in said
            and "very likely created catalog_package.piano-10" in said), said[-3000:]
    assert "8 error(s)" in said, said[-2000:]
    assert not [r for r in operator("GET", "/stats")["requests"] if r["method"] != "GET"]  # nothing sent
    assert sorted(cp["id"] for cp in client_packages(operator, demo)) == sold

    # once the list shows runner A's catalog packages, the way out the error names works
    operator("PUT", "/settings", json={"list_lag_seconds": 0})
    code, out, err = cli("import", "--discover", "--manifests", str(runner_b))
    assert code == 0, out + err
    code, out, err = cli("plan", "--detailed-exitcode", str(runner_b))
    assert code == 0, out + err
    assert sorted(cp["id"] for cp in client_packages(operator, demo)) == sold


def test_an_old_sale_of_that_name_does_not_block_a_new_catalog_package(
        workdir: Path, cli: Any, operator: Any, demo: dict[str, Any], lagging: Any) -> None:
    # The rule is bounded by the list's lag: a package of that name sold two days ago, of a catalog
    # package the list does not show (the open question whether it shows deactivated ones), is no
    # sign of a run moments ago and does not refuse the plan forever.
    runner_b = workdir / "runner-b" / "manifests"
    shutil.copytree(workdir / "manifests", runner_b)
    assert cli("apply", "--auto-approve")[0] == 0
    old = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    for cp in client_packages(operator, demo):
        operator("PATCH", f"/objects/payment_requests/{cp['payment_request_id']}", json={"created_at": old})
    code, out, err = cli("plan", "--confirm-no-prior-client-packages", str(runner_b))
    assert code == 0 and "Plan: 11 to create" in out, out + err
    assert "moments ago" not in out + err


PIANO_20 = """---
apiVersion: reconciler/v1
kind: CatalogPackage
metadata:
  name: piano-20
spec:
  name: 20 Piano Lessons
  price: 1000
  currency: USD
  expiration: 12
  expiration_unit: M
  items:
    - total_bookings: 20
      services: [bop374z43h5xezh3]
  products: []
"""


def _move_alice_to_piano_20(manifests: Path) -> None:
    (manifests / "catalog-packages.yaml").write_text((manifests / "catalog-packages.yaml").read_text() + PIANO_20)
    sales = manifests / "client-packages.yaml"
    old = "  client: ktsrl7f6h94run82                # Alice Martin\n  package: piano-10\n"
    assert old in sales.read_text()
    sales.write_text(sales.read_text().replace(old, old.replace("piano-10", "piano-20")))


def test_a_replacement_onto_a_catalog_package_another_runner_just_made_is_refused(
        workdir: Path, cli: Any, operator: Any, demo: dict[str, Any], lagging: Any) -> None:
    operator("PUT", "/settings", json={"list_lag_seconds": 0})
    assert cli("apply", "--auto-approve")[0] == 0
    operator("PUT", "/settings", json={"list_lag_seconds": 300})
    runner_b = workdir / "runner-b" / "manifests"
    shutil.copytree(workdir / "manifests", runner_b)  # with the state as it was: Alice holds piano-10
    _move_alice_to_piano_20(workdir / "manifests")
    _move_alice_to_piano_20(runner_b)
    code, out, err = cli("apply", "--auto-approve", "--allow-replace")
    assert code == 0, out + err
    sold = sorted(cp["id"] for cp in client_packages(operator, demo))
    assert len(sold) == 9  # the replacement, and the package it replaced, which stays in vcita

    operator("DELETE", "/stats")
    code, out, err = cli("apply", "--auto-approve", "--allow-replace", str(runner_b))
    said = out + err
    assert code == 1, said
    assert "client ktsrl7f6h94run82 was sold a package named '20 Piano Lessons' moments ago" in said, said[-3000:]
    assert not [r for r in operator("GET", "/stats")["requests"] if r["method"] != "GET"]
    assert sorted(cp["id"] for cp in client_packages(operator, demo)) == sold

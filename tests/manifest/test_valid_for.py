"""valid_for (issue 19): valid_until computed from valid_from, never from today's date."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from reconciler.core.errors import ManifestError
from reconciler.manifest.load import load_manifests
from reconciler.model.manifest import add_period

HEAD = "apiVersion: reconciler/v1\nkind: ClientPackage\nmetadata: {name: a}\nspec:\n  client: abc\n  package: {id: pkg1}\n"


@pytest.mark.parametrize(("start", "period", "end"), [
    ("2027-01-31", "1M", "2027-02-28"),   # a month end clamps
    ("2028-01-31", "1M", "2028-02-29"),   # leap year
    ("2028-02-29", "1Y", "2029-02-28"),
    ("2027-03-01", "3M", "2027-06-01"),
    ("2027-03-01", "10W", "2027-05-10"),
    ("2027-03-01", "30D", "2027-03-31"),
    ("2027-11-15", "14M", "2029-01-15"),
])
def test_add_period(start: str, period: str, end: str) -> None:
    assert add_period(date.fromisoformat(start), period) == date.fromisoformat(end)


def _load(tmp_path: Path, spec: str) -> object:
    f = tmp_path / "m.yaml"
    f.write_text(HEAD + spec)
    return load_manifests([f]).client_packages["a"].spec


def test_valid_until_comes_from_valid_from_and_any_case(tmp_path: Path) -> None:
    spec = _load(tmp_path, "  valid_from: 2027-03-01\n  valid_for: 3m\n")
    assert spec.valid_until == date(2027, 6, 1) and spec.valid_for == "3M"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("spec", "message"), [
    ("  valid_for: 3M\n", "7:14: ClientPackage/a: spec.valid_for: needs valid_from"),
    ("  valid_from: 2027-03-01\n  valid_until: 2027-04-01\n  valid_for: 3M\n",
     "9:14: ClientPackage/a: spec.valid_for: write valid_for or valid_until, not both"),
    ("  valid_from: 2027-03-01\n  valid_for: 0M\n", "8:14: ClientPackage/a: spec.valid_for: '0M' is not a period"),
    ("  valid_from: 2027-03-01\n  valid_for: 3 months\n", "8:14: ClientPackage/a: spec.valid_for: '3 months' is not"),
    ("  valid_from: 2027-03-01\n  valid_for: 101Y\n", "8:14: ClientPackage/a: spec.valid_for: 101Y is more than"),
    ("  valid_from: 2027-03-01\n  valid_for: 3\n", "8:14: ClientPackage/a: spec.valid_for: 3 is not a period"),
    ("  valid_from: 9999-12-01\n  valid_for: 1M\n", "ClientPackage/a: spec.valid_for: 9999-12-01 + 1M is past the year"),
    ("  valid_from: 9999-12-01\n  valid_for: 90D\n", "ClientPackage/a: spec.valid_for: 9999-12-01 + 90D is past"),
])
def test_bad_valid_for_is_one_located_error(tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(ManifestError) as exc:
        _load(tmp_path, spec)
    rendered = [d.render() for d in exc.value.diagnostics]
    assert len(rendered) == 1 and message in rendered[0], rendered

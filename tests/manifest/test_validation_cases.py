"""Table-driven validation tests: each file in cases/bad states its expected errors in its header.

A header line ``# expect: LINE:COL: rest`` means: some diagnostic for that file renders as
``FILE:LINE:COL: rest...`` (prefix match on the message), and there are exactly as many
diagnostics as expectations.  Files in cases/good must load without any.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.core.errors import ManifestError
from reconciler.manifest.load import load_manifests

CASES = Path(__file__).parent / "cases"
BAD = sorted((CASES / "bad").glob("*.yaml"))
GOOD = sorted((CASES / "good").glob("*.yaml"))


def _expectations(path: Path) -> list[str]:
    return [
        line.removeprefix("# expect: ").rstrip("\n")
        for line in path.read_text("utf-8").splitlines()
        if line.startswith("# expect: ")
    ]


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_manifest_reports_located_errors(path: Path) -> None:
    expected = _expectations(path)
    assert expected, f"{path.name} has no '# expect:' header"
    with pytest.raises(ManifestError) as exc:
        load_manifests([path])
    rendered = [d.render() for d in exc.value.diagnostics]
    shown = {d.file for d in exc.value.diagnostics}
    assert len(shown) == 1
    prefix = shown.pop() + ":"
    assert all(r.startswith(prefix) for r in rendered)
    got = [r[len(prefix):] for r in rendered]
    for exp in expected:
        assert any(g.startswith(exp) for g in got), f"expected {exp!r}\n got {got}"
    assert len(got) == len(expected), f"unexpected extra diagnostics: {got}"


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_manifest_loads(path: Path) -> None:
    ms = load_manifests([path])
    assert ms.documents


def test_good_full_normalises_values() -> None:
    ms = load_manifests([CASES / "good" / "full.yaml"])
    spec = ms.catalog_packages["all-fields"].spec
    assert spec.currency == "EUR"
    assert spec.expiration_unit == "W"
    assert spec.discount_unit == "P"
    assert spec.items[0].services == ("abc", "def")
    assert str(spec.price) == "99.99"
    cp = ms.client_packages["by-email"].spec
    assert cp.client.email == "someone@example.com"
    assert cp.package.name == "all-fields"
    assert cp.valid_from == cp.valid_until
    assert ms.client_packages["unmanaged-package"].spec.package.id == "pkg123"

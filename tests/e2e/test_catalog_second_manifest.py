"""``reconciler export`` into a folder whose manifests already declare the business (a lost state
rebuilt by export, keeping the team's own files): export would write its own manifest of each
catalog package, under a name made from its display name, beside the team's manifest of the same
package, and record the package under export's name.

* Export refuses, writing nothing, and names ``import --discover`` (which rebuilds the state from
  the team's manifests).
* Two manifests of one catalog package (the same display name) reached some other way must not
  make the plan create a second copy of the package and sell it again to every client the team's
  manifests list: the plan refuses the untracked manifest, naming the tracked one, and nothing is
  created; so does a plan over some paths whose tracked twin lies outside them.
* A catalog manifest refused by identity (a twin outside a partial plan, a pending create of its
  name) is a located plan error, not an internal error.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]


def _applied_then_state_lost(workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> int:
    """The demo business without complete-musician, applied, its client packages in clients.yaml
    (export's file name stays free); then the state is lost.  The number of client packages sold."""
    manifests = workdir / "manifests"
    for name in ("catalog-packages.yaml", "client-packages.yaml"):
        path = manifests / name
        docs = path.read_text().split("\n---\n")
        path.write_text("\n---\n".join(d for d in docs if "complete-musician" not in d))
    (manifests / "client-packages.yaml").rename(manifests / "clients.yaml")
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    sold = len(client_packages(operator, demo))
    assert sold == 6
    for f in (manifests / ".reconciler").glob("state.json*"):
        f.unlink()
    return sold


def test_export_into_a_folder_that_declares_the_business_is_refused(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    _applied_then_state_lost(workdir, cli, operator, demo)
    before = sorted(p.name for p in (workdir / "manifests").iterdir())
    code, out, err = cli("export")
    assert code != 0, out + err
    assert "export refused, nothing was written" in err
    assert "('10 Piano Lessons') is already declared as CatalogPackage 'piano-10' in" in err
    assert "reconciler import --discover" in err
    assert sorted(p.name for p in (workdir / "manifests").iterdir()) == before
    code, out, err = cli("import", "--discover")
    assert code == 0, out + err
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 0 and "No changes." in out, out + err


def test_a_second_manifest_of_a_tracked_catalog_package_never_sells_it_again(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    sold = _applied_then_state_lost(workdir, cli, operator, demo)
    manifests = workdir / "manifests"
    aside = workdir / "catalog-packages.yaml"
    (manifests / "catalog-packages.yaml").rename(aside)  # the team's catalog on another branch
    code, out, err = cli("export")
    assert code == 0, out + err
    assert "Exported 6 client packages" in out
    aside.rename(manifests / "catalog-packages.yaml")  # and back: two manifests of each package
    code, out, err = cli("apply", "--auto-approve")
    held = client_packages(operator, demo)
    assert len(held) == sold, f"a client was billed a second time: {out + err}"
    assert len({cp["package_id"] for cp in held}) == 2, "a second copy of a catalog package was sold"
    assert code == 1, out + err
    assert ("catalog_package.piano-10: declared at manifests/catalog-packages.yaml:5: the same catalog package "
            "named '10 Piano Lessons' as catalog_package.10-piano-lessons") in err + out
    assert "will be created" not in out


def test_a_partial_plan_over_a_second_manifest_of_a_tracked_catalog_package_is_a_located_refusal(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    """The tracked manifest outside the plan's paths: the same refusal, no internal error (an
    ``AttributeError`` before) and nothing created."""
    assert cli("apply", "--auto-approve")[0] == 0
    sold = len(client_packages(operator, demo))
    catalog = (workdir / "manifests" / "catalog-packages.yaml").read_text().split("\n---\n")
    piano = next(d for d in catalog if "name: piano-10" in d)
    extra = workdir / "manifests" / "extra"
    extra.mkdir()
    (extra / "piano.yaml").write_text(piano.replace("name: piano-10", "name: piano-ten"))
    for command in ("plan", "apply"):
        code, out, err = cli(command, "manifests/extra/piano.yaml", "--state", "manifests/.reconciler/state.json",
                             *(("--auto-approve",) if command == "apply" else ()))
        assert code == 1, out + err
        assert "internal error" not in out + err
        assert ("the same catalog package named '10 Piano Lessons' as catalog_package.piano-10, tracked outside"
                in out + err)
    assert len(client_packages(operator, demo)) == sold


def test_renaming_one_of_two_tracked_packages_of_one_display_name_is_still_a_move(
        workdir: Path, cli: CLI) -> None:
    """Two catalog packages of one display name, both tracked: renaming one's manifest takes its
    own record over (the one leaving), not refused as a second manifest of the other."""
    catalog = (workdir / "manifests" / "catalog-packages.yaml").read_text().split("\n---\n")
    piano = next(d for d in catalog if "name: piano-10" in d)
    extra = workdir / "manifests" / "piano-ten.yaml"
    # two new manifests of one display name are refused (planner case catalog-same-name-new):
    # the second is created under another display name, then given the first's
    extra.write_text(piano.replace("name: piano-10", "name: piano-ten")
                     .replace("name: 10 Piano Lessons", "name: 10 Piano Lessons (b)"))
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    extra.write_text(piano.replace("name: piano-10", "name: piano-ten"))
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0 and "1 to update" in out, out + err
    extra.write_text(piano.replace("name: piano-10", "name: piano-eleven"))
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 2, out + err
    assert "Plan: 0 to create, 0 to update, 0 to replace, 1 to move." in out
    assert "catalog_package.piano-eleven is the same object under a new name" in out


def test_renaming_a_catalog_package_whose_create_is_pending_is_a_located_refusal(
        workdir: Path, cli: CLI, operator: Any) -> None:
    """A catalog create whose answer was lost, then its manifest renamed: the plan names the
    pending create (an internal ``AttributeError`` before) and creates nothing."""
    operator("POST", "/faults", json={"method": "POST", "path": "/platform/v1/payment/packages",
                                      "drop_after_commit": True})
    code, out, err = cli("apply", "--auto-approve", "manifests/catalog-packages.yaml")
    assert code == 1, out + err
    operator("DELETE", "/faults")
    catalog = workdir / "manifests" / "catalog-packages.yaml"
    catalog.write_text(catalog.read_text().replace("name: piano-10\n", "name: piano-ten\n"))
    code, out, err = cli("plan", "manifests/catalog-packages.yaml")
    assert "internal error" not in out + err
    assert code == 1, out + err
    assert ("catalog_package.piano-ten: declared at manifests/catalog-packages.yaml:5: the same catalog package named "
            "'10 Piano Lessons' as the pending create of catalog_package.piano-10") in out + err

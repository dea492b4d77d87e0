"""``reconciler export`` into a folder whose manifests already declare the business (a lost state
rebuilt by export, keeping the team's own files): export writes its own manifest of each catalog
package, under a name made from its display name, beside the team's manifest of the same package.

Two manifests of one catalog package (the same display name) must not make the plan create a
second copy of the package and sell it again to every client the team's manifests list: the plan
refuses the untracked manifest, naming the tracked one, and nothing is created; so does a plan
over some paths whose second manifest's tracked twin lies outside them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]


def test_export_beside_the_teams_manifests_never_sells_a_catalog_package_again(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    manifests = workdir / "manifests"
    for name in ("catalog-packages.yaml", "client-packages.yaml"):  # a business without complete-musician
        path = manifests / name
        docs = path.read_text().split("\n---\n")
        path.write_text("\n---\n".join(d for d in docs if "complete-musician" not in d))
    (manifests / "client-packages.yaml").rename(manifests / "clients.yaml")  # export's file name stays free
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    sold = len(client_packages(operator, demo))
    assert sold == 6
    for f in (manifests / ".reconciler").glob("state.json*"):
        f.unlink()  # the state is lost; export rebuilds it
    code, out, err = cli("export")
    assert code == 0, out + err
    assert "Exported 6 client packages" in out
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
        assert ("the same catalog package named '10 Piano Lessons' as catalog_package.piano-10, tracked outside") in out + err
    assert len(client_packages(operator, demo)) == sold

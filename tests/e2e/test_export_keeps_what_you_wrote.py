"""``reconciler export --force`` over a team's manifests loses nothing they wrote, unseen.

``export --force`` used to write ``client-packages.yaml`` over the team's own: their objects (the
applied ones, whose records the next plan then archived, and the ones not applied yet, never
created), their comments, gone, for the one package sold in the vcita UI that export found.  Now
it adds what it found to the file, which keeps every byte it held.  A catalog-package file it
overwrites that differs from what it writes (comments, a price not applied yet) is kept beside it
(``*.before-export-<time>``, which no plan reads) and named; one holding other documents is
refused, nothing written.  Served sandbox (the demo business), through the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLI = Callable[..., tuple[int, str, str]]
ISLA = "nja3jgzdul48vwpm"
CLIENTS = Path("manifests") / "client-packages.yaml"
# the team's own object, not applied yet (a create the next plan makes)
TEAM_OBJECT = ("---\n# Isla starts in January: agreed on the phone\napiVersion: reconciler/v1\nkind: ClientPackage\n"
               "metadata:\n  name: isla-complete\nspec:\n  client: nja3jgzdul48vwpm   # Isla Novak\n"
               "  package: complete-musician\n")


def _sold_in_the_ui(workdir: Path, operator: Any, demo: dict[str, Any], package: str = "guitar-5") -> str:
    """A client package sold to Isla in the vcita UI (the operator stands in for it); its id."""
    state = json.loads((workdir / "manifests" / ".reconciler" / "state.json").read_text())
    pid = state["resources"][f"catalog_package.{package}"]["id"]
    return str(operator("POST", "/bulk/client_packages", json={"business_id": demo["business"]["id"],
                                                               "client_ids": [ISLA], "package_id": pid,
                                                               "count": 1})["ids"][0])


def _tree(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and ".reconciler" not in p.parts}


def test_force_adds_to_the_teams_client_packages_and_keeps_every_byte(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    path = workdir / CLIENTS
    path.write_text(path.read_text() + TEAM_OBJECT)
    before = path.read_text()
    sold = _sold_in_the_ui(workdir, operator, demo)
    code, out, err = cli("export", "--skip-tracked")  # without --force: refused, nothing written
    assert code == 1 and f"{CLIENTS} exists" in err and "--force adds" in err, out + err
    assert path.read_text() == before
    code, out, err = cli("export", "--force", "--skip-tracked")
    assert code == 0, out + err
    assert "Exported 1 client package" in out and "after the 9 document(s) it held, kept as they were" in out
    after = path.read_text()
    assert after.startswith(before.rstrip()) and f"# vcita client package id: {sold}" in after
    assert "# Isla starts in January: agreed on the phone" in after  # comments and objects kept
    code, out, err = cli("plan")
    assert code == 0, out + err
    assert "to archive" not in out  # the team's applied objects still declared
    assert "1 to create" in out and "client_package.isla-complete" in out  # and the one not applied yet


def test_a_name_the_team_already_uses_is_told_apart_by_the_id(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    path = workdir / CLIENTS
    # the team declares an object under the very name export gives Isla's guitar package
    path.write_text(path.read_text() + TEAM_OBJECT.replace("name: isla-complete", f"name: guitar-5-{ISLA}"))
    sold = _sold_in_the_ui(workdir, operator, demo)
    code, out, err = cli("export", "--force", "--skip-tracked")
    assert code == 0, out + err
    assert f"name: guitar-5-{ISLA}-{sold[:10]}" in path.read_text()
    assert cli("validate")[0] == 0  # no name declared twice


def test_a_client_file_that_cannot_be_read_is_refused_and_nothing_is_written(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    _sold_in_the_ui(workdir, operator, demo)
    path = workdir / CLIENTS
    path.write_text(path.read_text() + "---\nspec: [unclosed\n")
    before = _tree(workdir / "manifests")
    state = (workdir / "manifests" / ".reconciler" / "state.json").read_bytes()
    code, out, err = cli("export", "--force", "--skip-tracked")
    assert code == 1 and "cannot be read to add the client packages found to it" in err, out + err
    assert _tree(workdir / "manifests") == before
    assert (workdir / "manifests" / ".reconciler" / "state.json").read_bytes() == state


def test_a_catalog_file_that_differs_is_kept_beside_and_one_with_more_documents_is_refused(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0  # the demo's catalog, then adopted by an export elsewhere
    code, out, err = cli("export", "--out", "exported")
    assert code == 0, out + err
    piano = workdir / "exported" / "10-piano-lessons.yaml"
    assert cli("export", "--out", "exported", "--force")[0] == 0  # unchanged: rewritten, nothing kept
    assert not list(piano.parent.glob("*.before-export-*"))
    edited = piano.read_text().replace("  price: 540\n", "  price: 560   # from January\n")
    assert edited != piano.read_text()
    piano.write_text(edited)
    code, out, err = cli("export", "--out", "exported", "--force")
    assert code == 0, out + err
    [kept] = piano.parent.glob("10-piano-lessons.yaml.before-export-*")
    assert kept.read_text() == edited and "  price: 540\n" in piano.read_text()
    assert f"{kept.name}, which no plan reads" in " ".join(err.split())
    code, out, err = cli("plan", "exported", "--detailed-exitcode")
    assert code == 0, out + err  # the kept file is not a manifest
    # a file that declares more than the package export writes there: refused, nothing written
    piano.write_text(piano.read_text() + TEAM_OBJECT)
    before = _tree(workdir / "exported")
    code, out, err = cli("export", "--out", "exported", "--force")
    assert code == 1, out + err
    assert "also declares ClientPackage isla-complete, which overwriting it would drop" in " ".join(err.split())
    assert _tree(workdir / "exported") == before

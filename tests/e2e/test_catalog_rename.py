"""A catalog package renamed (its metadata.name and display name at once) cannot be told from a
new one: the plan creates a package and moves its client packages onto it by replacement, each
sold again.  The plan warns and names ``state mv``, after which the rename is a change in place.
Served sandbox, through the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]


def test_a_renamed_catalog_package_is_warned_about_and_state_mv_makes_it_a_change_in_place(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    sold = len(client_packages(operator, demo))
    for f in (workdir / "manifests").glob("*.yaml"):
        f.write_text(f.read_text().replace("name: guitar-5", "name: guitar-five")
                     .replace("package: guitar-5", "package: guitar-five")
                     .replace("name: 5 Guitar Lessons", "name: Five Guitar Lessons"))
    code, out, err = cli("plan", "--allow-replace")
    assert code == 0 and "3 to replace" in out, out + err
    assert ("catalog_package.guitar-five is created while catalog_package.guitar-5" in out + err
            and "3 client package(s) move onto it by replacement" in out + err), out + err
    assert "'reconciler state mv catalog_package.guitar-5 catalog_package.guitar-five'" in out + err
    assert cli("state", "mv", "catalog_package.guitar-5", "catalog_package.guitar-five")[0] == 0
    code, out, err = cli("plan")
    assert code == 0 and "0 to create, 1 to update, 0 to replace" in out and "move onto it" not in out + err, out
    assert cli("apply", "--auto-approve")[0] == 0
    assert len(client_packages(operator, demo)) == sold  # renamed, nobody sold anything again


def test_a_renamed_catalog_package_with_its_set_renamed_too_is_warned_about(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    """The client packages change address as well (a set renamed): creates, not replacements, so
    no --allow-replace stops them; the plan still says they are sold again, and names state mv."""
    clients = workdir / "manifests" / "client-packages.yaml"
    clients.write_text("apiVersion: reconciler/v1\nkind: ClientPackageSet\nmetadata:\n  name: guitar\nspec:\n"
                       "  package: guitar-5\n  clients:\n    - ktsrl7f6h94run82\n    - {email: ben.cohen@example.com}\n")
    assert cli("apply", "--auto-approve")[0] == 0
    sold = len(client_packages(operator, demo))
    clients.write_text(clients.read_text().replace("name: guitar\n", "name: guitars\n")
                       .replace("package: guitar-5", "package: guitar-five"))
    catalog = workdir / "manifests" / "catalog-packages.yaml"
    catalog.write_text(catalog.read_text().replace("name: guitar-5", "name: guitar-five")
                       .replace("name: 5 Guitar Lessons", "name: Five Guitar Lessons"))
    code, out, err = cli("plan")
    assert code == 0 and "2 client package(s) move onto it" in out + err, out + err
    assert "'reconciler state mv catalog_package.guitar-5 catalog_package.guitar-five'" in out + err
    assert cli("state", "mv", "catalog_package.guitar-5", "catalog_package.guitar-five")[0] == 0
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0 and "2 to move" in out and "Payment requests: none would be opened" in out, out + err
    assert len(client_packages(operator, demo)) == sold

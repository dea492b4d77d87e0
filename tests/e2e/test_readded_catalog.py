"""A catalog package removed from the manifests with its client packages, then added back, is
re-adopted once: one operation per object, no request, no payment request.

The plan used to list the catalog package twice: re-adopted from its archived record, then
"imported" as an untracked package of its display name (both for one address, "1 to import, 4 to
re-adopt" for 4 objects).  Served sandbox, through the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
CATALOG = Path("manifests") / "catalog-packages.yaml"
CLIENTS = Path("manifests") / "client-packages.yaml"


def _without_guitar(text: str) -> str:
    docs = text.split("\n---\n")
    kept = [d for d in docs if "name: guitar-5\n" not in d and "package: guitar-5" not in d]
    assert len(kept) < len(docs)
    return "\n---\n".join(kept).rstrip("\n") + "\n"


def test_catalog_package_added_back_is_readopted_once(workdir: Path, cli: CLI, operator: Any,
                                                      demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    before = {p: (workdir / p).read_text() for p in (CATALOG, CLIENTS)}
    made = len(client_packages(operator, demo))
    for p, text in before.items():
        (workdir / p).write_text(_without_guitar(text))
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0 and "4 to archive" in out, out + err
    for p, text in before.items():
        (workdir / p).write_text(text)

    code, out, err = cli("plan", "--format", "json", "--detailed-exitcode")
    assert code == 2, out + err  # changes to apply
    ops = [(op["op"], op["address"]) for op in json.loads(out)["operations"]]
    assert sorted(ops) == [("readopt", "catalog_package.guitar-5"), ("readopt", "client_package.ben-guitar"),
                           ("readopt", "client_package.emma-guitar"), ("readopt", "client_package.hugo-guitar")], ops
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 0, out + err  # no changes: the next plan compared the fields and found them equal
    assert len(client_packages(operator, demo)) == made  # nothing sold again


def test_a_renamed_catalog_package_and_a_new_copy_of_its_display_name_are_refused(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    """One manifest renamed (its record moves) and a copy of it under a third name in the same plan:
    the copy used to be created, a second '5 Guitar Lessons' beside the moved one."""
    assert cli("apply", "--auto-approve")[0] == 0
    catalog = workdir / CATALOG
    text = catalog.read_text()
    guitar = next(d for d in text.split("\n---\n") if "name: guitar-5\n" in d)
    copy = guitar[guitar.index("apiVersion"):].replace("name: guitar-5\n", "name: guitar-copy\n")
    catalog.write_text(text.replace("name: guitar-5\n", "name: guitar-five\n").rstrip("\n") + "\n---\n" + copy)
    clients = workdir / CLIENTS
    clients.write_text(clients.read_text().replace("package: guitar-5", "package: guitar-five"))
    operator("DELETE", "/stats")
    code, out, err = cli("plan")
    assert code == 1, out + err
    said = " ".join((out + err).split())
    assert ("catalog_package.guitar-copy: catalog_package.guitar-five declares the same display name "
            "'5 Guitar Lessons', and neither is tracked yet") in said, said
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err
    sent = [r for r in operator("GET", "/stats")["requests"] if r["method"] != "GET"]
    assert sent == [], sent  # nothing created: no second '5 Guitar Lessons'

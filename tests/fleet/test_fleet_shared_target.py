"""Two folders of a fleet that target one business are refused, not applied side by side.

A business folder copied to rename it (``cp -r acme acme-eu``, the old one left behind), or a
target.toml pasted into a new folder: two states for one business, each blind to what the other
sells.  ``apply --all`` ran both at once, and both sold the client package the folders declare:
the client was billed twice.  Every fleet folder that shares its business with another is now an
error in its row (the others go on), in ``plan --all`` and in ``apply --all``, whatever the shard.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLI = Callable[..., tuple[int, str, str]]


def _sell_a_package(folder: Path, business: dict[str, Any]) -> None:
    state = json.loads((folder / ".reconciler" / "state.json").read_text())
    client = business["clients"][0]
    client_id = client["id"] if isinstance(client, dict) else client
    package = sorted(r["id"] for a, r in state["resources"].items() if a.startswith("catalog_package."))[0]
    (folder / "sale.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: ClientPackage\nmetadata:\n  name: first-sale\nspec:\n"
        f"  client: {client_id}\n  package: {{id: {package}}}\n")


def _sold(operator: Any, business: dict[str, Any]) -> list[dict[str, Any]]:
    got = operator("GET", f"/client_packages?business_id={business['business_id']}")
    return list(got["client_packages"])


def test_two_folders_of_one_business_are_refused_not_applied_side_by_side(
        fleet: dict[str, Any], cli: CLI, tmp_path: Path, operator: Any) -> None:
    root = tmp_path / "manifests"
    acme = fleet["acme"]
    _sell_a_package(root / "acme", acme)
    shutil.copytree(root / "acme", root / "acme-eu")  # the copy that was meant to replace it
    for args in (("plan", "--all"), ("apply", "--all", "--auto-approve")):
        code, out, err = cli(*args)
        assert code == 1, (args, out + err)
        for folder, other in (("acme", "acme-eu"), ("acme-eu", "acme")):
            assert (f"folder {folder} targets business {acme['business_id']} at" in out + err
                    and f"as folder(s) {other} do" in out + err), (args, out + err)
    # two machines, one shard each: each refuses the folder it got, whichever shard has the other
    shards = "".join("".join(cli("apply", "--all", "--auto-approve", "--shard", f"{i}/2")[1:]) for i in (0, 1))
    assert "folder acme targets" in shards and "folder acme-eu targets" in shards, shards
    assert _sold(operator, acme) == []
    # the other businesses go on; once the copy is gone, acme sells once
    shutil.rmtree(root / "acme-eu")
    code, out, err = cli("apply", "--all", "--auto-approve")
    assert code == 0, out + err
    assert len(_sold(operator, acme)) == 1

"""A state file gone beside its backup is never replaced by a new state.

A checkout that left ``state.json`` out (or a ``git rm``) leaves ``state.json.backup``, the last
copy of every record.  Plan and drift warn about it; a command that writes used to start a new
state there, whose second write linked the new state over the backup: the records of the client
packages reconciler had created were gone, and a later plan (wherever the payment requests
cannot be listed, and with the catalog packages now tracked again) would sell them again.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

CLI = Callable[..., tuple[int, str, str]]


@pytest.mark.parametrize("command", [("apply", "--auto-approve"), ("import", "--discover"),
                                     ("drift", "--write-back")])
def test_no_command_writes_a_new_state_over_a_lost_ones_backup(workdir: Path, cli: CLI, command: tuple[str, ...],
                                                                tmp_path: Path) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    folder = workdir / "manifests" / ".reconciler"
    catalog = workdir / "manifests" / "catalog-packages.yaml"
    original = catalog.read_text()
    # two more applies that write (a price changed and back): the backup is then a whole state,
    # not the first apply's next-to-last write (which may lack the records of its last batch)
    catalog.write_text(re.sub(r"(?m)^  price: 540$", "  price: 539", original))
    assert cli("apply", "--auto-approve")[0] == 0
    catalog.write_text(original)
    assert cli("apply", "--auto-approve")[0] == 0
    backup = (folder / "state.json.backup").read_bytes()
    assert len(json.loads(backup)["resources"]) == 11
    (folder / "state.json").unlink()  # lost
    # the catalog alone is applied (the client packages' file is elsewhere for now), twice
    shutil.move(workdir / "manifests" / "client-packages.yaml", tmp_path / "client-packages.yaml")
    for price in (541, 542):
        catalog.write_text(re.sub(r"(?m)^  price: 540$", f"  price: {price}", catalog.read_text().replace(
            "price: 541", "price: 540")))
        code, out, err = cli(*command)
        assert code == 1, out + err
        assert ("there is no state file manifests/.reconciler/state.json, but its backup "
                "manifests/.reconciler/state.json.backup is there") in err, err
        assert "cp manifests/.reconciler/state.json.backup manifests/.reconciler/state.json" in err
    assert not (folder / "state.json").exists()
    assert (folder / "state.json.backup").read_bytes() == backup
    # restored as the message says, nothing is lost: the client packages are all still known
    shutil.copyfile(folder / "state.json.backup", folder / "state.json")
    shutil.move(tmp_path / "client-packages.yaml", workdir / "manifests" / "client-packages.yaml")
    code, out, err = cli("plan")
    assert code == 0 and "Plan: 0 to create" in out, out + err
